"""A reader's read errors: counted, logged now and then, retried with backoff, reported once persistent.

One failed GPIO read (an ``OSError`` from the driver, a glitch on a long
keypad cable) must not end a reader's thread for good, and a reader that
keeps failing must not go unnoticed. :class:`ReadFaults` is what the
keypad's scanning thread and the Wiegand reader's polling thread consult
around each read. Pure: times come from the caller's (injected) clock.

- ``failed(exc, now)``: one more failure. The next read waits for the
  backoff (``backoff_s[0]``, doubling up to ``backoff_s[1]``). Logged with
  the traceback at most once per ``log_interval_s``, with the count of the
  failures not logged since: a reader failing on every scan writes one line
  a minute, not a hundred a second.
- ``succeeded(now)``: a good read ends the run of failures (said in the log
  when one of the run's failures was).
- ``failing(now)``: no good read for ``fail_after_s`` since the run began,
  or ``flaky_runs`` runs of failures began within ``flaky_window_s`` (a
  reader that fails again and again, with good reads in between, voids
  every entry all the same). The reader then counts as failed: the
  service's health check fails and, if that lasts ``WatchdogSec``, systemd's
  watchdog restarts the service, which locks the door on the way.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultPolicy:
    backoff_s: tuple[float, float] = (0.05, 1.0)  # first wait after a failure, longest wait
    fail_after_s: float = 5.0  # failing this long without a good read: the reader has failed
    flaky_runs: int = 5  # ... or this many runs of failures began within flaky_window_s
    flaky_window_s: float = 60.0
    log_interval_s: float = 60.0  # at most one log line per this long

    def __post_init__(self) -> None:
        first, longest = self.backoff_s
        if (not (0 < first <= longest) or self.fail_after_s <= 0 or self.flaky_runs < 2 or self.flaky_window_s <= 0
                or self.log_interval_s <= 0):
            raise ValueError(f"a fault policy needs 0 < backoff_s[0] <= backoff_s[1], fail_after_s > 0, "
                             f"flaky_runs >= 2, flaky_window_s > 0 and log_interval_s > 0; got {self}")


class ReadFaults:
    """The failures of one reader (``what``: the name its log lines and reports give it).

    ``backs_off=False`` for code that cannot wait (a pin event handler runs
    when the pin library calls it): failures are counted and logged, and
    ``ready`` always says yes.
    """

    def __init__(self, what: str, policy: FaultPolicy | None = None, *, backs_off: bool = True) -> None:
        self.what = what
        self.policy = policy or FaultPolicy()
        self.backs_off = backs_off
        self.errors = 0  # failures since start
        self.last_error: str | None = None
        self._since: float | None = None  # first failure of the run going on
        self._runs: deque[float] = deque(maxlen=self.policy.flaky_runs)  # when the latest runs began
        self._run_errors = 0
        self._run_logged = False
        self._delay = 0.0
        self._retry_at = float("-inf")
        self._logged_at: float | None = None
        self._unlogged = 0

    def ready(self, now: float) -> bool:
        """May the next read be tried (the backoff after the last failure has passed)?"""
        return now >= self._retry_at

    def failed(self, exc: BaseException, now: float) -> None:
        self.errors += 1
        self._run_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        first, longest = self.policy.backoff_s
        if self._since is None:
            self._since, self._delay = now, first
            self._runs.append(now)
        else:
            self._delay = min(self._delay * 2, longest)
        if self.backs_off:
            self._retry_at = now + self._delay
        if self._logged_at is not None and now - self._logged_at < self.policy.log_interval_s:
            self._unlogged += 1
            return
        self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        self._run_logged = True
        retry = f"; next try in {self._delay:.2f} s" if self.backs_off else ""
        logger.warning("%s: read failed (%s); %d failure(s) in this run, %d in all, %d not logged since the last "
                       "line%s", self.what, self.last_error, self._run_errors, self.errors, unlogged, retry,
                       exc_info=exc)

    def succeeded(self, now: float) -> None:
        since = self._since
        if since is None:
            return
        if self._run_logged:
            logger.info("%s: reading again after %d failed read(s) over %.2f s", self.what, self._run_errors,
                        now - since)
        self._since, self._run_errors, self._run_logged, self._retry_at = None, 0, False, float("-inf")

    def failing(self, now: float) -> bool:
        """Failed without a good read for ``fail_after_s``, or again and again (see the module's docstring)."""
        since = self._since  # read once: the reader's thread may end the run meanwhile
        return (since is not None and now - since >= self.policy.fail_after_s) or self._flaky(now)

    def _flaky(self, now: float) -> bool:
        runs = self._runs
        return len(runs) == self.policy.flaky_runs and now - runs[0] <= self.policy.flaky_window_s

    def describe(self, now: float) -> str:
        since = self._since
        if since is not None and now - since >= self.policy.fail_after_s:
            return f"{self._run_errors} failed read(s) over {now - since:.1f} s, the last: {self.last_error}"
        if self._flaky(now):
            return (f"failed {self.policy.flaky_runs} times within {self.policy.flaky_window_s:.0f} s with good reads "
                    f"in between, the last: {self.last_error}")
        return f"reading ({self.errors} failed read(s) in all)"


def reader_health(thread: threading.Thread | None, faults: ReadFaults, clock: Callable[[], float],
                  what: str) -> str | None:
    """None while a reader works; otherwise what is wrong (for the service's health check): its thread was
    started and has ended, for whatever reason, or ``faults`` says failing. ``what``: the thread's work."""
    if thread is not None and not thread.is_alive():
        return f"the {what} thread has ended"
    now = clock()  # only now: a clock that raised may be why the thread ended
    return faults.describe(now) if faults.failing(now) else None
