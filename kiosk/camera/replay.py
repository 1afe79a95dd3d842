"""Replaying still images (a folder, a list of files, or arrays) as a camera."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.camera.base import CameraError, Frame
from kiosk.datasets import IMAGE_SUFFIXES
from kiosk.imageio import read_rgb


class SimClock:
    """Simulated time that a replay source moves forward frame by frame."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class ReplaySource:
    """Frames at a fixed rate; with a ``SimClock`` the replay defines time itself,
    so a recorded sequence gives the same decisions however fast the machine is."""

    def __init__(self, frames: Sequence[npt.NDArray[np.uint8]] | Sequence[Path] | Path, fps: float = 15.0,
                 clock: SimClock | None = None, loop: bool = False,
                 fail_at: Callable[[int], bool] | None = None) -> None:
        if isinstance(frames, Path):
            if not frames.is_dir():
                raise CameraError(f"replay folder {frames} does not exist")
            frames = sorted(p for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.frames = list(frames)
        if not self.frames:
            raise CameraError("replay source has no frames")
        self.fps = fps
        self.clock = clock
        self.loop = loop
        self.fail_at = fail_at
        self._i = 0
        self._n = 0  # frames delivered, across loops: time never runs backwards
        self._opened = False

    def open(self) -> None:
        self._opened = True

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError("replay source read before open()")
        if self._i >= len(self.frames):
            if not self.loop:
                return None
            self._i = 0
        i = self._i
        self._i += 1
        if self.fail_at is not None and self.fail_at(i):
            self._opened = False
            raise CameraError(f"replay source failed at frame {i} (simulated)")
        item = self.frames[i]
        rgb: npt.NDArray[np.uint8] = read_rgb(item) if isinstance(item, Path) else np.asarray(item, np.uint8)
        t = self._n / self.fps
        self._n += 1
        if self.clock is not None:
            self.clock.now = t
        return Frame(rgb, t, i)

    def close(self) -> None:
        self._opened = False
