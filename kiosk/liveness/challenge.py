"""The randomised head-turn challenge: one prompt per attempt, a deadline, a direction to check."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

DIRECTIONS = ("left", "right")


class TurnState(StrEnum):
    WAITING = "waiting"  # no turn yet, deadline not reached
    TURNED = "turned"  # turned the prompted way by at least min_turn
    WRONG = "wrong"  # turned the other way first
    TIMEOUT = "timeout"


def choose_direction(rng: random.Random) -> str:
    """Left or right, from the injected generator (a SystemRandom in service): never predictable."""
    return rng.choice(DIRECTIONS)


def turn_sign(direction: str, mirrored: bool = False) -> float:
    """Sign of the yaw change (``geometry.yaw_pitch``) a turn to the person's ``direction`` makes.

    The person faces the camera: their left is the image's right, where the
    nose goes when they turn left, unless the frames are mirrored.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    sign = 1.0 if direction == "left" else -1.0
    return -sign if mirrored else sign


@dataclass
class Challenge:
    """One prompted turn. ``baseline`` is the yaw before the person reacted (the last one seen before
    the prompt, else the first one after it)."""

    direction: str
    started: float
    timeout_s: float
    min_turn: float
    mirrored: bool = False
    baseline: float | None = None
    peak: float = 0.0  # largest yaw change in the prompted direction so far
    state: TurnState = TurnState.WAITING
    midway: bool = False  # a frame between a quarter of min_turn and min_turn was seen: the turn was gradual

    def observe(self, now: float, yaw: float | None) -> TurnState:
        """Update with one frame's yaw (None: no landmarks this frame); the state sticks once decided."""
        if self.state is not TurnState.WAITING:
            return self.state
        if yaw is not None:
            if self.baseline is None:
                self.baseline = yaw
            change = (yaw - self.baseline) * turn_sign(self.direction, self.mirrored)
            self.peak = max(self.peak, change)
            if change <= -self.min_turn:
                self.state = TurnState.WRONG
            elif change >= self.min_turn:
                # A head passes through the poses in between; a picture swapped for a picture of the
                # turned head does not. Without a frame on the way, the turned pose is no turn (yet).
                if self.midway:
                    self.state = TurnState.TURNED
            elif change >= 0.25 * self.min_turn:
                self.midway = True
        if self.state is TurnState.WAITING and now - self.started > self.timeout_s:
            self.state = TurnState.TIMEOUT
        return self.state

    def expired(self, now: float) -> bool:
        return now - self.started > self.timeout_s

    def values(self, now: float) -> dict[str, float]:
        """What an event reports of the challenge: the largest prompted turn seen and the time since the prompt."""
        return {"turn": round(self.peak, 4), "challenge_s": round(now - self.started, 3)}
