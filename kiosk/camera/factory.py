"""Frame sources by config ``type`` (a registry, not an if/elif chain)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.camera.base import FrameSource
from kiosk.camera.opencv import OpenCVSource
from kiosk.camera.picam import Picamera2Source
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.config import OpenCVCamera, PiCamera, ReplayCamera


def _replay(cfg: Any, clock: SimClock | None) -> FrameSource:
    c: ReplayCamera = cfg
    return ReplaySource(c.path, fps=c.fps, clock=clock, loop=c.loop)


def _opencv(cfg: Any, clock: SimClock | None) -> FrameSource:
    c: OpenCVCamera = cfg
    return OpenCVSource(c.device, c.width, c.height)


def _picamera2(cfg: Any, clock: SimClock | None) -> FrameSource:
    c: PiCamera = cfg
    return Picamera2Source(c.width, c.height, c.camera_num)


SOURCES: dict[str, Callable[[Any, SimClock | None], FrameSource]] = {
    "replay": _replay, "opencv": _opencv, "picamera2": _picamera2}

# Replayed recordings define their own time and must not drop frames.
SIMULATED = {"replay"}


def make_source(cfg: ReplayCamera | OpenCVCamera | PiCamera, clock: SimClock | None = None) -> FrameSource:
    return SOURCES[cfg.type](cfg, clock)
