"""An enrollment gallery that changes one person at a time.

Rows live in a matrix whose capacity doubles when full; ``label -> rows`` is
indexed, and deleting a row moves the last row into its place, so putting or
removing one person costs O(rows of that person) (plus an amortised O(1) per
row for growth).

``snapshot()`` hands out a ``kiosk.match.Gallery`` that views the matrix
without copying it. A snapshot never changes under its reader: the first
later write to a row that some snapshot can see copies the matrix first
(copy-on-write), and appends go to rows no snapshot sees. A reader that takes
a snapshot per frame therefore pays at most one copy per frame, however many
enrollments arrive in between.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from kiosk.match import Gallery

F32 = npt.NDArray[np.float32]


class IncrementalGallery:
    def __init__(self, dim: int = 128, capacity: int = 64) -> None:
        self.dim = dim
        self._buf: F32 = np.zeros((max(1, capacity), dim), np.float32)
        self._labels: list[str] = []
        self._rows: dict[str, list[int]] = {}
        self._shared_n = 0  # rows [0, _shared_n) are visible to a snapshot handed out
        self._snapshot: Gallery | None = None
        self._lock = threading.Lock()
        self.copies = 0  # copy-on-write copies made (for tests and stats)

    def __len__(self) -> int:
        return len(self._labels)

    def people(self) -> int:
        return len(self._rows)

    def __contains__(self, label: object) -> bool:
        return label in self._rows

    def rows_of(self, label: str) -> F32:
        with self._lock:
            return self._buf[self._rows.get(label, [])].copy()

    # writes
    def _writable(self, row: int) -> None:
        if row < self._shared_n:
            self._buf = self._buf.copy()
            self._shared_n = 0
            self.copies += 1

    def _append(self, label: str, vec: F32) -> None:
        n = len(self._labels)
        if n == self._buf.shape[0]:
            grown = np.zeros((2 * n, self.dim), np.float32)
            grown[:n] = self._buf[:n]
            self._buf = grown
            self._shared_n = 0  # the old buffer stays with its snapshots
        self._writable(n)
        self._buf[n] = vec
        self._labels.append(label)
        self._rows.setdefault(label, []).append(n)

    def _remove_row(self, row: int) -> None:
        last = len(self._labels) - 1
        label = self._labels[row]
        self._rows[label].remove(row)
        if row != last:
            moved = self._labels[last]
            self._writable(row)
            self._buf[row] = self._buf[last]
            self._labels[row] = moved
            rows = self._rows[moved]
            rows[rows.index(last)] = row
        self._labels.pop()

    def put(self, label: str, embeddings: F32) -> None:
        """Replace every row of ``label`` with ``embeddings`` (n, dim)."""
        emb = np.asarray(embeddings, np.float32).reshape(-1, self.dim)
        with self._lock:
            self._snapshot = None
            old = list(self._rows.get(label, []))
            for row, vec in zip(old, emb):
                self._writable(row)
                self._buf[row] = vec
            for vec in emb[len(old):]:
                self._append(label, vec)
            for row in sorted(old[len(emb):], reverse=True):
                self._remove_row(row)
            if not self._rows.get(label):
                self._rows.pop(label, None)

    def remove(self, label: str) -> bool:
        with self._lock:
            rows = self._rows.get(label)
            if rows is None:
                return False
            self._snapshot = None
            for row in sorted(rows, reverse=True):
                self._remove_row(row)
            del self._rows[label]
            return True

    def clear(self) -> None:
        with self._lock:
            self._snapshot = None
            self._buf = np.zeros_like(self._buf)
            self._labels.clear()
            self._rows.clear()
            self._shared_n = 0

    # reads
    def snapshot(self) -> Gallery:
        """The current rows as a ``Gallery`` that later writes never change (cached until the next write)."""
        with self._lock:
            if self._snapshot is None:
                n = len(self._labels)
                self._snapshot = Gallery(self._buf[:n], list(self._labels)) if n else \
                    Gallery(np.zeros((0, self.dim), np.float32), [])
                self._shared_n = max(self._shared_n, n)  # older snapshots may still view more rows
            return self._snapshot
