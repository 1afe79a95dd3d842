"""Liveness cues behind one small interface (the flatness cue: ``flatness.py``).

A cue can deny (FLAT) or ask for more evidence (PENDING). LIVE from a cue is
a vote, never a grant: the judge grants only when every required cue votes
LIVE and none votes FLAT. A later cue with its own frame source (infrared)
reads what it needs from ``Observation.extra`` and plugs into the judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Protocol

import numpy as np
import numpy.typing as npt

from . import geometry as g


class Verdict(StrEnum):
    LIVE = "live"
    FLAT = "flat"
    PENDING = "pending"


@dataclass(frozen=True)
class LivenessResult:
    verdict: Verdict
    reason: str  # parallax, flat_homography, challenge_timeout, wrong_direction, waiting_motion, challenge_pending...
    values: dict[str, float] = field(default_factory=dict)  # cue values for events, never images


@dataclass(frozen=True)
class Observation:
    """What one frame tells the cues about one track."""

    now: float
    landmarks: npt.NDArray[np.float32] | None  # (468, 3) frame pixels, None: no evidence this frame
    extra: Mapping[str, object] = field(default_factory=dict)  # other frame sources (e.g. "infrared")

    @cached_property
    def rigid(self) -> npt.NDArray[np.float64] | None:
        """The rigid landmarks (``geometry.rigid``), once for every cue; None without a mesh or with a
        broken one (a coordinate that is not finite)."""
        if self.landmarks is None:
            return None
        rig = g.rigid(self.landmarks)
        return rig if np.isfinite(rig).all() else None


class Cue(Protocol):
    """One source of liveness evidence, with state per track."""

    name: str
    required: bool  # must vote LIVE for a grant; a non-required cue can only deny

    def observe(self, track_id: int, obs: Observation) -> LivenessResult: ...

    def reset(self, track_id: int) -> None: ...
