"""Synthetic face pixels for the eye-band and crop tests: a textured frame and landmarks laid on it."""

from __future__ import annotations

import math

import cv2
import numpy as np

from kiosk.liveness import regions
from tests import liveness_synth as synth

W, H = 640, 480


def texture(seed: int = 3) -> np.ndarray:
    """A face-sized patch of blotchy texture (skin, brows, lashes at several scales), RGB."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W), np.float32)
    for sigma, amp in ((1.5, 40.0), (4.0, 60.0), (10.0, 50.0)):
        img += amp * cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), sigma) * sigma
    img = np.clip(128 + img, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), np.uint8)


def landmarks(centre: tuple[float, float] = (320.0, 240.0), iod: float = 80.0) -> np.ndarray:
    """468 landmarks of a frontal face: the synthetic head's rigid points, and an oval around them."""
    pts = np.zeros((468, 3), np.float32)
    for i, (x, y, _) in synth.HEAD.items():
        pts[i, :2] = (centre[0] + x * iod, centre[1] + y * iod)
    for k, i in enumerate(regions.OVAL):
        a = 2 * math.pi * k / len(regions.OVAL) - math.pi / 2
        pts[i, :2] = (centre[0] + 1.2 * iod * math.cos(a), centre[1] + 0.3 * iod + 1.6 * iod * math.sin(a))
    return pts


def warp_points(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (N, 2+) moved by the 3x3 homography ``h`` (other columns kept)."""
    out = pts.copy()
    p = np.column_stack([pts[:, :2], np.ones(len(pts))]) @ h.T
    out[:, :2] = p[:, :2] / p[:, 2:3]
    return out
