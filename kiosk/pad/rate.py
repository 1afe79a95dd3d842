"""A door slower than the recording: a Raspberry Pi whose loop cannot keep up, or a slow camera.

The liveness cues see the frames the loop gets to. A replay (a real clip, a
rendered sequence, a cooperative replay) runs at its own rate, on its own
clock, and such a door's loop gets, at each of its ticks, the frame nearest
to it, with the time it was taken: never faster than recorded (a frame shown
twice is a head that stopped, not a faster camera).
"""

from __future__ import annotations

import argparse

from kiosk.camera.base import Frame, FrameSource
from kiosk.errors import DatasetError

RECORDED_FPS = 15.0  # the rate of rendered sequences and of the clips as presented


def slower_fps(text: str) -> float:
    """``--fps``: a door's rate, 1 to the replays' 15 frames a second (argparse type)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected frames per second, got {text!r}") from exc
    if not 1.0 <= value <= RECORDED_FPS:
        raise argparse.ArgumentTypeError(f"expected 1 to {RECORDED_FPS:g} frames per second (the replays run at "
                                         f"{RECORDED_FPS:g}; a door can only be slower), got {text}")
    return value


class SlowerSource:
    """``inner``'s frames as a loop that handles ``fps`` a second reads them: at each tick of ``fps`` the
    first frame at or after it (within half of ``inner``'s frame period, i.e. the nearest); the frames in
    between are read (so that a replay's clock and a cooperative source's reaction run on) and dropped."""

    def __init__(self, inner: FrameSource, fps: float, inner_fps: float) -> None:
        if not 0 < fps <= inner_fps + 1e-9:
            raise DatasetError(f"a source at {inner_fps:g} fps cannot be read at {fps:g} fps (only slower)")
        own = getattr(inner, "fps", None)
        if own is not None and abs(float(own) - inner_fps) > 1e-9:
            raise DatasetError(f"the source runs at {own:g} fps, not {inner_fps:g}")
        self.inner = inner
        self.period = 1.0 / fps
        self.half = 0.5 / inner_fps
        self._tick = 0

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        while True:
            frame = self.inner.read()
            if frame is None:
                return None
            if frame.t + self.half > self._tick * self.period + 1e-9:
                while self._tick * self.period < frame.t + self.half - 1e-9:
                    self._tick += 1
                return frame

    def close(self) -> None:
        self.inner.close()
