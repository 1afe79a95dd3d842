"""Verification metrics from pair scores (pure numpy): ROC, AUC, accuracy, TAR@FAR."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
FARS = (0.01, 0.001)


@dataclass(frozen=True)
class Roc:
    fpr: F64
    tpr: F64
    thresholds: F64  # score >= threshold means "same"


def roc_curve(scores: npt.ArrayLike, same: npt.ArrayLike) -> Roc:
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be 1-D arrays of equal length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need both same and different pairs; got {n_pos} same, {n_neg} different")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[distinct]
    fp = np.cumsum(~y)[distinct]
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    thresholds = np.r_[np.inf, s[distinct]]
    return Roc(fpr, tpr, thresholds)


def auc(roc: Roc) -> float:
    """Area under the ROC curve (trapezoidal rule)."""
    return float(np.sum(np.diff(roc.fpr) * (roc.tpr[1:] + roc.tpr[:-1]) / 2.0))


def accuracy_at(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    return float(np.mean((s >= threshold) == y))


def best_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy; the threshold is a midpoint between scores."""
    s = np.sort(np.unique(np.asarray(scores, np.float64)))
    candidates = np.r_[s[0] - 1e-6, (s[:-1] + s[1:]) / 2.0, s[-1] + 1e-6]
    y = np.asarray(same, bool)
    sc = np.asarray(scores, np.float64)
    accs = np.array([np.mean((sc >= t) == y) for t in candidates])
    i = int(np.argmax(accs))
    return float(accs[i]), float(candidates[i])


def tar_at_far(roc: Roc, far: float) -> float:
    """Highest true-accept rate with false-accept rate at most ``far``."""
    ok = roc.fpr <= far + 1e-12
    return float(roc.tpr[ok].max()) if ok.any() else 0.0


def threshold_at_far(roc: Roc, far: float) -> float:
    """Lowest threshold whose false-accept rate is at most ``far``."""
    ok = np.nonzero(roc.fpr <= far + 1e-12)[0]
    return float(roc.thresholds[ok[-1]])


@dataclass
class Report:
    n_pairs: int
    n_same: int
    n_different: int
    n_skipped: int
    threshold: float
    accuracy_at_threshold: float
    best_accuracy: float
    best_threshold: float
    auc: float
    tar_at_far: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def verification_report(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float, n_skipped: int = 0) -> Report:
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    roc = roc_curve(s, y)
    best_acc, best_thr = best_threshold(s, y)
    return Report(
        n_pairs=int(s.size),
        n_same=int(y.sum()),
        n_different=int((~y).sum()),
        n_skipped=n_skipped,
        threshold=float(threshold),
        accuracy_at_threshold=accuracy_at(s, y, threshold),
        best_accuracy=best_acc,
        best_threshold=best_thr,
        auc=auc(roc),
        tar_at_far={str(f): tar_at_far(roc, f) for f in FARS},
    )


def all_pairs(labels: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Every unordered pair (i < j) of a labelled set, and whether it is the same label."""
    i, j = np.triu_indices(len(labels), k=1)
    lab = np.asarray(labels)
    return i.astype(np.int64), j.astype(np.int64), lab[i] == lab[j]
