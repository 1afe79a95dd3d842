"""The top-2 margin rule (pure): a grant needs a clear best person, not just a score over the threshold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"  # nobody clears the threshold
    AMBIGUOUS = "ambiguous"  # the best clears it but the second best is within the margin


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    person: str | None  # the granted person; None unless granted
    best: float
    second: float
    threshold: float
    margin: float

    @property
    def granted(self) -> bool:
        return self.outcome is Outcome.GRANTED


def decide(best_person: str | None, best: float, second: float, threshold: float, margin: float) -> Verdict:
    """Granted when ``best >= threshold`` and ``best - second >= margin``; else unknown or ambiguous.

    ``second`` is the best score of anybody other than ``best_person`` (-1 when nobody else is enrolled).
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if best_person is None or best < threshold:
        return Verdict(Outcome.UNKNOWN, None, best, second, threshold, margin)
    if best - second < margin:
        return Verdict(Outcome.AMBIGUOUS, None, best, second, threshold, margin)
    return Verdict(Outcome.GRANTED, best_person, best, second, threshold, margin)
