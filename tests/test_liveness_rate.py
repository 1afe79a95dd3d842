"""The landmark rate each face really gets, and when it crosses the floor (pure)."""

from __future__ import annotations

import random

import pytest

from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.prompters import LogPrompter
from kiosk.liveness.rate import BAND, GAP_S, MIN_INTERVALS, MIN_REPORT_S, SampleRate
from kiosk.liveness.settings import LivenessSettings


def test_no_rate_before_enough_intervals_then_the_median_rate() -> None:
    rate = SampleRate(10.0)
    for _ in range(MIN_INTERVALS - 1):
        rate.add(0.1)
    assert rate.hz is None and rate.crossed(0.0) is None
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
    assert rate.crossed(0.0) is None  # above the floor from the start: nothing to say
    seen = []
    for _ in range(MIN_INTERVALS):
        rate.add(1 / 5)
        seen.append(rate.crossed(0.0))
    assert seen.count(True) == 1 and False not in seen
    seen = []
    for _ in range(MIN_INTERVALS):
        rate.add(1 / 15)
        seen.append(rate.crossed(MIN_REPORT_S))
    assert seen.count(False) == 1 and True not in seen


def test_a_rate_hovering_about_the_floor_is_no_crossing() -> None:
    """A 20 fps camera is sampled every other frame: 10 a second, on the floor, with the timing's jitter."""
    rate = SampleRate(10.0)
    for k in range(600):
        rate.add(0.1 + (0.002 if k % 2 else -0.002) * (k % 3))
        assert rate.crossed(float(k)) is None
    for _ in range(60):  # just under the floor but within the band: still nothing
        rate.add(1 / (10.0 * (BAND + 0.01)))
        assert rate.crossed(1000.0) is None


def test_crossings_come_at_most_once_per_report_interval_and_a_held_one_follows() -> None:
    rate = SampleRate(10.0, size=MIN_INTERVALS)

    def feed(hz: float, now: float) -> list[bool | None]:
        out = []
        for _ in range(MIN_INTERVALS):
            rate.add(1 / hz)
            out.append(rate.crossed(now))
        return out

    assert True in feed(5.0, 0.0)
    assert feed(15.0, 10.0) == [None] * MIN_INTERVALS  # back after 10 s: held back
    assert rate.crossed(MIN_REPORT_S - 1) is None
    assert rate.crossed(MIN_REPORT_S) is False  # reported once the interval has passed, as it still holds
    assert feed(15.0, MIN_REPORT_S + 1) == [None] * MIN_INTERVALS


def test_a_floor_of_zero_never_reports() -> None:
    rate = SampleRate(0.0)
    for _ in range(MIN_INTERVALS):
        rate.add(1.0)
    assert rate.hz == pytest.approx(1.0) and rate.crossed(0.0) is None


def test_the_judge_measures_the_interval_between_samples_of_each_face() -> None:
    judge = LivenessJudge(LivenessSettings(mode="passive"), lambda: 0.0, LogPrompter(), random.Random(0))
    for k in range(MIN_INTERVALS + 1):
        for track, period in ((1, 1 / 7.5), (2, 1 / 7.5)):  # two faces, each sampled 7.5 times a second
            now = k * period + 0.01 * track
            if judge.due(track, now):
                judge.observe(track, None, now)
    assert judge.rate.hz == pytest.approx(7.5)
    assert judge.rate.crossed(0.0) is True  # under the default floor of 10


def test_a_face_out_of_view_between_two_samples_is_a_break_not_a_rate() -> None:
    """A face that fails the gates or is not detected on a frame: the interval across it is the face's,
    not the door's. Another face sampled on every frame still gives the door's rate."""
    judge = LivenessJudge(LivenessSettings(mode="passive"), lambda: 0.0, LogPrompter(), random.Random(0))
    for k in range(4 * MIN_INTERVALS):
        now = k / 15.0
        flickering = k % 2 == 0  # face 2 is in view on every other frame only
        judge.in_view([1, 2] if flickering else [1])
        for track in ((1, 2) if flickering else (1,)):
            if judge.due(track, now):
                judge.observe(track, None, now)
    assert judge.rate.hz == pytest.approx(15.0)
    assert judge.rate.crossed(0.0) is None

    alone = LivenessJudge(LivenessSettings(mode="passive"), lambda: 0.0, LogPrompter(), random.Random(0))
    for k in range(4 * MIN_INTERVALS):
        alone.in_view([2] if k % 2 == 0 else [])
        if k % 2 == 0 and alone.due(2, k / 15.0):
            alone.observe(2, None, k / 15.0)
    assert alone.rate.hz is None  # every interval spans a frame without the face


def test_a_sampling_rate_under_the_floor_stays_valid_becomes_the_floor_and_warns_at_start() -> None:
    low = LivenessSettings(sample_hz=8.0)
    assert low.rate_floor == 8.0
    assert any("sample_hz = 8" in w for w in low.weakened())
    both = LivenessSettings(sample_hz=8.0, min_sample_hz=10.0)  # as in the example configuration: still starts
    assert both.rate_floor == 8.0 and any("sample_hz = 8" in w for w in both.weakened())
    assert not any("sample_hz" in w for w in LivenessSettings(sample_hz=8.0, min_sample_hz=0.0).weakened())
    assert LivenessSettings().rate_floor == 10.0 and not any("sample_hz" in w for w in LivenessSettings().weakened())
    assert LivenessSettings(sample_hz=0.0, min_sample_hz=12.0).rate_floor == 12.0
