"""When the judge asks for landmarks: at the rate its thresholds were calibrated at, never after a verdict."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.liveness.cues import Verdict
from tests.liveness_judging import _feed, _judge, _still, _turn


@pytest.mark.parametrize(("camera_fps", "expected_hz"), [(7.0, 7.0), (15.0, 15.0), (25.0, 12.5), (30.0, 15.0),
                                                         (60.0, 15.0)])
def test_landmarks_are_due_evenly_at_about_sample_hz_whatever_the_camera_rate(camera_fps: float,
                                                                             expected_hz: float) -> None:
    judge, _clock, _ = _judge("passive")
    frames = _still(False, int(4 * camera_fps))
    sampled = []
    for k, f in enumerate(frames):
        now = k / camera_fps
        if judge.due(1, now):
            sampled.append(now)
            judge.observe(1, f, now)
        else:
            assert judge.current(1).verdict is Verdict.PENDING
    gaps = np.diff(sampled)
    assert np.allclose(gaps, 1.0 / expected_hz)  # evenly: the jitter measure compares neighbours
    if camera_fps <= 15.0:
        assert len(sampled) == len(frames)  # the calibrated rate or slower: every frame


def test_no_landmarks_are_due_once_the_verdict_is_final_and_the_last_result_is_kept() -> None:
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, _turn(False, 30))
    assert results[-1].verdict is Verdict.LIVE
    assert not judge.due(1, clock())
    assert judge.current(1) == results[-1]
    assert judge.due(2, clock()) and judge.current(2).verdict is Verdict.PENDING  # a new track: due at once
    judge.end(1)
    assert judge.due(1, clock())


def test_sample_hz_zero_samples_every_frame() -> None:
    judge, _clock, _ = _judge("passive", sample_hz=0)
    for k, f in enumerate(_still(False, 30)):
        assert judge.due(1, k / 60.0)
        judge.observe(1, f, k / 60.0)
