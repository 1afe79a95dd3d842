"""Synthetic walk-up sequences: a person's photo approaching the camera over a background (optionally with
a synthetic head turn, see ``kiosk.demo.headturn``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face

RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Sequence:
    label: str  # who walks up
    enrolled: bool
    frames: list[RGB]
    first: int = 0  # index of the first frame in the whole replay
    kind: str = "walk_up"  # walk_up | attack
    synthetic: str = ""  # what is rendered rather than filmed, shown in the video and the summary


def background(width: int, height: int, rng: np.random.Generator) -> RGB:
    """A hallway-like backdrop: a smooth two-colour gradient with texture."""
    c0, c1 = rng.integers(40, 200, 3), rng.integers(40, 200, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    img = (c0 * (1 - ramp) + c1 * ramp) * np.ones((1, width, 1))
    texture = cv2.GaussianBlur(rng.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 3)[..., None]
    return np.clip(img + texture, 0, 255).astype(np.uint8)


def head_and_shoulders(rgb: RGB, face: Face, scale: float = 2.4) -> RGB:
    """A square cut around the face, ``scale`` times the face box, edge pixels repeated."""
    x0, y0, x1, y1 = face.box
    side = scale * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0 + 0.25 * (y1 - y0)
    m = np.array([[1.0, 0.0, side / 2 - cx], [0.0, 1.0, side / 2 - cy]])
    n = max(int(side), 8)
    return np.asarray(cv2.warpAffine(rgb, m, (n, n), borderMode=cv2.BORDER_REPLICATE), np.uint8)


def _soft_mask(n: int) -> npt.NDArray[np.float32]:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r = np.hypot((xx - n / 2) / (n * 0.46), (yy - n / 2) / (n * 0.5))
    return np.clip((1.0 - r) * 6.0, 0.0, 1.0)[..., None]


def walk_up(cutout: RGB | Callable[[int], RGB], bg: RGB, frames: int, rng: np.random.Generator,
            face_frac: tuple[float, float] = (0.08, 0.5), blur: float = 1.2, noise: float = 6.0,
            hold: int = 0) -> list[RGB]:
    """``frames`` frames of the cut-out growing from ``face_frac[0]`` to ``[1]`` of the frame height,
    drifting sideways, with motion blur early on and sensor noise throughout; then ``hold`` frames
    standing at the door. ``cutout`` may be a function of the frame number (a head that turns)."""
    h, w = bg.shape[:2]
    out = []
    drift = rng.uniform(-0.15, 0.15) * w
    for k in range(frames + hold):
        p = min(k / max(frames - 1, 1), 1.0)
        ease = p * p * (3 - 2 * p)
        side = int(h * (face_frac[0] + (face_frac[1] - face_frac[0]) * ease) * 2.4)
        side = max(side, 16)
        src = cutout(k) if callable(cutout) else cutout
        patch = cv2.resize(src, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        sigma = blur * (1.0 - p) + 0.3
        patch = np.asarray(cv2.GaussianBlur(patch, (0, 0), sigma), np.float32)
        cx = int(w / 2 + drift * (1 - ease))
        cy = int(h * 0.45 + 0.1 * h * (1 - ease))
        frame = bg.astype(np.float32).copy()
        mask = _soft_mask(side)
        x0, y0 = cx - side // 2, cy - side // 2
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        if fx1 > fx0 and fy1 > fy0:
            px0, py0 = fx0 - x0, fy0 - y0
            region = (slice(fy0, fy1), slice(fx0, fx1))
            pr = (slice(py0, py0 + fy1 - fy0), slice(px0, px0 + fx1 - fx0))
            frame[region] = frame[region] * (1 - mask[pr]) + patch[pr] * mask[pr]
        frame += rng.normal(0, noise, frame.shape)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out
