"""PIN lockout per claimed identity (pure logic, injected clock).

``attempts`` wrong PINs for one identity within ``window_s`` lock that
identity out for ``lockout_s``: while locked, no PIN is even checked (the
answer is "locked out", whatever was typed). A guesser at the keypad gets
``attempts`` tries per ``lockout_s``, or ``attempts - 1`` per ``window_s``
by pacing them, whichever is more (:meth:`LockoutConfig.max_guesses_per_day`).
A correct PIN clears the count.
The key is whatever identifies the claim: a person id, or the typed user code
when it names nobody (so probing codes is throttled the same way).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockoutConfig:
    attempts: int = 3
    window_s: float = 3600.0
    lockout_s: float = 3600.0

    def max_guesses_per_day(self) -> float:
        """The most wrong PINs one identity can take in a day: bursts then lockouts, or pacing under the limit."""
        burst = self.attempts / self.lockout_s if self.lockout_s > 0 else float("inf")
        paced = (self.attempts - 1) / self.window_s
        return 86400 * max(burst, paced)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.window_s <= 0 or self.lockout_s < 0:
            raise ValueError(f"lockout needs attempts >= 1, window_s > 0, lockout_s >= 0; got {self}")


class PinLockout:
    def __init__(self, config: LockoutConfig, clock: Callable[[], float], max_identities: int = 10_000) -> None:
        self.config = config
        self.clock = clock
        self.max_identities = max_identities
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked(self, identity: str) -> bool:
        until = self._locked_until.get(identity)
        if until is None:
            return False
        if self.clock() < until:
            return True
        del self._locked_until[identity]
        return False

    def remaining_s(self, identity: str) -> float:
        return max(0.0, self._locked_until.get(identity, 0.0) - self.clock()) if self.locked(identity) else 0.0

    def failure(self, identity: str) -> bool:
        """Count a wrong PIN; True when this one locked the identity out."""
        now = self.clock()
        if self.locked(identity):
            return False
        times = self._failures.setdefault(identity, deque())
        times.append(now)
        while times and now - times[0] > self.config.window_s:
            times.popleft()
        if len(times) >= self.config.attempts:
            del self._failures[identity]
            self._locked_until[identity] = now + self.config.lockout_s
            logger.warning("PIN lockout for one identity for %.0f s after %d wrong PINs in %.0f s",
                           self.config.lockout_s, self.config.attempts, self.config.window_s)
            return True
        self._prune(now)
        return False

    def success(self, identity: str) -> None:
        self._failures.pop(identity, None)

    def _prune(self, now: float) -> None:
        """Bound memory against a flood of made-up codes: forget the oldest stale counts."""
        if len(self._failures) <= self.max_identities:
            return
        for key in [k for k, t in self._failures.items() if not t or now - t[-1] > self.config.window_s]:
            del self._failures[key]
        while len(self._failures) > self.max_identities:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
