"""USB/V4L2 cameras, video files and RTSP streams through OpenCV's VideoCapture."""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2
import numpy as np

from kiosk.camera.base import CameraError, Frame

logger = logging.getLogger(__name__)


class OpenCVSource:
    """``device`` is a V4L2 index (0), a file path or an ``rtsp://`` URL."""

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None) -> None:
        self.device = device
        self.width, self.height = width, height
        self._cap: Any = None
        self._i = 0
        self.is_file = isinstance(device, str) and "://" not in device

    def open(self) -> None:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            raise CameraError(f"cannot open video source {self.device!r}")
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a backlog
        self._cap = cap

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"video source {self.device!r} is not open")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self.is_file:
                return None  # end of a video file
            raise CameraError(f"video source {self.device!r} stopped delivering frames")
        self._i += 1
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return Frame(rgb, time.monotonic(), self._i - 1)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
