"""How the self-test reads the loop's liveness output: the one place that knows its shape.

``kiosk.loop.FrameResult.liveness`` holds, per face (aligned with ``faces``),
a ``kiosk.liveness.LivenessResult`` (verdict live/flat/pending, reason, cue
values) or None. Everything else in ``kiosk.pad`` reads it through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LIVE, FLAT, PENDING = "live", "flat", "pending"


@dataclass(frozen=True)
class LivenessView:
    verdict: str  # live | flat | pending
    reason: str
    values: dict[str, float]
    challenge: bool  # the result comes from (or during) a prompted head turn


def _view(r: Any) -> LivenessView:
    verdict = str(getattr(r.verdict, "value", r.verdict)).lower()
    reason = str(getattr(r, "reason", ""))
    values = {str(k): float(v) for k, v in dict(getattr(r, "values", {}) or {}).items()}
    challenge = "challenge" in reason or reason == "wrong_direction" or "challenge_direction" in values
    return LivenessView(verdict, reason, values, challenge)


def liveness_of(result: Any) -> LivenessView | None:
    """The liveness of the largest face in a frame result that has one (None: nothing judged)."""
    items = list(getattr(result, "liveness", None) or [])
    faces = list(getattr(result, "faces", []))
    best: tuple[float, Any] | None = None
    for i, r in enumerate(items):
        if r is None:
            continue
        area = faces[i].area if i < len(faces) else 0.0
        if best is None or area > best[0]:
            best = (area, r)
    return None if best is None else _view(best[1])
