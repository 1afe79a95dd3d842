"""The FaceMesh region of interest for a BlazeFace face, and projection back to the frame (pure numpy).

MediaPipe's convention: a square centred on the detection box, its side the
box's longer side times 1.5, rotated so that the eye line is horizontal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

MESH_INPUT = 192
ROI_SCALE = 1.5


@dataclass(frozen=True)
class Roi:
    """A rotated square in frame pixels."""

    cx: float
    cy: float
    side: float
    angle: float  # radians; the ROI's x axis is (cos, sin) in the frame

    @cached_property
    def matrix(self) -> F64:
        """``to_frame_matrix()`` for the model's input, computed once (the crop and the projection both need it)."""
        return self.to_frame_matrix()

    def to_frame_matrix(self, size: int = MESH_INPUT) -> F64:
        """2x3 affine mapping model-input pixels (u, v) to frame pixels (x, y)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.side / size
        ex, ey = np.array([c, s]) * k, np.array([-s, c]) * k
        centre = np.array([self.cx, self.cy]) - (ex + ey) * (size / 2.0)
        return np.column_stack([ex, ey, centre])

    def project(self, points: npt.NDArray[np.floating], size: int = MESH_INPUT) -> F32:
        """Model-input landmarks (N, 3) -> frame pixels x, y, and z scaled like x and y."""
        m = self.matrix if size == MESH_INPUT else self.to_frame_matrix(size)
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        out = np.empty((len(pts), 3), np.float32)
        out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
        out[:, 2] = pts[:, 2] * (self.side / size)
        return out


def face_roi(face: Face, scale: float = ROI_SCALE) -> Roi:
    """MediaPipe's ROI for a detection: box centre, longer side x ``scale``, eye line horizontal.

    Keypoint 0 is the eye on the image's left, keypoint 1 the one on its right.
    """
    x0, y0, x1, y1 = face.box
    (ax, ay), (bx, by) = face.keypoints[0], face.keypoints[1]
    angle = math.atan2(float(by - ay), float(bx - ax))
    side = max(x1 - x0, y1 - y0) * scale
    return Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, float(side), angle)
