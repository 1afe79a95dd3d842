"""Cosine matching of embeddings against a gallery (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def cosine(a: F32, b: F32) -> float:
    """Cosine similarity of two unit vectors."""
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


def distance(similarity: float) -> float:
    """Euclidean distance between unit vectors with this cosine similarity."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


@dataclass(frozen=True)
class Match:
    label: str | None  # None: nobody at or above the threshold
    score: float  # best cosine similarity found (-1 with an empty gallery)
    index: int  # row of the best score, -1 with an empty gallery


class Top2(NamedTuple):
    """The closest person, their score, and the best score of anybody else (-1: nobody else)."""

    person: str | None
    best: float
    second: float


def fuse_rows(rows: F32, weights: npt.ArrayLike | None = None) -> F32:
    """One unit template from a person's unit rows: (weighted) mean, then L2-normalised."""
    r = np.asarray(rows, np.float64)
    w = np.ones(r.shape[0]) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    total = (w[:, None] * r).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-9:
        raise ValueError("rows cancel out: they cannot be one person")
    return (total / norm).astype(np.float32)


class Gallery:
    """A matrix of unit embeddings, each row labelled with a person id.

    A person may have several rows; the best row counts. ``Gallery.from_rows``
    fuses each person's rows into one template, one row per person.
    """

    def __init__(self, embeddings: F32, labels: list[str]) -> None:
        embeddings = np.asarray(embeddings, np.float32).reshape(len(labels), -1) if labels else np.zeros((0, 0), np.float32)
        if len(labels) != embeddings.shape[0]:
            raise ValueError(f"{len(labels)} labels for {embeddings.shape[0]} embeddings")
        self.matrix = np.ascontiguousarray(embeddings)
        self.labels = list(labels)

    @classmethod
    def from_rows(cls, labels: list[str], rows: F32) -> Gallery:
        """One fused template per person (in order of first appearance) from rows labelled per person."""
        if not labels:
            return cls(np.zeros((0, 0), np.float32), [])
        rows = np.asarray(rows, np.float32).reshape(len(labels), -1)
        codes: dict[str, int] = {}
        idx = np.fromiter((codes.setdefault(label, len(codes)) for label in labels), np.int64, len(labels))
        cols = np.ascontiguousarray(rows.T)  # per-person sums column by column (float64, no sort)
        sums = np.stack([np.bincount(idx, weights=col, minlength=len(codes)) for col in cols], axis=1)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        if np.any(norms < 1e-9):
            raise ValueError("a person's rows cancel out: they cannot be one person")
        return cls((sums / norms).astype(np.float32), list(codes))

    def __len__(self) -> int:
        return len(self.labels)

    def people(self) -> int:
        """Distinct people (templates counted by the security level are ``len(self)`` rows)."""
        return len(set(self.labels))

    def scores(self, query: F32) -> F32:
        return self.matrix @ np.asarray(query, np.float32).reshape(-1)

    def match(self, query: F32, threshold: float) -> Match:
        if not self.labels:
            return Match(None, -1.0, -1)
        scores = self.scores(query)
        i = int(np.argmax(scores))
        best = float(scores[i])
        return Match(self.labels[i] if best >= threshold else None, best, i)

    def top2(self, query: F32) -> Top2:
        """Best person, best score and the best score of any other person.

        Two vectorised passes over the scores when the runner-up is somebody
        else (always, with one template per person); a few more when the best
        person holds several of the top rows.
        """
        n = len(self.labels)
        if n == 0:
            return Top2(None, -1.0, -1.0)
        scores = self.scores(query)
        i = int(np.argmax(scores))
        best_label, best = self.labels[i], float(scores[i])
        for _ in range(min(n - 1, 16)):
            scores[i] = -np.inf
            i = int(np.argmax(scores))
            if self.labels[i] != best_label:
                return Top2(best_label, best, float(scores[i]))
        mask = np.fromiter((label != best_label for label in self.labels), bool, n)
        return Top2(best_label, best, float(scores[mask].max()) if mask.any() else -1.0)
