"""Lockout per face, with a site-wide ceiling that raises an alarm instead of locking everyone out (pure).

A denied approach is remembered by its fused embedding. Approaches whose
embeddings agree (cosine at or above ``same_face``) are the same face: once
one face has been denied ``attempts`` times within ``window_s`` it is locked
out for ``lockout_s``, while everybody else can still be let in. When denied
approaches of all faces together reach ``ceiling`` within the window, the
kiosk raises an alarm (somebody is probing the door) once per window;
nobody is locked out by it.

At most ``max_faces`` faces are remembered. A newly denied face is always
counted: to make room, records with nothing left to count (no denial within
the window, no lockout running) are forgotten first, then the unlocked face
with the fewest denials still within the window (of those, the one denied
least recently). So the faces closest to a lockout are the last unlocked ones
forgotten: filling the memory with strangers denied once each cannot wipe a
face that is one denial short of its lockout. To push out a face with ``n``
denials within the window, every other record must be locked out or hold at
least ``n`` there too (and, holding ``n``, be denied more recently): some
``n`` x (``max_faces`` - 1) denials (1,020 for a face one short of the
default lockout), all counted towards the ``ceiling``. A face
locked out right now is never forgotten to make room, so when every record is
locked the memory grows, up to twice ``max_faces`` (each locked face took
``attempts`` denials, and the ceiling alarm has long been raised); only past
that is the lockout that ends soonest cut short, with a warning.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LockoutConfig:
    attempts: int = 5
    window_s: float = 60.0
    lockout_s: float = 60.0
    same_face: float = 0.5
    ceiling: int = 20
    max_faces: int = 256  # remembered faces (up to twice as many while all are locked): see the module doc


@dataclass(eq=False)  # identity, not value: its embedding is an array
class _Face:
    embedding: F32
    denials: deque[float] = field(default_factory=deque)
    locked_until: float = float("-inf")
    last: float = float("-inf")


class FaceLockout:
    def __init__(self, config: LockoutConfig) -> None:
        self.config = config
        self._faces: list[_Face] = []
        self._all: deque[float] = deque()
        self._alarm_until = float("-inf")

    def _find(self, embedding: F32) -> _Face | None:
        best, best_score = None, self.config.same_face
        for face in self._faces:
            score = float(np.dot(face.embedding, embedding))
            if score >= best_score:
                best, best_score = face, score
        return best

    def locked(self, embedding: F32, now: float) -> bool:
        face = self._find(embedding)
        return face is not None and now < face.locked_until

    def deny(self, embedding: F32, now: float) -> tuple[bool, bool]:
        """Count one denied approach; returns (this face is now locked out, the site-wide ceiling was reached)."""
        c = self.config
        face = self._find(embedding)
        if face is None:
            self._make_room(now)  # before the newcomer is added: it is never the one forgotten
            face = _Face(np.asarray(embedding, np.float32).copy())
            self._faces.append(face)
        face.last = now
        face.denials.append(now)
        while face.denials and now - face.denials[0] > c.window_s:
            face.denials.popleft()
        locked = False
        if len(face.denials) >= c.attempts:
            face.locked_until = now + c.lockout_s
            face.denials.clear()
            locked = True
            logger.warning("one face locked out for %.0f s after %d denied approaches", c.lockout_s, c.attempts)
        self._all.append(now)
        while self._all and now - self._all[0] > c.window_s:
            self._all.popleft()
        alarm = len(self._all) >= c.ceiling and now >= self._alarm_until
        if alarm:
            self._alarm_until = now + c.window_s
            logger.warning("%d denied approaches within %.0f s: raising the lockout alarm", len(self._all), c.window_s)
        return locked, alarm

    def _make_room(self, now: float) -> None:
        """Room for one more face: see the module doc for what is forgotten, and in which order."""
        c = self.config
        if len(self._faces) < c.max_faces:
            return
        self._faces = [f for f in self._faces
                       if now < f.locked_until or (f.denials and now - f.denials[-1] <= c.window_s)]
        if len(self._faces) < c.max_faces:
            return
        unlocked = [f for f in self._faces if now >= f.locked_until]
        if unlocked:  # fewest denials still counting first, so the faces closest to a lockout stay longest
            self._faces.remove(min(unlocked, key=lambda f: (self._counting(f, now), f.last)))
        elif len(self._faces) >= 2 * c.max_faces:
            soonest = min(self._faces, key=lambda f: f.locked_until)
            self._faces.remove(soonest)
            logger.warning("%d faces locked out at once: the lockout ending soonest (in %.0f s) is cut short to "
                           "count a new face", len(self._faces) + 1, soonest.locked_until - now)

    def _counting(self, face: _Face, now: float) -> int:
        """Denials of ``face`` still within the window at ``now`` (its deque is pruned only when it is denied)."""
        return sum(1 for t in face.denials if now - t <= self.config.window_s)

    def forgive(self, embedding: F32) -> None:
        """A granted approach clears that face's record."""
        face = self._find(embedding)
        if face is not None:
            self._faces.remove(face)
