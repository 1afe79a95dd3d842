"""Cosine matching of embeddings against a gallery (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

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


class Gallery:
    """A matrix of unit embeddings, each row labelled with a person id.

    A person may have several rows; the best row counts.
    """

    def __init__(self, embeddings: F32, labels: list[str]) -> None:
        embeddings = np.asarray(embeddings, np.float32).reshape(len(labels), -1) if labels else np.zeros((0, 0), np.float32)
        if len(labels) != embeddings.shape[0]:
            raise ValueError(f"{len(labels)} labels for {embeddings.shape[0]} embeddings")
        self.matrix = np.ascontiguousarray(embeddings)
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def scores(self, query: F32) -> F32:
        return self.matrix @ np.asarray(query, np.float32).reshape(-1)

    def match(self, query: F32, threshold: float) -> Match:
        if not self.labels:
            return Match(None, -1.0, -1)
        scores = self.scores(query)
        i = int(np.argmax(scores))
        best = float(scores[i])
        return Match(self.labels[i] if best >= threshold else None, best, i)
