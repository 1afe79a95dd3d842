"""The door's cosine threshold, derived from a security level and the size of the gallery (pure).

A stranger's approach is compared with every template the kiosk holds; it
is let in if any one comparison clears the threshold. With N templates and a
per-comparison false-accept rate FAR_cmp, a stranger is accepted with
probability 1 - (1 - FAR_cmp)^N (comparisons treated as independent). To
hold a tolerated stranger-acceptance rate ``target`` per approach:

    FAR_cmp = 1 - (1 - target)^(1/N)        (about target / N)

and the threshold is the cosine at which the score model gives FAR_cmp.
More people enrolled means a stricter threshold, and so fewer true accepts:
the expected true-accept rate is read from the genuine curve of the same
table. An explicit cosine stays possible; the level it gives is reported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from kiosk.policy.scoremodel import ScoreModel

logger = logging.getLogger(__name__)

DEFAULT_TARGET = 1e-4  # tolerated stranger acceptance per approach: 1 in 10,000
MIN_USEFUL_TAR = 0.5  # below this expected true-accept rate the level is not met usefully


def per_comparison_far(target: float, templates: int) -> float:
    """FAR per comparison that keeps the per-approach stranger acceptance at ``target`` with ``templates`` rows."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"the tolerated stranger acceptance must be in (0, 1), got {target}")
    n = max(int(templates), 1)
    return -math.expm1(math.log1p(-target) / n)


def approach_acceptance(far_cmp: float, templates: int) -> float:
    """Per-approach stranger acceptance 1 - (1 - FAR_cmp)^N."""
    return -math.expm1(max(int(templates), 1) * math.log1p(-min(max(far_cmp, 0.0), 1.0 - 1e-16)))


@dataclass(frozen=True)
class Level:
    """What the door's threshold means, for logs, stats and the operator."""

    target: float  # tolerated stranger acceptance per approach (for an explicit cosine: the one it gives)
    templates: int
    far_per_comparison: float
    threshold: float
    extrapolated: bool  # the threshold lies in the score model's fitted tail, beyond the measured data
    expected_tar: float  # genuine fused template vs one probe photo, from the score table
    explicit: bool = False  # the threshold was set by hand
    warning: str | None = None

    def describe(self) -> str:
        src = "set by hand" if self.explicit else "derived"
        part = "extrapolated" if self.extrapolated else "measured"
        text = (f"threshold cosine {self.threshold:.4f} ({src}) for {self.templates} templates: stranger acceptance "
                f"{self.target:.1e} per approach, {self.far_per_comparison:.1e} per comparison ({part} part of the "
                f"score model); expected true accepts {100 * self.expected_tar:.0f}% for a single photo probe")
        return text + (f". WARNING: {self.warning}" if self.warning else "")

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target, "templates": self.templates, "far_per_comparison": self.far_per_comparison,
                "threshold": round(self.threshold, 4), "extrapolated": self.extrapolated,
                "expected_tar": round(self.expected_tar, 4), "explicit": self.explicit, "warning": self.warning}


def _warning(model: ScoreModel, threshold: float, tar: float, min_tar: float) -> str | None:
    if threshold >= 1.0:
        return ("this level cannot be reached with this model (it needs a cosine of 1): no one would be let in. "
                "Raise the tolerated stranger acceptance, enroll fewer people per door, or require a second factor")
    if tar < min_tar:
        return (f"expected true accepts only {100 * tar:.0f}% (under {100 * min_tar:.0f}%) on single photos; enrolled "
                "people will often be refused. Multi-frame approaches do better (docs/security_level.md); otherwise "
                "raise the tolerated stranger acceptance, split the gallery per door, or require a second factor")
    return None


def derive(model: ScoreModel, templates: int, target: float = DEFAULT_TARGET, *,
           min_tar: float = MIN_USEFUL_TAR) -> Level:
    """The per-comparison threshold that holds ``target`` per approach with ``templates`` rows (monotone in N)."""
    far_cmp = per_comparison_far(target, templates)
    threshold = model.threshold_for(far_cmp)
    tar = model.tar(threshold)
    extrapolated = not model.far_detail(threshold).measured
    return Level(target, max(int(templates), 1), far_cmp, threshold, extrapolated, tar, False,
                 _warning(model, threshold, tar, min_tar))


def explicit(model: ScoreModel, templates: int, threshold: float, *, min_tar: float = MIN_USEFUL_TAR) -> Level:
    """The level an expert's fixed cosine gives with ``templates`` rows."""
    est = model.far_detail(threshold)
    tar = model.tar(threshold)
    return Level(approach_acceptance(est.far, templates), max(int(templates), 1), est.far, threshold,
                 not est.measured, tar, True, _warning(model, threshold, tar, min_tar))
