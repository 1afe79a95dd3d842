"""Identity continuity along a track: the face a track follows must stay one person (pure numpy).

The tracker follows boxes, not people. A print of an enrolled person raised in
front of a real, unenrolled face keeps the box, and with it the track, the live
verdict the real head earned and the evidence gathered so far. So every frame
that feeds the decision or the liveness cues is embedded and compared with the
mean of the track's earlier embeddings; below ``face_change`` it is somebody
else's face and the loop gives the face a new track, on which liveness, the
challenge and the evidence start again.

The reference is the mean of every earlier frame, not the first frames nor the
last: a real face that turns, talks or changes expression stays close to its
own mean (lowest frame seen on the 25 real clips: 0.648), and a slow swap has to
outweigh every frame that came before it. Once the track has its liveness
verdict the reference is frozen (``freeze``): the face that earned the verdict
is the one every later frame is held to, so nothing can drift it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass
class _Face:
    total: npt.NDArray[np.float64]
    frames: int
    frozen: bool = False


class FaceContinuity:
    def __init__(self, face_change: float) -> None:
        if not -1.0 <= face_change <= 1.0:
            raise ValueError(f"face_change is a cosine, got {face_change}")
        self.face_change = face_change
        self._tracks: dict[int, _Face] = {}

    def similarity(self, track: int, embedding: F32) -> float | None:
        """Cosine of ``embedding`` (unit length) to the mean of the track's earlier frames; None for its first."""
        face = self._tracks.get(track)
        if face is None:
            return None
        norm = float(np.linalg.norm(face.total))
        return float(np.dot(face.total, embedding) / norm) if norm > 0 else None

    def changed(self, track: int, embedding: F32) -> float | None:
        """The similarity when this frame shows somebody else (below ``face_change``; the frame is not kept),
        else None after adding the frame to the track's mean."""
        sim = self.similarity(track, embedding)
        if sim is not None and sim < self.face_change:
            return sim
        self.add(track, embedding)
        return None

    def add(self, track: int, embedding: F32) -> None:
        face = self._tracks.get(track)
        e = np.asarray(embedding, np.float64)
        if face is None:
            self._tracks[track] = _Face(e.copy(), 1)
        elif not face.frozen:
            face.total += e
            face.frames += 1

    def mean(self, track: int) -> F32 | None:
        """The unit mean of the track's embeddings so far (None when it has none): who the track showed."""
        face = self._tracks.get(track)
        norm = 0.0 if face is None else float(np.linalg.norm(face.total))
        return None if face is None or norm == 0 else np.asarray(face.total / norm, np.float32)

    def freeze(self, track: int) -> None:
        """From now on the track's reference stays as it is (its liveness verdict was reached)."""
        face = self._tracks.get(track)
        if face is not None:
            face.frozen = True

    def end(self, tracks: list[int]) -> None:
        for t in tracks:
            self._tracks.pop(t, None)
