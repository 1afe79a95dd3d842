"""A periodic thread on the monotonic clock: the door's relock and held-open timer.

The frame loop can stall (a slow model, a hung camera read, a long GC): the
relay must still drop on time. ``Ticker`` runs one ``tick`` function on its
own thread, ``while not stop.is_set()`` with a timed wait, and never waits
longer than ``period_s`` or than the deadline ``tick`` reports (``Door.tick``
returns the seconds until the next relock or alarm), so the relock happens at
the deadline, not at the next frame.

Tests drive it deterministically: ``wait`` is injected (a function that
blocks until the test lets the thread take its next step), and the door's
clock is a fake clock the test moves by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from kiosk.door.relay import Door

logger = logging.getLogger(__name__)

Tick = Callable[[], "float | None"]


class DoorTimerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timer_period_s: float = Field(0.05, ge=0.005, le=0.1, description=(
        "longest wait of the door's relock timer thread between checks; the relock itself is "
        "scheduled at its deadline, so this bounds how late a missed wake-up can be"))


class Ticker:
    """Calls ``tick`` on a daemon thread until ``stop()``.

    ``tick`` returns the seconds until it next needs to run (None: nothing
    due); the thread waits ``min(that, period_s)``. An exception in ``tick``
    is logged and counted, and the thread carries on: a timer that died would
    leave the door to whatever else still runs.
    """

    def __init__(self, tick: Tick, period_s: float, *, name: str = "ticker",
                 wait: Callable[[float], object] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.tick = tick
        self.period_s = period_s
        self.name = name
        self.clock = clock
        self.errors = 0
        self.ticks = 0
        self.last_tick: float | None = None
        self.failing_since: float | None = None  # the first failed tick of the failures going on
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._thread: threading.Thread | None = None

    def run_once(self) -> float:
        """One tick; returns how long the thread will wait before the next."""
        try:
            due = self.tick()
        except Exception:
            self.errors += 1
            if self.failing_since is None:
                self.failing_since = self.clock()
            if self.errors == 1 or self.errors % 100 == 0:
                logger.exception("%s: tick failed (%d failures so far)", self.name, self.errors)
            due = None
        else:
            self.failing_since = None
        self.ticks += 1
        self.last_tick = self.clock()
        return self.period_s if due is None else max(0.0, min(due, self.period_s))

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop and join; True when the thread has ended."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s did not stop within %.1f s", self.name, timeout)
            return False
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def healthy(self, max_age_s: float | None = None) -> bool:
        """Running, ticked within ``max_age_s`` (default: 20 periods, at least 1 s), and not failing on
        every tick for that long: a relay that cannot be switched off keeps the door unlocked, and a
        restart (whose stop locks the relay again, from another process) is the one thing left to try."""
        if not self.alive or self.last_tick is None:
            return False
        limit = max(20 * self.period_s, 1.0) if max_age_s is None else max_age_s
        now = self.clock()
        failing = self.failing_since
        return now - self.last_tick <= limit and (failing is None or now - failing <= limit)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wait(self.run_once())


def door_timer(door: Door, settings: DoorTimerSettings | None = None,
               wait: Callable[[float], object] | None = None) -> Ticker:
    """The relock/held-open timer of ``door`` (not started)."""
    period = (settings or DoorTimerSettings()).timer_period_s
    return Ticker(door.tick, period, name="door-timer", wait=wait)
