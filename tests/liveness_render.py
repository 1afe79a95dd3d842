"""A printed photo held up to the camera and turned as a plane in 3-D, rendered with a perspective warp."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from kiosk.imageio import read_rgb

W, H, FOCAL = 640, 480, 600.0


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    return np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])


def render_print(photo: Path, out: Path, frames: int = 45, yaw_deg: float = 30.0, pitch_deg: float = 12.0,
                 width_m: float = 0.22, distance_m: float = 0.45, seed: int = 0) -> list[Path]:
    """JPEG frames of the photo on white paper, turned from frontal to ``yaw_deg``/``pitch_deg`` and back,
    with sensor noise; returns their paths in order."""
    rng = np.random.default_rng(seed)
    photo_rgb = read_rgb(photo)
    scale = 400 / max(photo_rgb.shape[:2])
    size = (round(photo_rgb.shape[1] * scale), round(photo_rgb.shape[0] * scale))
    printed = cv2.resize(photo_rgb, size, interpolation=cv2.INTER_AREA)
    tex = cv2.copyMakeBorder(printed, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=(245, 245, 245))
    th, tw = tex.shape[:2]
    k = width_m / tw
    corners = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float64)
    local = np.column_stack([(corners - [tw / 2, th / 2]) * k, np.zeros(4)])
    bg = cv2.resize(rng.uniform(60, 200, (6, 8, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(frames):
        s = math.sin(math.pi * i / (frames - 1))  # there and back
        p = local @ _rotation(math.radians(yaw_deg * s), math.radians(pitch_deg * s)).T + [0.0, 0.0, distance_m]
        img_pts = FOCAL * p[:, :2] / p[:, 2:3] + [W / 2, H / 2]
        m = cv2.getPerspectiveTransform(corners.astype(np.float32), img_pts.astype(np.float32))
        warped = cv2.warpPerspective(tex, m, (W, H))
        mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), m, (W, H)) > 0
        frame = np.where(mask[..., None], warped.astype(np.float32), bg) + rng.normal(0, 3.0, (H, W, 3))
        path = out / f"{i:04d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        paths.append(path)
    return paths
