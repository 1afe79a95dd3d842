"""The impostor and genuine score model of the embedder, read from the shipped table.

``score_table.json`` (beside this module; recomputed by
``benchmarks/score_model.py`` when the model or the alignment changes) holds,
on a grid of cosine thresholds, how many impostor pairs and how many genuine
pairs of labelled photo sets score at or above each threshold. Numbers only.

The per-comparison false-accept rate FAR(t) is

* **measured** where at least ``min_count`` impostor pairs score at or above
  t: interpolated linearly in log(FAR) between grid points;
* **extrapolated** above the last such threshold: an exponential tail,
  log10 FAR = log10 FAR(t_m) + slope * (t - t_m), anchored at the last
  measured point t_m with the slope fitted over the last two measured
  decades. Impostor cosines of a good embedder fall off faster than
  exponentially, so this tail overstates FAR (and so errs towards a higher
  threshold) if the fall-off continues as measured.

Two impostor curves are kept: photo against photo (``single``) and a
3-photo fused template against a photo of another person (``template3``).
The model's FAR is the larger of the two at every threshold unless a curve is
named.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError

logger = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).with_name("score_table.json")
MIN_COUNT = 10  # impostor pairs at or above t for FAR(t) to count as measured
TAIL_DECADES = 2.0  # the tail slope is fitted over this many decades above the measured floor
F64 = npt.NDArray[np.float64]


class ScoreTableError(KioskError, ValueError):
    exit_code = 6


@dataclass(frozen=True)
class Curve:
    """Pairs of one kind and how many score at or above each grid threshold."""

    pairs: int
    at_or_above: tuple[int, ...]

    def rate(self) -> F64:
        return np.asarray(self.at_or_above, np.float64) / max(self.pairs, 1)


@dataclass(frozen=True)
class Tail:
    """log10 FAR = log10_far + slope * (t - t) beyond the last measured threshold ``t``."""

    t: float
    log10_far: float
    slope: float  # per unit of cosine, negative
    fitted_from: float  # lowest threshold of the fit


@dataclass(frozen=True)
class FarEstimate:
    far: float
    measured: bool  # False: from the fitted tail (extrapolated)
    count: int | None  # impostor pairs at or above the grid point just below t (measured part)
    pairs: int


def _tail(grid: F64, curve: Curve, min_count: int) -> Tail:
    counts = np.asarray(curve.at_or_above)
    ok = np.nonzero(counts >= min_count)[0]
    if ok.size < 2:
        raise ScoreTableError(f"an impostor curve has fewer than two grid points with at least {min_count} pairs; "
                              "recompute the table with more photos (benchmarks/score_model.py)")
    m = int(ok[-1])
    far = curve.rate()
    lo_far = far[m] * 10 ** TAIL_DECADES
    fit = [i for i in ok if far[i] <= lo_far]
    t0, y0 = float(grid[m]), math.log10(far[m])
    x = grid[fit] - t0
    y = np.log10(far[fit]) - y0
    denom = float(np.dot(x, x))
    slope = float(np.dot(x, y) / denom) if denom > 0 else -50.0
    slope = min(slope, -1e-3)  # never flat or rising
    return Tail(t0, y0, slope, float(grid[fit[0]]))


class ScoreModel:
    """FAR(t), its inverse and TAR(t), from a score table."""

    def __init__(self, table: dict[str, Any], min_count: int = MIN_COUNT) -> None:
        try:
            self.grid = np.asarray(table["cosine"], np.float64)
            self.impostor = {k: Curve(int(v["pairs"]), tuple(int(c) for c in v["at_or_above"]))
                             for k, v in table["impostor"].items()}
            self.genuine = {k: Curve(int(v["pairs"]), tuple(int(c) for c in v["at_or_above"]))
                            for k, v in table["genuine"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ScoreTableError(f"score table lacks or mangles {exc}: expected cosine, impostor, genuine; "
                                  "recompute it with benchmarks/score_model.py") from exc
        for name, c in {**self.impostor, **self.genuine}.items():
            if len(c.at_or_above) != self.grid.size:
                raise ScoreTableError(f"score table curve {name!r} has {len(c.at_or_above)} counts for "
                                      f"{self.grid.size} thresholds")
        if self.grid.size < 2 or np.any(np.diff(self.grid) <= 0):
            raise ScoreTableError("score table thresholds must rise strictly")
        if not self.impostor or not self.genuine:
            raise ScoreTableError("score table needs at least one impostor and one genuine curve")
        self.table = table
        self.min_count = min_count
        self.provenance: dict[str, Any] = dict(table.get("provenance", {}))

    @classmethod
    def load(cls, path: Path | None = None) -> ScoreModel:
        path = path or TABLE_PATH
        try:
            return cls(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise ScoreTableError(f"score table {path} is missing: run `python -m benchmarks.score_model`") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ScoreTableError(f"score table {path} is unreadable ({exc}); recompute it with "
                                  "`python -m benchmarks.score_model`") from exc

    @cached_property
    def tails(self) -> dict[str, Tail]:
        return {k: _tail(self.grid, c, self.min_count) for k, c in self.impostor.items()}

    def measured_limit(self, curve: str | None = None) -> float:
        """Highest cosine whose FAR is measured (for every curve, unless one is named)."""
        names = [curve] if curve else list(self.impostor)
        return min(self.tails[n].t for n in names)

    def far_detail(self, t: float, curve: str | None = None) -> FarEstimate:
        """FAR at threshold ``t`` for one impostor curve, or the largest over all curves."""
        if curve is None:
            ests = [self.far_detail(t, name) for name in self.impostor]
            worst = max(ests, key=lambda e: e.far)
            return FarEstimate(worst.far, all(e.measured for e in ests), worst.count, worst.pairs)
        c = self.impostor[curve]
        tail = self.tails[curve]
        if t <= self.grid[0]:
            return FarEstimate(c.rate()[0], True, c.at_or_above[0], c.pairs)
        if t > tail.t:
            return FarEstimate(10 ** (tail.log10_far + tail.slope * (t - tail.t)), False, None, c.pairs)
        i = int(np.searchsorted(self.grid, t, side="right")) - 1
        rate = c.rate()
        if i + 1 >= self.grid.size or self.grid[i] == t:
            return FarEstimate(float(rate[i]), True, c.at_or_above[i], c.pairs)
        a, b = math.log(max(rate[i], 1e-300)), math.log(max(rate[i + 1], 1e-300))
        w = (t - self.grid[i]) / (self.grid[i + 1] - self.grid[i])
        return FarEstimate(math.exp(a + w * (b - a)), True, c.at_or_above[i], c.pairs)

    def far(self, t: float, curve: str | None = None) -> float:
        return self.far_detail(t, curve).far

    def threshold_for(self, far: float, curve: str | None = None) -> float:
        """Lowest cosine t with FAR(t) <= ``far`` (to 1e-6), by bisection on the monotone FAR."""
        if not 0.0 < far < 1.0:
            raise ValueError(f"a false-accept rate must be in (0, 1), got {far}")
        lo, hi = float(self.grid[0]), 1.0
        if self.far(lo, curve) <= far:
            return lo
        if self.far(hi, curve) > far:
            return hi
        while hi - lo > 1e-6:
            mid = (lo + hi) / 2.0
            if self.far(mid, curve) <= far:
                hi = mid
            else:
                lo = mid
        return hi

    def tar(self, t: float, curve: str = "template3") -> float:
        """Share of genuine comparisons scoring at or above ``t`` (linear between grid points)."""
        c = self.genuine.get(curve) or next(iter(self.genuine.values()))
        return float(np.interp(t, self.grid, c.rate()))

    def genuine_quantile(self, q: float, curve: str = "single") -> float:
        """Cosine below which a share ``q`` of genuine comparisons falls."""
        c = self.genuine.get(curve) or next(iter(self.genuine.values()))
        below = 1.0 - c.rate()  # rises with t
        return float(np.interp(q, below, self.grid))

    def summary(self) -> dict[str, Any]:
        """The figures a model card or a log line needs."""
        out: dict[str, Any] = {"measured_min_count": self.min_count, "curves": {}}
        for name, c in self.impostor.items():
            tail = self.tails[name]
            out["curves"][name] = {
                "impostor_pairs": c.pairs,
                "measured_down_to_far": round(10 ** tail.log10_far, 12),
                "measured_up_to_cosine": round(tail.t, 4),
                "tail_log10_slope_per_cosine": round(tail.slope, 3),
                "tail_fitted_from_cosine": round(tail.fitted_from, 4),
            }
        out["threshold_for_far"] = {f"{f:g}": {"cosine": round(self.threshold_for(f), 4),
                                               "measured": self.far_detail(self.threshold_for(f)).measured,
                                               "tar_template3": round(self.tar(self.threshold_for(f)), 4),
                                               "tar_single": round(self.tar(self.threshold_for(f), "single"), 4)}
                                    for f in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)}
        out["genuine_pairs"] = {k: c.pairs for k, c in self.genuine.items()}
        return out


_DEFAULT: ScoreModel | None = None


def default_model() -> ScoreModel:
    """The shipped table, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ScoreModel.load()
    return _DEFAULT
