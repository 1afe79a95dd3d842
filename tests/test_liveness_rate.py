"""The landmark rate each face really gets, and when it crosses the floor (pure)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.prompters import LogPrompter
from kiosk.liveness.rate import GAP_S, MIN_INTERVALS, SampleRate
from kiosk.liveness.settings import LivenessSettings


def test_no_rate_before_enough_intervals_then_the_median_rate() -> None:
    rate = SampleRate(10.0)
    for _ in range(MIN_INTERVALS - 1):
        rate.add(0.1)
    assert rate.hz is None and rate.crossed() is None
    rate.add(0.1)
    assert rate.hz == pytest.approx(10.0)
    for _ in range(MIN_INTERVALS):  # one slow frame in three does not move the median
        rate.add(0.1)
        rate.add(0.1)
        rate.add(0.3)
    assert rate.hz == pytest.approx(10.0)


def test_breaks_between_samples_are_not_a_rate() -> None:
    rate = SampleRate(10.0)
    for _ in range(MIN_INTERVALS):
        rate.add(0.2)
        rate.add(GAP_S + 0.5)  # the face was lost for a while
        rate.add(0.0)  # the same instant twice: no interval
    assert rate.hz == pytest.approx(5.0)


def test_each_crossing_is_reported_once() -> None:
    rate = SampleRate(10.0, size=MIN_INTERVALS)
    for _ in range(MIN_INTERVALS):
        rate.add(1 / 15)
    assert rate.crossed() is None  # above the floor from the start: nothing to say
    seen = []
    for _ in range(MIN_INTERVALS):
        rate.add(1 / 5)
        seen.append(rate.crossed())
    assert seen.count(True) == 1 and False not in seen
    seen = []
    for _ in range(MIN_INTERVALS):
        rate.add(1 / 15)
        seen.append(rate.crossed())
    assert seen.count(False) == 1 and True not in seen


def test_a_floor_of_zero_never_reports() -> None:
    rate = SampleRate(0.0)
    for _ in range(MIN_INTERVALS):
        rate.add(1.0)
    assert rate.hz == pytest.approx(1.0) and rate.crossed() is None


def test_the_judge_measures_the_interval_between_samples_of_each_face() -> None:
    judge = LivenessJudge(LivenessSettings(mode="passive"), lambda: 0.0, LogPrompter(), random.Random(0))
    for k in range(MIN_INTERVALS + 1):
        for track, period in ((1, 1 / 7.5), (2, 1 / 7.5)):  # two faces, each sampled 7.5 times a second
            now = k * period + 0.01 * track
            if judge.due(track, now):
                judge.observe(track, None, now)
    assert judge.rate.hz == pytest.approx(7.5)
    assert judge.rate.crossed() is True  # under the default floor of 10


def test_a_floor_above_the_sampling_rate_is_refused() -> None:
    with pytest.raises(ValidationError, match="min_sample_hz"):
        LivenessSettings(sample_hz=8.0, min_sample_hz=10.0)
    assert LivenessSettings(sample_hz=0.0, min_sample_hz=10.0).min_sample_hz == 10.0
