"""A cooperative person from real footage: the turn finder, the reactive source, and one real clip end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.camera.base import CameraError, Frame
from kiosk.camera.replay import SimClock
from kiosk.pad.cooperative import CooperativeSource, Turn, find_turn, yaw_series
from tests import liveness_synth as synth


def test_find_turn_takes_the_largest_change_within_the_span_from_a_face_that_looks_ahead() -> None:
    yaws: list[float | None] = [0.0] * 10 + [0.1 * k for k in range(1, 5)] + [0.4] * 5
    t = find_turn(yaws, fps=15.0, max_s=0.4)  # six frames at most
    assert t is not None and t.start < t.end and abs(t.change - 0.4) < 1e-9
    assert t.end - t.start <= 6 and yaws[t.start] == 0.0  # never from a face already turned
    assert t.still_from == t.start - 6  # it stood still before, as far back as the span reaches
    moving = find_turn([-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3], fps=15.0)
    assert moving is not None and moving.still_from == moving.start  # no still stretch: it stands at the start
    assert find_turn([0.0, 0.05, 0.1, 0.12], fps=15.0) is None  # below the smallest turn
    assert find_turn([0.3, 0.0, -0.3], fps=15.0, max_start=0.04) == Turn(1, 2, -0.3, 1)
    # a frame without a face breaks a turn: no change is measured across it
    assert find_turn([0.0, None, 0.5], fps=15.0) is None
    # a slow drift beyond the span is no turn
    assert find_turn([0.01 * k for k in range(60)], fps=15.0, max_s=1.0) is None


def test_yaw_series_is_the_judges_median_of_three_and_none_without_landmarks() -> None:
    m = synth.model()
    marks: list[Any] = [synth.pose(m, 0.0), synth.pose(m, 20.0), None, synth.pose(m, 20.0)]
    ys = yaw_series(marks)
    assert ys[2] is None and ys[0] is not None and ys[3] is not None
    assert ys[3] > 0.1  # turned to the subject's left: the nose towards the image's right


def _frames(n: int) -> list[np.ndarray]:
    out = []
    for k in range(n):
        f = np.zeros((8, 8, 3), np.uint8)
        f[0, 0, 0] = k  # the frame number, readable back
        f[0, 7, 1] = 255  # a mark on the right: a mirrored frame has it on the left
        out.append(f)
    return out


def test_the_source_stands_still_until_the_prompt_then_turns_after_the_reaction_time() -> None:
    frames, prompts = _frames(40), []
    clock = SimClock()
    src = CooperativeSource(frames, Turn(20, 26, 0.3, 10), lambda: prompts, fps=10.0, clock=clock, reaction_s=1.0,
                            lead_s=0.5, sensor_noise=0.0)
    with pytest.raises(CameraError):
        src.read()
    src.open()
    seen = [src.read() for _ in range(12)]
    assert all(f is not None and 15 <= f.index <= 20 for f in seen)  # the half second before the turn, back and forth
    assert clock() == pytest.approx(1.1)
    prompts.append((1.1, "left"))  # positive change: a turn to the subject's left, as asked
    idx = [src.read() for _ in range(25)]
    assert all(f is not None and 10 <= f.index <= 20 for f in idx[:10])  # still standing while reacting
    start = next(k for k, f in enumerate(idx) if f is not None and f.index == 21)
    assert start >= 10  # one second of reaction at 10 fps before the turn goes on
    assert [f.index for f in idx[start:start + 5] if f is not None] == [21, 22, 23, 24, 25]
    assert all(f is not None and f.rgb[0, 7, 1] == 255 for f in idx)  # not mirrored
    assert all(f is not None and 26 <= f.index <= 30 for f in idx[start + 6:])  # then holds still


def test_the_source_mirrors_the_turn_when_the_prompt_asks_for_the_other_side() -> None:
    frames, prompts = _frames(40), [(0.0, "right")]
    src = CooperativeSource(frames, Turn(20, 26, 0.3), lambda: prompts, fps=10.0, reaction_s=0.0, sensor_noise=0.0)
    src.open()
    out = [src.read() for _ in range(10)]
    assert all(f is not None for f in out)
    assert [f.index for f in out[:7] if f is not None] == list(range(20, 27))
    assert all(f is not None and f.rgb[0, 0, 1] == 255 and f.rgb[0, 7, 1] == 0 for f in out)  # mirrored
    assert out[1] is not None and out[1].rgb[0, 7, 0] == 21  # the frame number moved with the mirror


def _mirrored(f: Frame | None) -> bool:
    assert f is not None
    return bool(f.rgb[0, 0, 1] == 255 and f.rgb[0, 7, 1] == 0)


def test_a_late_prompt_the_other_way_flips_the_frames_mid_presentation_and_says_so() -> None:
    """What no camera sees (a face turning into its mirror image): the presenter replays such a one mirrored
    from the first frame instead (``mirror_all``)."""
    frames, prompts = _frames(40), []
    src = CooperativeSource(frames, Turn(20, 26, 0.3), lambda: prompts, fps=10.0, reaction_s=0.0, sensor_noise=0.0)
    src.open()
    before = [src.read() for _ in range(5)]
    prompts.append((0.5, "right"))  # the clip turns to the subject's left
    after = [src.read() for _ in range(5)]
    assert not any(_mirrored(f) for f in before) and all(_mirrored(f) for f in after)
    assert src.switched


def test_mirrored_from_the_first_frame_the_clip_turns_the_other_way_without_a_switch() -> None:
    frames, prompts = _frames(40), []
    src = CooperativeSource(frames, Turn(20, 26, 0.3), lambda: prompts, fps=10.0, reaction_s=0.0, sensor_noise=0.0,
                            mirror_all=True)
    src.open()
    shown = [src.read() for _ in range(5)]
    prompts.append((0.5, "right"))  # the mirror image turns to the subject's right: as asked
    shown += [src.read() for _ in range(12)]
    assert all(_mirrored(f) for f in shown) and not src.switched
    assert [f.index for f in shown[5:12] if f is not None] == list(range(20, 27))  # the turn, played forwards


def test_a_frame_held_still_gets_fresh_sensor_noise_every_time_it_is_shown() -> None:
    """Without it a one-frame still stretch is a frozen image: no mesh jitter, a noise floor of zero."""
    frames = [np.full((32, 32, 3), 100, np.uint8)] * 30
    src = CooperativeSource(frames, Turn(20, 26, 0.3, 20), lambda: [], fps=10.0)
    src.open()
    shown = [src.read() for _ in range(4)]
    assert all(f is not None and f.index == 20 for f in shown)
    a, b = (f.rgb.astype(float) for f in shown[:2] if f is not None)
    assert np.abs(a - b).mean() > 1.0  # a fresh draw each frame
    assert abs(a.mean() - 100) < 0.5 and 1.5 < a.std() < 2.5  # about sigma 2 around the footage


def test_a_turn_outside_the_clip_is_refused() -> None:
    with pytest.raises(ValueError):
        CooperativeSource(_frames(5), Turn(3, 9, 0.3), lambda: [])


@pytest.mark.parametrize("direction", ["left", "right"])
def test_a_real_head_answers_either_prompt_and_the_door_follows_the_verdict(direction: str, data: Path,
                                                                            pipeline: Any) -> None:
    import random

    from kiosk.decision import DecisionConfig
    from kiosk.liveness.challenge import choose_direction
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.settings import LivenessSettings
    from kiosk.pad.present import PresentConfig, Presenter, from_video

    seed = next(s for s in range(100) if choose_direction(random.Random(s)) == direction)
    clip = data / "videos" / "SadTalker" / "ref_video" / "WDA_KatieHill_000.mp4"  # turns to the image's left
    settings = LivenessSettings()
    config = PresentConfig(DecisionConfig(), liveness=settings, max_seconds=12)
    o = Presenter(pipeline[0], pipeline[1].threshold, config, build_landmarker(), seed=seed).present_cooperative(
        from_video(clip))
    assert o.error is None and abs(o.values["clip_turn"]) >= 0.2 and o.challenged
    # the footage (mirrored for one of the two directions) turns the way the prompt asked, by enough
    assert o.values["turn"] >= settings.min_turn
    assert o.verdict_reason in ("challenge_parallax", "challenge_timeout")
    assert o.door_opened == o.granted == (o.verdict == "live")
    if o.granted:
        assert o.time_to_grant_s is not None and o.time_to_grant_s > settings.challenge_after_s
