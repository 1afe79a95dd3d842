"""Helpers for judging synthetic landmark sequences: a recording prompter, an injected clock and seeds."""

from __future__ import annotations

import random

import numpy as np

from kiosk.liveness.challenge import choose_direction
from kiosk.liveness.cues import LivenessResult
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from tests import liveness_synth as synth
from tests.clock import FakeClock

DT = 1 / 15  # frames at 15 fps


class RecordingPrompter:
    """A prompter that remembers what it was asked to show."""

    def __init__(self) -> None:
        self.shown: list[str | None] = []
        self.closed = False

    def prompt(self, direction: str) -> None:
        self.shown.append(direction)

    def clear(self) -> None:
        self.shown.append(None)

    def close(self) -> None:
        self.closed = True


def _judge(mode: str = "challenge", seed: int = 0, **kw: object) -> tuple[LivenessJudge, FakeClock, RecordingPrompter]:
    """A judge of synthetic landmarks. They come without pixels, so the eye-band check, which needs the
    frames, is off unless asked for (``planar_band_max``): tests/test_liveness_regions.py covers it."""
    kw.setdefault("planar_band_max", 0.0)
    clock, prompter = FakeClock(), RecordingPrompter()
    return LivenessJudge(LivenessSettings(mode=mode, **kw), clock, prompter, random.Random(seed)), clock, prompter


def _feed(judge: LivenessJudge, clock: FakeClock, frames: list[np.ndarray | None], track: int = 1) -> list[LivenessResult]:
    out = []
    for f in frames:
        out.append(judge.observe(track, f))
        clock.advance(DT)
    return out


def _still(flat: bool, n: int, seed: int = 5) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    m = synth.model(flat)
    return [synth.pose(m, noise_px=0.3, rng=rng) for _ in range(n)]


def _turn(flat: bool, yaw_to: float, n: int = 15, pitch_to: float = 0.0, start: float = 0.0,
          hold: int = 6, noise_px: float = 0.15) -> list[np.ndarray | None]:
    """A turn over ``n`` frames, then held for ``hold`` frames."""
    m = synth.model(flat)
    rng = np.random.default_rng(9)
    steps = [min(k, n - 1) / (n - 1) for k in range(n + hold)]
    return [synth.pose(m, start + (yaw_to - start) * s, pitch_to * s, noise_px=noise_px, rng=rng) for s in steps]


def _direction_of(seed: int) -> str:
    return choose_direction(random.Random(seed))


def _seeds() -> tuple[int, int]:
    """A seed whose first draw is left and one whose first draw is right."""
    left = next(s for s in range(100) if _direction_of(s) == "left")
    right = next(s for s in range(100) if _direction_of(s) == "right")
    return left, right
