"""A swap attack: a real head earns the live verdict, then a print of an enrolled person is raised over it.

The tracker follows the box, so without ``kiosk.continuity`` the print inherits
the real head's track, its live verdict and its evidence. ``SwapSource`` wraps
any frame source (a real clip, or a cooperative replay that answers the prompt)
and, from ``swap_at_s`` on, covers the face with the photo: scaled and turned so
that the photo's eyes land on the eyes seen at the swap, held in a trembling
hand (a pixel or so of drift), a little darker than the scene, as paper is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.camera.base import Frame
from kiosk.errors import DatasetError
from kiosk.vision.boxes import Face, primary_face

RGB = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
Detect = Callable[[RGB], list[Face]]


def eye_line(face: Face) -> F64:
    """The two eye keypoints (image left first), (2, 2)."""
    return np.asarray([face.keypoints[0], face.keypoints[1]], np.float64)


def photo_to_frame(photo_eyes: F64, frame_eyes: F64) -> F64:
    """The 2x3 similarity that puts the photo's eyes on the frame's (exact for two points)."""
    a = photo_eyes[:, 0] + 1j * photo_eyes[:, 1]
    b = frame_eyes[:, 0] + 1j * frame_eyes[:, 1]
    s = (b[1] - b[0]) / (a[1] - a[0]) if a[1] != a[0] else 1.0 + 0j
    t = b[0] - s * a[0]
    return np.array([[s.real, -s.imag, t.real], [s.imag, s.real, t.imag]])


def hold_print(frame: RGB, photo: RGB, m: F64, gain: float = 0.9) -> RGB:
    """``frame`` with the whole photo warped by ``m`` over it (the sheet covers what lies behind)."""
    h, w = frame.shape[:2]
    warped = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.ones(photo.shape[:2], np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    out = frame.astype(np.float32) * (1.0 - cover) + warped.astype(np.float32) * gain * cover
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class SwapSource:
    """A frame source that shows ``inner``'s frames until ``swap_at_s``, then the photo held over the face.

    ``detect`` runs on the capture thread: give it a detector of its own, never the loop's (a TFLite
    interpreter is not to be used from two threads at once).
    """

    def __init__(self, inner: Any, photo: RGB, swap_at_s: float, detect: Detect, seed: int = 0,
                 tremor_px: float = 0.8) -> None:
        self.inner = inner
        self.photo = np.asarray(photo, np.uint8)
        self.swap_at_s = swap_at_s
        self.detect = detect
        face = primary_face(detect(self.photo))
        if face is None:
            raise DatasetError("no face in the photo to hold up")
        self._photo_eyes = eye_line(face)
        self._m: F64 | None = None  # fixed at the first swapped frame
        self._rng = np.random.default_rng(seed)
        self.tremor_px = tremor_px
        self.swapped_at: float | None = None

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None or frame.t < self.swap_at_s:
            return frame
        if self._m is None:
            face = primary_face(self.detect(frame.rgb))
            if face is None:
                return frame  # nothing to cover yet: try the next frame
            self._m = photo_to_frame(self._photo_eyes, eye_line(face))
            self.swapped_at = frame.t
        m = self._m.copy()
        m[:, 2] += self._rng.normal(0.0, self.tremor_px, 2)
        return Frame(hold_print(frame.rgb, self.photo, m), frame.t, frame.index)

    def close(self) -> None:
        self.inner.close()
