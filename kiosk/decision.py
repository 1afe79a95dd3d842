"""Access decisions from per-frame matches (pure logic, injected clock).

Grant only after K matching frames of the same person within a window; a
second face in view follows a policy (deny by default); cooldown after a
grant; lockout after N denials within a window; denial events rate-limited;
validity windows respected.  Nothing here sleeps or reads the wall clock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)


class MultiFacePolicy(StrEnum):
    DENY = "deny"  # more than one face in view: never grant
    LARGEST = "largest"  # decide on the largest face, ignore the rest


@dataclass(frozen=True)
class DecisionConfig:
    frames_to_grant: int = 3
    window_s: float = 2.0
    multi_face: MultiFacePolicy = MultiFacePolicy.DENY
    cooldown_s: float = 5.0
    lockout_attempts: int = 5
    lockout_window_s: float = 60.0
    lockout_s: float = 60.0
    deny_event_interval_s: float = 10.0


@dataclass(frozen=True)
class FaceMatch:
    """One face in one frame: who it matched (None: nobody) and how well."""

    person: str | None
    score: float
    area: float = 0.0


@dataclass(frozen=True)
class Decision:
    granted: bool
    person: str | None
    score: float
    reason: str  # granted | unknown | multiple_faces | not_valid_now | locked_out


class DecisionEngine:
    """Feed it the matches of every processed frame; it returns a Decision when one is made."""

    def __init__(self, config: DecisionConfig, clock: Callable[[], float],
                 is_valid: Callable[[str, float], bool] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.is_valid = is_valid or (lambda person, now: True)
        self._streak: deque[tuple[float, str | None, float]] = deque()
        self._denials: deque[float] = deque()
        self._cooldown_until = float("-inf")
        self._locked_until = float("-inf")
        self._last_deny_event: dict[str, float] = {}  # per reason
        self._presence_denied = False  # this approach already counted as one denied attempt

    @property
    def locked_out(self) -> bool:
        return self.clock() < self._locked_until

    def observe(self, faces: list[FaceMatch], extra_faces: int = 0) -> Decision | None:
        """``faces``: the faces that passed the quality gates; ``extra_faces``: others in view."""
        now = self.clock()
        if not faces:
            self._streak.clear()
            self._presence_denied = False
            return None
        if now < self._cooldown_until:
            return None
        if now < self._locked_until:
            return self._deny(now, None, max(f.score for f in faces), "locked_out", count=False)
        if len(faces) + extra_faces > 1 and self.config.multi_face is MultiFacePolicy.DENY:
            self._streak.clear()
            return self._deny(now, None, max(f.score for f in faces), "multiple_faces", count=False)
        face = max(faces, key=lambda f: f.area)
        self._streak.append((now, face.person, face.score))
        while self._streak and now - self._streak[0][0] > self.config.window_s:
            self._streak.popleft()
        recent = list(self._streak)[-self.config.frames_to_grant:]
        if len(recent) < self.config.frames_to_grant or len({p for _, p, _ in recent}) != 1:
            return None
        self._streak.clear()
        score = min(s for _, _, s in recent)
        if face.person is None:
            return self._deny(now, None, score, "unknown")
        if not self.is_valid(face.person, now):
            return self._deny(now, face.person, score, "not_valid_now")
        self._cooldown_until = now + self.config.cooldown_s
        self._denials.clear()
        self._presence_denied = False
        return Decision(True, face.person, score, "granted")

    def _deny(self, now: float, person: str | None, score: float, reason: str, count: bool = True) -> Decision | None:
        if count and not self._presence_denied:
            self._presence_denied = True
            self._denials.append(now)
            while self._denials and now - self._denials[0] > self.config.lockout_window_s:
                self._denials.popleft()
            if len(self._denials) >= self.config.lockout_attempts:
                self._locked_until = now + self.config.lockout_s
                self._denials.clear()
                logger.warning("lockout for %.0f s after %d denied attempts", self.config.lockout_s,
                               self.config.lockout_attempts)
        if now - self._last_deny_event.get(reason, float("-inf")) < self.config.deny_event_interval_s:
            return None
        self._last_deny_event[reason] = now
        return Decision(False, person, score, reason)
