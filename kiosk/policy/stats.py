"""Exact (Clopper-Pearson) binomial confidence intervals, in pure Python.

Every security figure the project reports comes with one: ``k`` accepts out
of ``n`` trials says little without the range of rates it is compatible with.
"""

from __future__ import annotations

import math

_EPS = 3e-16
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """x with I_x(a, b) = q, by bisection (monotone, 200 halvings reach machine precision)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-300 + 1e-15 * mid:
            break
    return (lo + hi) / 2.0


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate from ``k`` successes in ``n`` trials.

    With k = 0 the upper end is ``1 - (alpha/2) ** (1/n)``; with k = n the lower end is ``(alpha/2) ** (1/n)``.
    """
    if n <= 0:
        raise ValueError(f"need at least one trial, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {k}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lower = 0.0 if k == 0 else (alpha / 2.0) ** (1.0 / n) if k == n else beta_ppf(alpha / 2.0, k, n - k + 1)
    upper = 1.0 if k == n else 1.0 - (alpha / 2.0) ** (1.0 / n) if k == 0 else beta_ppf(1.0 - alpha / 2.0, k + 1, n - k)
    return lower, upper


def format_rate(k: int, n: int, confidence: float = 0.95) -> str:
    """``3/1000 = 3.0e-03 [6.2e-04, 8.7e-03]``: a rate with its exact interval."""
    lo, hi = clopper_pearson(k, n, confidence)
    return f"{k}/{n} = {k / n:.2e} [{lo:.2e}, {hi:.2e}]"
