"""Error rates of ISO/IEC 30107-3 with exact (Clopper-Pearson) binomial intervals, pure Python.

APCER  attack presentation classification error rate: attacks of one species classified bona fide.
BPCER  bona fide presentation classification error rate: bona fide presentations classified as attacks.
APNRR / BPNRR  non-response rates: presentations that gave no verdict without a challenge.
IAPAR  impostor attack presentation accept rate: attacks that the whole system accepted (the door opened).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kiosk.policy import stats


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got {x}")
    return stats.betainc(a, b, x)


def beta_ppf(q: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = q."""
    return stats.beta_ppf(q, a, b)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial proportion of ``k`` errors in ``n`` trials."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    return stats.clopper_pearson(k, n, confidence)


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n`` presentations, with the 95 % Clopper-Pearson interval (None when n is 0)."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return clopper_pearson(self.k, self.n) if self.n else None

    def as_dict(self) -> dict[str, object]:
        ci = self.interval
        return {"k": self.k, "n": self.n, "rate": None if self.value is None else round(self.value, 4),
                "ci95": None if ci is None else [round(ci[0], 4), round(ci[1], 4)]}

    def __str__(self) -> str:
        if not self.n:
            return "n/a (n=0)"
        lo, hi = self.interval or (0.0, 0.0)
        return f"{100 * self.k / self.n:.1f} % ({self.k}/{self.n}, 95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


def rate(flags: Sequence[bool]) -> Rate:
    return Rate(sum(bool(f) for f in flags), len(flags))


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median and 90th percentile (nearest-rank) of ``values``, and how many there were."""
    if not values:
        return {"n": 0, "median": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, math.ceil(0.9 * len(ordered)) - 1))]
    return {"n": len(ordered), "median": round(statistics.median(ordered), 3), "p90": round(p90, 3)}
