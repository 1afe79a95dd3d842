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

    ``scale``: width of the crop region as a multiple of the detector box's
    larger side; ``aspect``: its height over its width (the region is
    resized to a ``size`` square, so aspect > 1 squeezes the face vertically,
    as MTCNN box + margin crops do).  ``shift_y``: move the region's centre
    down by this fraction of the box height.  ``rotate``: level the eyes first.
    """

    scale: float = 1.2
    shift_y: float = 0.0
    rotate: bool = False
    size: int = CROP_SIZE
    aspect: float = 1.0

    def as_dict(self) -> dict[str, object]:
        return {"scale": self.scale, "aspect": self.aspect, "shift_y": self.shift_y, "rotate": self.rotate,
                "size": self.size}


# Measured best (docs/alignment.md): the detector box's width, a region 1.36x as
# tall, its centre 5 % higher, squeezed to a square as MTCNN box + margin crops
# are; no roll correction.
DEFAULT_ALIGN = AlignSpec(scale=1.0, aspect=1.36, shift_y=-0.05, rotate=False)


def crop_transform(face: Face, spec: AlignSpec) -> npt.NDArray[np.float64]:
    """2x3 affine matrix mapping frame pixels to crop pixels."""
    x0, y0, x1, y1 = face.box
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0 + spec.shift_y * (y1 - y0)
    half_w = max(spec.scale * max(x1 - x0, y1 - y0), 1e-6) / 2.0
    half_h = half_w * spec.aspect
    angle = 0.0
    if spec.rotate:
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        angle = math.atan2(ly - ry, lx - rx)
    ux = np.array([math.cos(angle), math.sin(angle)])  # the region's x axis in the frame
    uy = np.array([-math.sin(angle), math.cos(angle)])
    c = np.array([cx, cy])
    src = np.stack([c - half_w * ux - half_h * uy, c + half_w * ux - half_h * uy, c - half_w * ux + half_h * uy])
    dst = np.array([[0.0, 0.0], [spec.size, 0.0], [0.0, spec.size]])
    # solve [x y 1] @ M.T = [x' y'] for the three corners, in float64
    return np.asarray(np.linalg.solve(np.c_[src, np.ones(3)], dst).T, np.float64)


def crop_face(rgb: npt.NDArray[np.uint8], face: Face, spec: AlignSpec = DEFAULT_ALIGN) -> npt.NDArray[np.uint8]:
    """The square ``spec.size`` RGB crop of one face; pixels outside the frame repeat the edge."""
    m = crop_transform(face, spec)
    zoom = max(math.hypot(m[0, 0], m[0, 1]), math.hypot(m[1, 0], m[1, 1]))  # the axis shrunk least
    src: Any = rgb
    if zoom < 1.0:
        # Shrink only the region around the face with area averaging first, so a
        # small crop from a large photo does not alias; then warp at scale ~1.
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        reach = 0.75 * spec.scale * max(spec.aspect, 1.0) * max(x1 - x0, y1 - y0) + 2.0 + abs(spec.shift_y) * (y1 - y0)
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
