"""Real footage as another camera at another door would record it: fewer pixels on the face, less light,
a softer lens, a compressed stream.

The thresholds of the liveness cues were set on the real clips as they are. A door's camera differs,
so the same people are replayed through a ``CameraShift``: the scene is blurred by the lens, sampled by
the sensor at ``scale`` of the clip's resolution, exposed with ``gain``, given fresh sensor noise on
every frame and, with ``jpeg_quality``, compressed. Rendered attacks already carry such camerawork
(``kiosk.pad.degradations``); this is the same for bona fide presentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.camera.base import Frame, FrameSource

RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class CameraShift:
    """One camera. The defaults change nothing."""

    name: str = "as recorded"
    scale: float = 1.0  # the frame's side relative to the clip's: fewer pixels on the face (farther, cheaper sensor)
    blur: float = 0.0  # lens defocus, sigma in the clip's pixels
    gain: float = 1.0  # exposure: below 1 a darker scene
    noise: float = 0.0  # sensor noise, grey levels (sigma), fresh on every frame
    jpeg_quality: int | None = None  # a compressed stream (MJPEG webcam, IP camera)

    def __post_init__(self) -> None:
        # Written so that NaN fails every check: a comparison with NaN is False.
        for field, value, ok, allowed in (
                ("scale", self.scale, 0.1 <= self.scale <= 1.0, "0.1..1"),
                ("blur", self.blur, 0.0 <= self.blur <= 20.0, "0..20 px"),
                ("gain", self.gain, 0.0 < self.gain <= 4.0, "(0, 4]"),
                ("noise", self.noise, 0.0 <= self.noise <= 64.0, "0..64 grey levels"),
                ("jpeg_quality", self.jpeg_quality, self.jpeg_quality is None or 1 <= self.jpeg_quality <= 100,
                 "1..100 or none")):
            if not ok:
                raise ValueError(f"camera shift {self.name!r}: {field} {value} outside {allowed}")


# The cameras the bona fide benchmark replays through (``benchmarks.pad_camera``).
PRESETS: dict[str, CameraShift] = {s.name: s for s in (
    CameraShift("as recorded"),
    CameraShift("far", scale=0.5),
    CameraShift("low light", gain=0.45, noise=6.0),
    CameraShift("soft lens", blur=1.5),
    CameraShift("jpeg 50", jpeg_quality=50),
    CameraShift("cheap webcam", scale=0.7, blur=0.8, gain=0.7, noise=4.0, jpeg_quality=70),
)}


def shoot(rgb: RGB, shift: CameraShift, rng: np.random.Generator) -> RGB:
    """``rgb`` as ``shift``'s camera records it (a new array; the input is not changed)."""
    img = np.asarray(rgb, np.uint8)
    if shift.blur > 0:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), shift.blur), np.uint8)
    if shift.scale < 1.0:
        h, w = img.shape[:2]
        size = (max(1, round(w * shift.scale)), max(1, round(h * shift.scale)))
        img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.uint8)
    if shift.gain != 1.0 or shift.noise > 0:
        out = img.astype(np.float32) * np.float32(shift.gain)
        if shift.noise > 0:
            out += rng.normal(0.0, shift.noise, img.shape).astype(np.float32)
        img = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if shift.jpeg_quality is not None:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(shift.jpeg_quality)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("JPEG decoding failed")
        img = np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), np.uint8)
    return np.array(img, np.uint8, copy=True) if img is rgb else np.ascontiguousarray(img)


class ShiftedSource:
    """A frame source that records ``inner``'s frames through ``shift``'s camera; times and indices kept."""

    def __init__(self, inner: FrameSource, shift: CameraShift, seed: int = 0) -> None:
        self.inner = inner
        self.shift = shift
        self._rng = np.random.default_rng(seed)

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        return Frame(shoot(frame.rgb, self.shift, self._rng), frame.t, frame.index)

    def close(self) -> None:
        self.inner.close()
