"""Cropping a detected face the way the embedder expects (pure numpy + OpenCV).

Sandberg's FaceNet models were trained on MTCNN boxes widened by a margin,
not on landmark-warped faces.  BlazeFace boxes are framed differently, so the
crop is parametrised and ``DEFAULT_ALIGN`` holds the convention measured best
on the development sets (see ``docs/alignment.md`` and
``benchmarks/align_study.py``).  Converter and kiosk both use this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face

CROP_SIZE = 160


@dataclass(frozen=True)
class AlignSpec:
    """How to cut a face out of a frame.

    ``scale``: side of the square crop as a multiple of the detector box's
    larger side.  ``shift_y``: move the crop centre down by this fraction of
    the box height.  ``rotate``: level the eyes (roll correction) first.
    """

    scale: float = 1.2
    shift_y: float = 0.0
    rotate: bool = False
    size: int = CROP_SIZE

    def as_dict(self) -> dict[str, object]:
        return {"scale": self.scale, "shift_y": self.shift_y, "rotate": self.rotate, "size": self.size}


# Measured best (highest mean AUC over 5-celebrity and shared/data/people, float
# model): the detector box as is, moved down 5 %, no roll correction.
DEFAULT_ALIGN = AlignSpec(scale=1.0, shift_y=0.05, rotate=False)


def crop_transform(face: Face, spec: AlignSpec) -> npt.NDArray[np.float64]:
    """2x3 affine matrix mapping frame pixels to crop pixels."""
    x0, y0, x1, y1 = face.box
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0 + spec.shift_y * (y1 - y0)
    side = spec.scale * max(x1 - x0, y1 - y0)
    angle = 0.0
    if spec.rotate:
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        angle = math.degrees(math.atan2(ly - ry, lx - rx))
    m = cv2.getRotationMatrix2D((cx, cy), angle, spec.size / max(side, 1e-6))
    m[0, 2] += spec.size / 2.0 - cx
    m[1, 2] += spec.size / 2.0 - cy
    return np.asarray(m, np.float64)


def crop_face(rgb: npt.NDArray[np.uint8], face: Face, spec: AlignSpec = DEFAULT_ALIGN) -> npt.NDArray[np.uint8]:
    """The square ``spec.size`` RGB crop of one face; pixels outside the frame repeat the edge."""
    m = crop_transform(face, spec)
    zoom = math.hypot(m[0, 0], m[0, 1])
    src: Any = rgb
    if zoom < 1.0:
        # Shrink only the region around the face with area averaging first, so a
        # small crop from a large photo does not alias; then warp at scale ~1.
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        reach = 0.75 * spec.size / zoom + 2.0 + abs(spec.shift_y) * (y1 - y0)
        h, w = rgb.shape[:2]
        rx0, ry0 = max(int(cx - reach), 0), max(int(cy - reach), 0)
        rx1, ry1 = min(int(cx + reach) + 1, w), min(int(cy + reach) + 1, h)
        if rx1 > rx0 and ry1 > ry0:
            roi = rgb[ry0:ry1, rx0:rx1]
            sw, sh = max(round(roi.shape[1] * zoom), 1), max(round(roi.shape[0] * zoom), 1)
            src = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
            fx, fy = roi.shape[1] / sw, roi.shape[0] / sh  # frame pixels per small pixel
            to_frame = np.array([[fx, 0.0, rx0 + 0.5 * fx - 0.5], [0.0, fy, ry0 + 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
            m = m @ to_frame
    out = cv2.warpAffine(src, m, (spec.size, spec.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out)
