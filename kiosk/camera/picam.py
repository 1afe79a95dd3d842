"""The Raspberry Pi camera through picamera2 (imported only when opened).

picamera2 and libcamera come from Raspberry Pi OS's apt archive
(python3-picamera2) and reach the kiosk's venv through
--system-site-packages. The venv keeps numpy 2 (opencv and ai-edge-litert
need it) and carries its own simplejpeg from PyPI, built against numpy 2,
which shadows apt's numpy-1 build (picamera2 issues #1088 and #1211). Every
way this can go wrong on a real Pi becomes a ``CameraError`` that says what
to do; the explanations are pure functions so they are tested without a Pi.

"RGB888" frames are laid out B, G, R in memory, so they are reordered here.
"""

from __future__ import annotations

import errno
import importlib
import logging
import time
from typing import Any

import numpy as np

from kiosk.camera.base import CameraError, Frame

logger = logging.getLogger(__name__)

INSTALL_HINT = ("on Raspberry Pi OS run `sudo apt install python3-picamera2` and create the venv with "
                "--system-site-packages (sudo systemd/install.sh does both); see docs/deploy-pi.md")
NUMPY_HINT = ("a module from apt (usually simplejpeg) was compiled against Raspberry Pi OS's numpy 1.x but the venv "
              "has numpy {numpy}: run `{venv}pip install 'simplejpeg>=1.8.1'` so the venv's own numpy-2 build shadows "
              "apt's (sudo systemd/install.sh does this), or use the numpy<2 set (`pip install '.[tflite]'`)")


def _numpy_abi_mismatch(exc: BaseException) -> bool:
    text = str(exc)
    return ("numpy.dtype size changed" in text or "numpy.ndarray size changed" in text
            or "compiled using NumPy 1.x" in text or "numpy.core.multiarray failed to import" in text
            or "_ARRAY_API not found" in text)


def explain_import_failure(exc: BaseException) -> str:
    """What went wrong importing picamera2, and what to do about it."""
    if _numpy_abi_mismatch(exc):
        return (f"picamera2 does not import: {exc}. " +
                NUMPY_HINT.format(numpy=np.__version__, venv="/opt/kiosk/venv/bin/"))
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None) or ""
        if missing in ("libcamera", "_libcamera") or "libcamera" in str(exc):
            return (f"picamera2 is installed but libcamera's Python bindings are not importable ({exc}): "
                    "install picamera2 from apt, not PyPI: " + INSTALL_HINT)
        if missing and missing.split(".")[0] not in ("picamera2", ""):
            return (f"picamera2 does not import: module {missing!r} is missing ({exc}); "
                    "`sudo apt install --reinstall python3-picamera2` brings its dependencies; " + INSTALL_HINT)
        return f"picamera2 is not importable ({exc}): " + INSTALL_HINT
    return (f"picamera2 does not import: {type(exc).__name__}: {exc}. "
            "Update Raspberry Pi OS (`sudo apt update && sudo apt full-upgrade`) and " + INSTALL_HINT)


def explain_start_failure(exc: BaseException, camera_num: int) -> str:
    """What went wrong opening or starting camera ``camera_num``, and what to do about it."""
    text = str(exc)
    if isinstance(exc, IndexError) or "no cameras" in text.lower():
        return (f"no camera {camera_num} found ({type(exc).__name__}: {exc}): check the ribbon cable and its "
                "orientation, then `rpicam-hello --list-cameras`; set camera.camera_num to a listed index")
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
        return (f"camera {camera_num}: permission denied ({exc}): the service user must be in the `video` group "
                "(`sudo usermod -a -G video kiosk`, done by systemd/install.sh) and the unit must allow the camera "
                "devices (DeviceAllow=char-video4linux, char-media in kiosk.service)")
    if "busy" in text.lower() or getattr(exc, "errno", None) == errno.EBUSY:
        return (f"camera {camera_num} is busy ({exc}): another process holds it (rpicam-*, libcamera-*, a second "
                "kiosk); stop it, e.g. `sudo systemctl stop kiosk` before testing by hand")
    if "numpy" in text and _numpy_abi_mismatch(exc):
        return explain_import_failure(exc)
    return (f"cannot start camera {camera_num}: {type(exc).__name__}: {exc}. Check that "
            "`rpicam-hello --list-cameras` lists it and `dmesg` shows no sensor errors")


def import_picamera2() -> Any:
    """The ``Picamera2`` class, or a ``CameraError`` saying how to make it importable."""
    try:
        module = importlib.import_module("picamera2")
        return module.Picamera2
    except Exception as exc:  # ImportError, ValueError (numpy ABI), AttributeError, RuntimeError…
        raise CameraError(explain_import_failure(exc)) from exc


class Picamera2Source:
    def __init__(self, width: int = 640, height: int = 480, camera_num: int = 0) -> None:
        self.size = (width, height)
        self.camera_num = camera_num
        self._cam: Any = None
        self._i = 0

    def open(self) -> None:
        picamera2_cls = import_picamera2()
        cam: Any = None
        try:
            cam = picamera2_cls(self.camera_num)
            # A small main stream near the detector's input keeps conversion cheap;
            # two buffers: picamera2 recycles all but the newest request.
            cam.configure(cam.create_video_configuration(main={"size": self.size, "format": "RGB888"},
                                                         buffer_count=2))
            cam.start()
        except Exception as exc:  # libcamera raises RuntimeError, IndexError, OSError…
            if cam is not None:
                try:
                    cam.close()
                except Exception:
                    logger.debug("closing camera %d after a failed start also failed", self.camera_num)
            raise CameraError(explain_start_failure(exc, self.camera_num)) from exc
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
