"""Quality gates applied to a face before it may count towards a decision (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face


@dataclass(frozen=True)
class QualityConfig:
    min_face_px: float = 80.0  # box side in frame pixels
    min_sharpness: float = 20.0  # variance of the Laplacian of the grey crop
    max_outside: float = 0.1  # fraction of the box allowed beyond the frame edge
    max_yaw: float = 0.4  # |nose offset from the eyes' midpoint| / eye distance


def yaw_ratio(face: Face) -> float:
    """How far the nose sits off the eyes' midpoint, in eye distances (0: frontal)."""
    right, left, nose = face.keypoints[0], face.keypoints[1], face.keypoints[2]
    eye_dist = float(np.linalg.norm(left - right))
    if eye_dist < 1e-6:
        return float("inf")
    axis = (left - right) / eye_dist
    return float(abs(np.dot(nose - (left + right) / 2.0, axis)) / eye_dist)


def outside_fraction(face: Face, width: int, height: int) -> float:
    x0, y0, x1, y1 = face.box
    area = max(face.area, 1e-6)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    inside = max(ix1 - ix0, 0) * max(iy1 - iy0, 0)
    return float(1.0 - inside / area)


def sharpness(crop: npt.NDArray[np.uint8]) -> float:
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def check_geometry(face: Face, frame_shape: tuple[int, ...], cfg: QualityConfig) -> str | None:
    """The gates that need no crop: size, cut off at the edge, head turn."""
    if min(face.width, face.height) < cfg.min_face_px:
        return "too_small"
    if outside_fraction(face, frame_shape[1], frame_shape[0]) > cfg.max_outside:
        return "cut_off"
    if yaw_ratio(face) > cfg.max_yaw:
        return "turned_away"
    return None


def check_sharpness(crop: npt.NDArray[np.uint8], cfg: QualityConfig) -> str | None:
    """The gate on the aligned crop: "blurred" below the sharpness floor."""
    return "blurred" if sharpness(crop) < cfg.min_sharpness else None
