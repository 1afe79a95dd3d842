"""Face tracks: the same face followed across frames, so evidence is gathered per approach (pure).

A face joins the track whose last box overlaps it most (intersection over
union), greedily from the best overlap down; a face that overlaps no live
track starts a new one. A track that has not been seen for ``max_gap_s``
ends: the person left the view (or the detector lost them for too long).
Track ids only grow, so an id never names two approaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box
    first_seen: float
    last_seen: float
    frames: int = 1


@dataclass
class Tracker:
    """``update(boxes, now)`` returns one track id per box and the ids of tracks that ended."""

    min_iou: float = 0.3
    max_gap_s: float = 1.0
    tracks: dict[int, Track] = field(default_factory=dict)
    _next_id: int = 1

    def update(self, boxes: Sequence[Box], now: float) -> tuple[list[int], list[int]]:
        ended = [tid for tid, t in self.tracks.items() if now - t.last_seen > self.max_gap_s or now < t.last_seen]
        for tid in ended:
            del self.tracks[tid]
        pairs = sorted(((iou(t.box, b), tid, i) for tid, t in self.tracks.items() for i, b in enumerate(boxes)),
                       reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        taken: set[int] = set()
        for overlap, tid, i in pairs:
            if overlap < self.min_iou:
                break
            if tid in taken or ids[i] is not None:
                continue
            taken.add(tid)
            ids[i] = tid
            t = self.tracks[tid]
            t.box, t.last_seen, t.frames = boxes[i], now, t.frames + 1
        for i, b in enumerate(boxes):
            if ids[i] is None:
                tid = self._next_id
                self._next_id += 1
                self.tracks[tid] = Track(tid, b, now, now)
                ids[i] = tid
        return [int(t) for t in ids if t is not None], ended

    def split(self, tid: int) -> int:
        """The face on track ``tid`` is somebody else's (``kiosk.continuity``): that track ends and its
        box goes on under a new id, so nothing gathered on the old face counts for the new one."""
        old = self.tracks.pop(tid)
        new = self._next_id
        self._next_id += 1
        self.tracks[new] = Track(new, old.box, old.last_seen, old.last_seen)
        return new

    def reset(self) -> list[int]:
        """End every track (the camera was lost: nothing seen before counts after)."""
        ended = list(self.tracks)
        self.tracks.clear()
        return ended
