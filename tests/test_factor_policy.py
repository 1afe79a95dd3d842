"""When the second factor is required: schedule rules in local time, failing closed on an unsynchronised clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.factor.policy import FactorMode, ScheduleRule, SecondFactorPolicy, parse_days, parse_hhmm

PARIS = ZoneInfo("Europe/Paris")
NIGHTS = SecondFactorPolicy(FactorMode.PIN, rules=(ScheduleRule.parse(["mon-fri"], "20:00", "07:00"),))


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    """Epoch seconds of a local time in ``tz`` (2026-12-07 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


@pytest.mark.parametrize(("when", "required"), [
    ("2026-12-07 19:59", False),  # Monday evening, before the span
    ("2026-12-07 20:00", True),
    ("2026-12-07 23:30", True),
    ("2026-12-08 06:59", True),  # Tuesday morning: Monday night's span
    ("2026-12-08 07:00", False),
    ("2026-12-08 12:00", False),
    ("2026-12-05 06:00", True),  # Saturday morning: Friday night's span
    ("2026-12-05 21:00", False),  # Saturday evening: no rule starts on Saturday
    ("2026-12-07 06:00", False),  # Monday morning: Sunday night is not covered
])
def test_weekday_nights_require_the_second_factor(when: str, required: bool) -> None:
    assert NIGHTS.required(at(when), clock_synced=True, tz=PARIS) is required


def test_the_schedule_is_read_in_the_configured_time_zone() -> None:
    instant = at("2026-12-07 20:30", PARIS)  # 19:30 in UTC: before the span there
    assert NIGHTS.required(instant, clock_synced=True, tz=PARIS)
    assert not NIGHTS.required(instant, clock_synced=True, tz=ZoneInfo("UTC"))


def test_an_unsynchronised_clock_fails_closed_when_rules_depend_on_the_time() -> None:
    noon = at("2026-12-08 12:00")
    assert not NIGHTS.required(noon, clock_synced=True, tz=PARIS)
    assert NIGHTS.required(noon, clock_synced=False, tz=PARIS)


def test_always_requires_and_no_rules_never_require_whatever_the_clock() -> None:
    always = SecondFactorPolicy(FactorMode.PIN_OR_CARD, always=True)
    never = SecondFactorPolicy(FactorMode.PIN)
    noon = at("2026-12-08 12:00")
    assert always.required(noon, clock_synced=True, tz=PARIS) and always.required(noon, clock_synced=False, tz=PARIS)
    assert not never.required(noon, clock_synced=False, tz=PARIS)


def test_mode_off_never_requires_even_with_rules() -> None:
    off = SecondFactorPolicy(FactorMode.OFF, always=True, rules=NIGHTS.rules)
    assert not off.required(at("2026-12-07 23:00"), clock_synced=False, tz=PARIS)


def test_a_span_with_equal_ends_covers_the_whole_day() -> None:
    weekend = SecondFactorPolicy(FactorMode.PIN, rules=(ScheduleRule.parse(["sat-sun"], "00:00", "00:00"),))
    assert weekend.required(at("2026-12-06 13:00"), clock_synced=True, tz=PARIS)
    assert not weekend.required(at("2026-12-07 13:00"), clock_synced=True, tz=PARIS)


def test_a_daytime_span_on_one_day() -> None:
    rule = ScheduleRule.parse(["wed"], "09:00", "17:30")
    assert rule.covers(datetime(2026, 12, 2, 17, 29))
    assert not rule.covers(datetime(2026, 12, 2, 17, 30))
    assert not rule.covers(datetime(2026, 12, 3, 10, 0))


def test_the_span_follows_local_time_across_a_daylight_saving_change() -> None:
    # 2026-03-29: clocks in Paris go from 02:00 to 03:00. 06:30 local is 04:30 UTC that day.
    rule = SecondFactorPolicy(FactorMode.PIN, rules=(ScheduleRule.parse(["sat"], "20:00", "07:00"),))
    assert rule.required(at("2026-03-29 06:30"), clock_synced=True, tz=PARIS)
    assert not rule.required(at("2026-03-29 07:00"), clock_synced=True, tz=PARIS)


@pytest.mark.parametrize(("spec", "days"), [(["mon-fri"], {0, 1, 2, 3, 4}), (["fri-mon"], {4, 5, 6, 0}),
                                            (["sun", "wed"], {6, 2}), (["mon-sun"], set(range(7)))])
def test_day_ranges(spec: list[str], days: set[int]) -> None:
    assert parse_days(spec) == frozenset(days)


@pytest.mark.parametrize("bad", ["monday", "mon-xyz", ""])
def test_bad_days_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="expected days like"):
        parse_days([bad])


@pytest.mark.parametrize("bad", ["24:00", "7:00", "07:60", "0700"])
def test_bad_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(bad)


@pytest.mark.parametrize(("mode", "pin", "card"), [(FactorMode.OFF, False, False), (FactorMode.PIN, True, False),
                                                   (FactorMode.CARD, False, True), (FactorMode.PIN_OR_CARD, True, True)])
def test_which_claims_satisfy_each_mode(mode: FactorMode, pin: bool, card: bool) -> None:
    policy = SecondFactorPolicy(mode, always=True)
    assert policy.accepts("pin") is pin
    assert policy.accepts("card") is card


def test_clock_sync_falls_back_to_timesyncds_flag_when_the_kernel_call_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ctypes

    from kiosk.factor.policy import clock_synchronised

    class Libc:  # under ProtectClock=yes, seccomp makes adjtimex return -1 (EPERM)
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def adjtimex(self, buf: object) -> int:
            return -1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    flag = tmp_path / "synchronized"
    assert not clock_synchronised(flag)
    flag.touch()
    assert clock_synchronised(flag)
