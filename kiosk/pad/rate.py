"""A door slower than the recording: a Raspberry Pi whose loop cannot keep up, or a slow camera.

The liveness cues see the frames the loop gets to. A recording (a real clip,
a rendered sequence, a cooperative replay) is shown to such a door by keeping,
at each tick of the door's rate, the recorded frame nearest to it, as
``kiosk.pad.video.iter_clip`` decodes a clip: never faster than recorded (a
frame shown twice is a head that stopped, not a faster camera).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.camera.base import Frame, FrameSource
from kiosk.errors import DatasetError
from kiosk.pad.present import RGB, Presentation


def at_rate(p: Presentation, fps: float) -> Presentation:
    """``p`` as a door whose loop handles ``fps`` frames a second sees it (a slower camera, or a loop
    that cannot keep up with its camera, as on a Raspberry Pi): the recorded frame nearest each tick
    of the new rate, as ``kiosk.pad.video.iter_clip`` decodes a clip. Only slower: a frame shown twice
    is a head that stopped, not a faster camera."""
    if not 0 < fps <= p.fps + 1e-9:
        raise DatasetError(f"{p.name}: recorded at {p.fps:g} fps, cannot be replayed at {fps:g} fps "
                           f"(only at its own rate or slower)")
    if abs(fps - p.fps) < 1e-9:
        return p
    source = p.frames

    def pick(frames: list[Any]) -> list[Any]:
        n = int(len(frames) * fps / p.fps + 1e-9)
        return [frames[min(round(k * p.fps / fps), len(frames) - 1)] for k in range(max(n, 1))]

    frames: list[Path] | Callable[[], list[RGB]] = (
        (lambda: pick(source())) if callable(source) else pick(source))
    return replace(p, frames=frames, fps=fps)


class SlowerSource:
    """``inner``'s frames as a loop that handles ``fps`` a second reads them: at each tick of ``fps`` the
    first frame at or after it (within half of ``inner``'s frame period, i.e. the nearest); the frames in
    between are read (so that a replay's clock and a cooperative source's reaction run on) and dropped."""

    def __init__(self, inner: FrameSource, fps: float, inner_fps: float) -> None:
        if not 0 < fps <= inner_fps + 1e-9:
            raise DatasetError(f"a source at {inner_fps:g} fps cannot be read at {fps:g} fps (only slower)")
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
