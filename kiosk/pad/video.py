"""Reading video files as frames at the kiosk's rate (bona fide clips, tablet replays, enrollment)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.errors import DatasetError

RGB = npt.NDArray[np.uint8]
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
# elementary streams (``rpicam-vid -o x.h264``): no container, so no frame rate or length OpenCV can trust
RAW_STREAMS = {".h264", ".264", ".h265", ".265", ".hevc"}


def find_videos(root: Path) -> list[Path]:
    """Every video file below ``root`` (or ``root`` itself), sorted."""
    if root.is_file():
        return [root] if root.suffix.lower() in VIDEO_SUFFIXES else []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def duration_s(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DatasetError(f"{path}: not a readable video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        return float(cap.get(cv2.CAP_PROP_FRAME_COUNT)) / fps
    finally:
        cap.release()


def fit(rgb: RGB, max_side: int) -> RGB:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb
    return np.asarray(cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), np.uint8)


def iter_clip(path: Path, start_s: float = 0.0, end_s: float | None = None, fps: float = 15.0,
              max_side: int | None = 640) -> Iterator[RGB]:
    """Frames at ``fps`` (the nearest source frame at each tick) from ``start_s`` to ``end_s``."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"{path}: not a readable video (missing, or a codec OpenCV cannot decode)")
    try:
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        i, tick = 0, start_s
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return
            t = i / src_fps
            i += 1
            if end_s is not None and t >= end_s:
                return
            if t + 0.5 / src_fps < tick:
                continue
            while tick <= t + 0.5 / src_fps and (end_s is None or tick < end_s):
                rgb: RGB = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
                yield fit(rgb, max_side) if max_side else rgb
                tick += 1.0 / fps
    finally:
        cap.release()


def read_clip(path: Path, start_s: float = 0.0, end_s: float | None = None, fps: float = 15.0,
              max_side: int | None = 640) -> list[RGB]:
    frames = list(iter_clip(path, start_s, end_s, fps, max_side))
    if not frames:
        raise DatasetError(f"{path}: no frames between {start_s:.2f} s and {end_s} s")
    return frames
