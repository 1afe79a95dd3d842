"""Synthetic FaceMesh landmark sets: a 3-D head and a flat picture of it, posed and projected."""

from __future__ import annotations

import math

import numpy as np

from kiosk.liveness import geometry as g

# Rigid landmarks of a head, in inter-ocular distances: x to the image's right, y down, z away
# from the camera (the nose tip is nearest). Only these indices matter to the cues.
HEAD = {
    33: (-0.75, 0.0, 0.15), 133: (-0.25, 0.0, 0.1), 362: (0.25, 0.0, 0.1), 263: (0.75, 0.0, 0.15),
    70: (-0.9, -0.3, 0.1), 63: (-0.75, -0.38, 0.0), 105: (-0.55, -0.42, -0.05), 66: (-0.35, -0.4, -0.08),
    107: (-0.15, -0.35, -0.1), 336: (0.15, -0.35, -0.1), 296: (0.35, -0.4, -0.08), 334: (0.55, -0.42, -0.05),
    293: (0.75, -0.38, 0.0), 300: (0.9, -0.3, 0.1),
    1: (0.0, 0.75, -0.6), 4: (0.0, 0.65, -0.55), 5: (0.0, 0.55, -0.48), 6: (0.0, 0.1, -0.2),
    168: (0.0, -0.05, -0.15), 195: (0.0, 0.4, -0.38), 197: (0.0, 0.25, -0.3), 98: (-0.22, 0.8, -0.25),
    327: (0.22, 0.8, -0.25),
    151: (0.0, -0.9, -0.1), 9: (0.0, -0.5, -0.15), 8: (0.0, -0.3, -0.15),
    116: (-0.95, 0.45, 0.4), 345: (0.95, 0.45, 0.4), 123: (-0.9, 0.65, 0.35), 352: (0.9, 0.65, 0.35),
    50: (-0.6, 0.7, 0.1), 280: (0.6, 0.7, 0.1), 101: (-0.45, 0.6, 0.05), 330: (0.45, 0.6, 0.05),
}
assert set(HEAD) == set(g.RIGID)

FOCAL = 600.0  # pixels
DISTANCE = 10.0  # IOD from the camera (about 65 cm)
CENTRE = np.array([320.0, 240.0])
PIVOT = np.array([0.0, 0.3, 1.2])  # a head turns about the neck, behind the face


def rotation(yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Positive yaw: the subject turns to their left (the nose goes to the image's right)."""
    y, p, r = (math.radians(v) for v in (-yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def model(flat: bool = False) -> np.ndarray:
    """(468, 3) model points; a flat picture has every z at the eyes' plane."""
    pts = np.zeros((468, 3))
    for i, xyz in HEAD.items():
        pts[i] = xyz
    if flat:
        pts[:, 2] = 0.0
    return pts


def pose(points: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
         shift: tuple[float, float, float] = (0.0, 0.0, 0.0), noise_px: float = 0.0,
         rng: np.random.Generator | None = None) -> np.ndarray:
    """Rotate about the pivot, move, project: (468, 3) landmarks in frame pixels (z kept in IOD)."""
    p = (points - PIVOT) @ rotation(yaw, pitch, roll).T + PIVOT + np.array(shift)
    z = p[:, 2] + DISTANCE
    xy = FOCAL * p[:, :2] / z[:, None] + CENTRE
    if noise_px:
        xy = xy + (rng or np.random.default_rng(0)).normal(0, noise_px, xy.shape)
    return np.column_stack([xy, p[:, 2]]).astype(np.float32)


def sweep(flat: bool, yaw_to: float, frames: int = 15, pitch_to: float = 0.0, noise_px: float = 0.3,
          seed: int = 0) -> list[np.ndarray]:
    """Frames of a turn from frontal to ``yaw_to`` degrees (and ``pitch_to``)."""
    rng = np.random.default_rng(seed)
    m = model(flat)
    return [pose(m, yaw_to * k / (frames - 1), pitch_to * k / (frames - 1), noise_px=noise_px, rng=rng)
            for k in range(frames)]
