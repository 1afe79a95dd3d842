"""The Raspberry Pi camera through picamera2 (imported only when opened).

picamera2 comes from apt (python3-picamera2) and needs libcamera, so it
exists only on a Pi; the kiosk's venv is made with --system-site-packages.
"RGB888" frames are laid out B, G, R in memory, so they are reordered here.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kiosk.camera.base import CameraError, Frame


class Picamera2Source:
    def __init__(self, width: int = 640, height: int = 480, camera_num: int = 0) -> None:
        self.size = (width, height)
        self.camera_num = camera_num
        self._cam: Any = None
        self._i = 0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError("picamera2 is not importable: on a Raspberry Pi run `apt install python3-picamera2` "
                              "and create the venv with --system-site-packages") from exc
        try:
            cam = Picamera2(self.camera_num)
            # A small main stream near the detector's input keeps conversion cheap;
            # two buffers: picamera2 recycles all but the newest request.
            cam.configure(cam.create_video_configuration(main={"size": self.size, "format": "RGB888"},
                                                         buffer_count=2))
            cam.start()
        except Exception as exc:  # libcamera raises RuntimeError, IndexError, OSError…
            raise CameraError(f"cannot start camera {self.camera_num}: {exc}") from exc
        self._cam = cam

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CameraError("camera is not open")
        try:
            bgr = self._cam.capture_array("main")
        except Exception as exc:
            raise CameraError(f"camera {self.camera_num} stopped delivering frames: {exc}") from exc
        self._i += 1
        return Frame(np.ascontiguousarray(bgr[:, :, 2::-1]), time.monotonic(), self._i - 1)

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None
