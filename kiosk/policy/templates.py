"""One template per person: fusing enrollment photos, and the checks on a photo set (pure numpy).

A template is the normalised (optionally quality-weighted) mean of a
person's unit embeddings. Averaging cancels much of what varies between
photos (pose, light, expression), so the gallery holds one row per person
and the door's threshold depends on the number of people, not photos.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kiosk.policy.scoremodel import ScoreModel

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
MAX_PHOTOS = 10
SAME_PERSON_QUANTILE = 0.02  # a pair below this quantile of genuine photo pairs disagrees (benchmarks/enroll_checks.py)


def fuse(embeddings: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> F32:
    """Unit template from 1-10 unit embeddings of one person: (weighted) mean, then L2-normalised."""
    e = np.asarray(embeddings, np.float64)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or not 1 <= e.shape[0] <= MAX_PHOTOS:
        raise ValueError(f"expected 1 to {MAX_PHOTOS} embeddings of one person, got shape {e.shape}")
    w = np.ones(e.shape[0]) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w.shape[0] != e.shape[0] or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"expected {e.shape[0]} non-negative weights, not all zero; got {w.tolist()}")
    total = (w[:, None] * e).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-9:
        raise ValueError("the embeddings cancel out: they cannot be one person")
    return (total / norm).astype(np.float32)


def same_person_threshold(model: ScoreModel, quantile: float = SAME_PERSON_QUANTILE) -> float:
    """Cosine below which only ``quantile`` of genuine photo pairs fall in the score table."""
    return model.genuine_quantile(quantile, "single")


@dataclass(frozen=True)
class Consistency:
    ok: bool
    threshold: float
    min_score: float  # lowest pairwise cosine in the set (1.0 with a single photo)
    disagreeing: tuple[tuple[int, int, float], ...]  # (i, j, cosine) of pairs below the threshold
    outliers: tuple[int, ...]  # photos in most disagreeing pairs: the likely odd ones out
    quantile: float = SAME_PERSON_QUANTILE  # share of genuine photo pairs below the threshold

    def message(self, names: list[str] | None = None) -> str:
        if self.ok:
            return f"photos agree (lowest pair {self.min_score:.3f}, threshold {self.threshold:.3f})"
        label = (lambda i: names[i]) if names else (lambda i: f"photo {i + 1}")
        pairs = ", ".join(f"{label(i)}~{label(j)} {s:.3f}" for i, j, s in self.disagreeing[:5])
        odd = ", ".join(label(i) for i in self.outliers)
        share = f"{100 * (1 - self.quantile):.0f}%"
        return (f"photos disagree: {pairs} score below {self.threshold:.3f}, where {share} of photo pairs of the "
                f"same person lie above; they are likely of two different people (odd one out: {odd}). "
                "Use 3-10 photos of one person only")


def consistency(embeddings: npt.ArrayLike, threshold: float, quantile: float = SAME_PERSON_QUANTILE) -> Consistency:
    """Every pair of the set must score at least ``threshold`` (see ``same_person_threshold``)."""
    e = np.asarray(embeddings, np.float32)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"expected a (photos, dim) array, got shape {e.shape}")
    if e.shape[0] == 1:
        return Consistency(True, threshold, 1.0, (), (), quantile)
    s = e @ e.T
    i, j = np.triu_indices(e.shape[0], k=1)
    pair = s[i, j]
    bad = tuple((int(a), int(b), float(v)) for a, b, v in zip(i, j, pair) if v < threshold)
    counts = np.zeros(e.shape[0], int)
    for a, b, _ in bad:
        counts[a] += 1
        counts[b] += 1
    outliers = tuple(int(k) for k in np.nonzero(counts == counts.max())[0]) if bad else ()
    return Consistency(not bad, threshold, float(pair.min()), bad, outliers, quantile)


def duplicates(templates: npt.ArrayLike, labels: list[str], template: npt.ArrayLike, threshold: float,
               exclude: str | None = None) -> list[tuple[str, float]]:
    """Enrolled people (other than ``exclude``) whose template the new one reaches at ``threshold``.

    With the door's own threshold for the gallery after enrollment, a hit
    means the door could not tell the two apart.
    """
    if not labels:
        return []
    m = np.asarray(templates, np.float32).reshape(len(labels), -1)
    scores = m @ np.asarray(template, np.float32).reshape(-1)
    best: dict[str, float] = {}
    for label, s in zip(labels, scores):
        if label != exclude and s >= threshold:
            best[label] = max(best.get(label, -1.0), float(s))
    return sorted(best.items(), key=lambda kv: -kv[1])
