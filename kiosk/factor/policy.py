"""When the second factor is required, and what a claim means (pure logic).

Per door (each kiosk has its own ``[second_factor]`` section): either always,
or by schedule rules such as "mon-fri 20:00-07:00: face + PIN", evaluated in
the local time of an injected wall clock and time zone. A rule depends on the
date and time, so when the wall clock is not known to be synchronised (a Pi
has no battery-backed clock: after a power cut it may think it is noon when it
is midnight), the policy fails closed and requires the second factor.

What a second factor may be: ``pin``, ``card`` or either. A card number is an
identifier, not a secret: it claims an identity (face then compared 1:1) but
never grants alone. A PIN is a secret: it confirms an identity, claimed by a
user code, a card, or (without a claim) the face's best candidate.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from enum import StrEnum
from pathlib import Path

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class FactorMode(StrEnum):
    OFF = "off"  # face alone, always
    PIN = "pin"  # face + PIN when required
    CARD = "card"  # face + card when required
    PIN_OR_CARD = "pin_or_card"  # face + either when required


def parse_hhmm(text: str) -> time:
    m = _HHMM.match(text)
    if not m:
        raise ValueError(f"expected a time of day as HH:MM (24 h), got {text!r}")
    return time(int(m[1]), int(m[2]))


def parse_days(spec: Iterable[str]) -> frozenset[int]:
    """``["mon-fri", "sun"]`` -> weekday numbers (Monday 0). A range may wrap (``"fri-mon"``)."""
    out: set[int] = set()
    for item in spec:
        lo, _, hi = item.strip().lower().partition("-")
        hi = hi or lo
        if lo not in DAYS or hi not in DAYS:
            raise ValueError(f"expected days like 'mon', 'mon-fri' or 'fri-mon', got {item!r}")
        i, j = DAYS.index(lo), DAYS.index(hi)
        out.update(d % 7 for d in range(i, (j if j >= i else j + 7) + 1))
    return frozenset(out)


@dataclass(frozen=True)
class ScheduleRule:
    """The second factor is required from ``start`` to ``end`` (local time) on ``days``.

    ``end`` <= ``start`` means the span crosses midnight: ``days`` names the
    day it starts on, so "fri 20:00-07:00" covers Friday night to Saturday 07:00.
    ``start == end`` is the whole day.
    """

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, days: Iterable[str], start: str, end: str) -> ScheduleRule:
        return cls(parse_days(days), parse_hhmm(start), parse_hhmm(end))

    def covers(self, local: datetime) -> bool:
        t, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        if self.start == self.end:
            return day in self.days
        # crosses midnight: the evening part belongs to today, the morning part to yesterday's rule
        return (day in self.days and t >= self.start) or ((day - 1) % 7 in self.days and t < self.end)


@dataclass(frozen=True)
class SecondFactorPolicy:
    mode: FactorMode = FactorMode.OFF
    always: bool = False  # required at every hour; otherwise only when a rule covers the time
    rules: tuple[ScheduleRule, ...] = ()

    def required(self, now_wall: float, clock_synced: bool, tz: tzinfo | None = None) -> bool:
        """Is a second factor required at ``now_wall`` (seconds since the epoch)? ``tz`` None: the system's zone."""
        if self.mode is FactorMode.OFF:
            return False
        if self.always:
            return True
        if not self.rules:
            return False
        if not clock_synced:
            return True  # the rules depend on the time of day, which is not known: fail closed
        local = datetime.fromtimestamp(now_wall, tz) if tz is not None else datetime.fromtimestamp(now_wall).astimezone()
        return any(rule.covers(local) for rule in self.rules)

    def accepts(self, kind: str) -> bool:
        """May a claim of this kind ("pin" or "card") satisfy the requirement?"""
        return {FactorMode.PIN: kind == "pin", FactorMode.CARD: kind == "card",
                FactorMode.PIN_OR_CARD: kind in ("pin", "card")}.get(self.mode, False)


# -- Is the wall clock synchronised? -------------------------------------------------------------------------------

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
_TIME_ERROR = 5  # adjtimex(2): clock not synchronised


def clock_synchronised(flag: Path = TIMESYNCD_FLAG) -> bool:
    """The kernel's view (``adjtimex`` read-only: chrony, ntpd, timesyncd all set it), else timesyncd's flag file.

    Under ``ProtectClock=yes`` the system call is refused; then the flag file
    that systemd-timesyncd creates at its first synchronisation decides.
    Unknown means not synchronised.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
        if state >= 0:
            return bool(state != _TIME_ERROR)
    except (OSError, AttributeError):
        pass
    return flag.exists()
