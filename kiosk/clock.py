"""Is the wall clock synchronised? A Raspberry Pi has no real-time clock.

After a power cut a Pi starts with the time it saved at shutdown (or 1970)
until systemd-timesyncd reaches a time server. Rules that depend on the date
(validity windows, schedules, snapshot expiry) must fail closed until then,
and "issued more than a day in the future" can only be judged by a clock that
is known to be right. ``TrustedClock.now()`` is the wall time when the clock
is synchronised and ``None`` when it is not (or when that cannot be told).

Two probes: the kernel's ``adjtimex`` state (no subprocess; the kernel
clears STA_UNSYNC when timesyncd or chrony disciplines the clock) and
``timedatectl show -p NTPSynchronized``. Any error means "not synchronised".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
Probe = Callable[[], bool]


class ClockSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["auto", "adjtimex", "timedatectl", "assume_synchronised"] = Field(
        "auto", description="how to tell whether the wall clock is synchronised: auto = adjtimex, then timedatectl; "
                            "assume_synchronised only for a machine with a battery-backed real-time clock")
    recheck_s: float = Field(30.0, ge=1, le=3600, description="how long one answer of the probe is reused")


def adjtimex_synchronised(libc: ctypes.CDLL | None = None) -> bool:
    """The kernel's view: ``adjtimex`` (read-only, modes = 0) not returning TIME_ERROR."""
    try:
        lib = libc or ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(512)  # larger than struct timex on every Linux ABI; zero = read only
        state = int(lib.adjtimex(buf))
    except (OSError, AttributeError, TypeError) as exc:
        logger.debug("adjtimex unavailable: %s", exc)
        return False
    return 0 <= state < TIME_ERROR


def timedatectl_synchronised(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> bool:
    """systemd's view: ``timedatectl show -p NTPSynchronized --value`` printing ``yes``."""
    try:
        out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                  timeout=5, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("timedatectl unavailable: %s", exc)
        return False
    return out.returncode == 0 and out.stdout.strip() == "yes"


def probe_for(source: str) -> Probe:
    if source == "assume_synchronised":
        return lambda: True
    if source == "adjtimex":
        return adjtimex_synchronised
    if source == "timedatectl":
        return timedatectl_synchronised
    return lambda: adjtimex_synchronised() or timedatectl_synchronised()


class TrustedClock:
    """Wall time that is only handed out while the clock is known to be synchronised."""

    def __init__(self, probe: Probe, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, recheck_s: float = 30.0) -> None:
        self._probe = probe
        self._wall = wall
        self._monotonic = monotonic
        self._recheck_s = recheck_s
        self._last: tuple[float, bool] | None = None

    @classmethod
    def from_settings(cls, settings: ClockSettings) -> TrustedClock:
        return cls(probe_for(settings.source), recheck_s=settings.recheck_s)

    def synchronised(self) -> bool:
        t = self._monotonic()
        if self._last is None or t - self._last[0] >= self._recheck_s:
            try:
                ok = bool(self._probe())
            except Exception as exc:  # a probe that fails says nothing: fail closed
                logger.warning("cannot tell whether the clock is synchronised: %s", exc)
                ok = False
            if self._last is None or self._last[1] != ok:
                logger.log(logging.INFO if ok else logging.WARNING, "wall clock %s",
                           "synchronised" if ok else "NOT synchronised: date-dependent rules fail closed")
            self._last = (t, ok)
        return self._last[1]

    def now(self) -> float | None:
        """Unix seconds, or ``None`` when the clock is not known to be right."""
        return self._wall() if self.synchronised() else None

    def now_ms(self) -> int | None:
        now = self.now()
        return None if now is None else int(now * 1000)

    def wall(self) -> float:
        """The wall clock regardless of synchronisation (for logs and timestamps only)."""
        return self._wall()
