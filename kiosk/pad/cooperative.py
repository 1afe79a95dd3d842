"""A cooperative person answering the head-turn prompt, played from real footage of a real head.

A recording cannot answer a prompt, so the time from the first usable frame to
a grant for someone who does is measured by replaying a real clip reactively:
the person stands as they stood in the second before their largest head turn
in the clip, and ``reaction_s`` after the prompt they make that turn (the
footage mirrored when the prompt asks for the other side), then hold still.
The turn is the clip's own; only its timing follows the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.camera.base import CameraError, Frame
from kiosk.camera.replay import SimClock
from kiosk.liveness import geometry as g
from kiosk.liveness.challenge import turn_sign

RGB = npt.NDArray[np.uint8]
REACTION_S = 1.0  # from the prompt to the start of the turn: notice, read, decide, move


@dataclass(frozen=True)
class Turn:
    """The clip's largest head turn: frames ``start``..``end``, the yaw change (IOD, signed)."""

    start: int
    end: int
    change: float
    still_from: int | None = None  # the earliest frame of the still stretch before the turn (default: start)


def yaw_series(landmarks: Sequence[npt.NDArray[np.floating] | None]) -> list[float | None]:
    """Per frame, ``geometry.yaw_pitch``'s yaw (median of 3 frames, as the judge takes it); None without a face."""
    raw = [None if x is None else g.yaw_pitch(g.rigid(x))[0] for x in landmarks]
    out: list[float | None] = []
    for k, y in enumerate(raw):
        near = [v for v in raw[max(0, k - 1):k + 2] if v is not None]
        out.append(None if y is None else float(np.median(near)))
    return out


def find_turn(yaws: Sequence[float | None], fps: float, max_s: float = 1.5, min_change: float = 0.2,
              max_start: float = 0.04, still: float = 0.03) -> Turn | None:
    """The largest yaw change within ``max_s`` over frames that all have a face, starting from a face
    turned by at most ``max_start`` (so that the mirrored footage starts where the unmirrored one stood);
    None below ``min_change``. ``still_from``: where the frames before it (at most ``max_s``) stayed within
    ``still`` of its first yaw: the person stands like that until they answer the prompt."""
    best: Turn | None = None
    span = max(1, round(max_s * fps))
    for s, ys in enumerate(yaws):
        if ys is None or abs(ys) > max_start:
            continue
        for e in range(s + 1, min(len(yaws), s + span + 1)):
            ye = yaws[e]
            if ye is None:
                break
            if best is None or abs(ye - ys) > abs(best.change):
                best = Turn(s, e, ye - ys)
    if best is None or abs(best.change) < min_change:
        return None
    first, y0 = best.start, yaws[best.start]
    assert y0 is not None
    while first > 0 and best.start - (first - 1) <= span:  # how long the face stood still before turning
        prev = yaws[first - 1]
        if prev is None or abs(prev - y0) > still:
            break
        first -= 1
    return Turn(best.start, best.end, best.change, first)


def _ping_pong(n: int, k: int) -> int:
    """Index k of a sequence 0..n-1 played forwards and backwards without end."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    k %= period
    return k if k < n else period - k


class CooperativeSource:
    """A ``FrameSource`` in lockstep with a ``SimClock`` that answers the first prompt with the clip's turn.

    ``prompts`` returns the prompts shown so far as (time, direction) (``RecordingPrompter.prompts``).
    """

    def __init__(self, frames: Sequence[RGB], turn: Turn, prompts: Callable[[], list[tuple[float, str]]],
                 fps: float = 15.0, clock: SimClock | None = None, reaction_s: float = REACTION_S,
                 camera_mirrored: bool = False, lead_s: float = 1.0, sensor_noise: float = 2.0,
                 seed: int = 0, mirror_all: bool = False) -> None:
        if not 0 <= turn.start < turn.end < len(frames):
            raise ValueError(f"turn {turn} outside the clip's {len(frames)} frames")
        self.frames = frames
        self.turn = turn
        self.prompts = prompts
        self.fps = fps
        self.clock = clock
        self.reaction_s = reaction_s
        self.camera_mirrored = camera_mirrored
        lead = max(1, round(lead_s * fps))
        still = turn.start if turn.still_from is None else turn.still_from
        self._idle = list(range(max(still, turn.start - lead), turn.start + 1))
        self._move = list(range(turn.start, turn.end + 1))
        self._hold = list(range(turn.end, min(len(frames), turn.end + lead)))
        # Fresh sensor noise on every frame, as a camera gives: footage held still by repeating
        # frames would otherwise show FaceMesh no jitter at all, and the noise floor would read zero.
        self.sensor_noise = sensor_noise
        self._rng = np.random.default_rng(seed)
        self._n = 0
        self._answer: tuple[int, bool] | None = None  # frame number the turn starts at, mirrored
        self._opened = False
        # Every frame mirrored, from the first: the clip's mirror image, a person or an artefact in its own
        # right, whose turn goes the other way. Mirroring only from the answer on would turn a face into its
        # own mirror image mid-presentation, which nothing real does: the landmarks and the eye band of a
        # flat print then read the change as parallax (a bent print got in that way).
        self.mirror_all = mirror_all

    def open(self) -> None:
        self._opened = True

    def _index(self, t: float) -> tuple[int, bool]:
        shown = self.prompts()
        if self._answer is None and shown and t >= shown[0][0] + self.reaction_s:
            wanted = turn_sign(shown[0][1], self.camera_mirrored)
            shown_change = -self.turn.change if self.mirror_all else self.turn.change
            self._answer = (self._n, bool(np.sign(shown_change) != wanted))
        if self._answer is None:
            return self._idle[_ping_pong(len(self._idle), self._n)], self.mirror_all
        flip = self.mirror_all != self._answer[1]
        k = self._n - self._answer[0]
        if k < len(self._move):
            return self._move[k], flip
        return self._hold[_ping_pong(len(self._hold), k - len(self._move))], flip

    @property
    def switched(self) -> bool:
        """Whether the answer needed the frames mirrored from the prompt on (not from the first frame)."""
        return self._answer is not None and self._answer[1]

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError("cooperative source read before open()")
        t = self._n / self.fps
        i, mirror = self._index(t)
        rgb = np.asarray(self.frames[i], np.uint8)
        if mirror:
            rgb = np.ascontiguousarray(cv2.flip(rgb, 1))
        if self.sensor_noise > 0:
            noisy = rgb + self._rng.normal(0.0, self.sensor_noise, rgb.shape).astype(np.float32)
            rgb = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        self._n += 1
        if self.clock is not None:
            self.clock.now = t
        return Frame(rgb, t, i)

    def close(self) -> None:
        self._opened = False
