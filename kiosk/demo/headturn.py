"""A synthetic head turn: a photo warped with the depth of its FaceMesh landmarks.

The 468 landmarks (x, y and a depth z scaled like x) are rotated about a
vertical axis behind the face and projected back (orthographically); the photo
is warped piecewise-affinely over a Delaunay triangulation of the landmarks
plus a ring around the face that turns with it and a frame border that stays
put. Near triangles are drawn after far ones, so the nose hides the far cheek.
The result is labelled *synthetic* wherever it is shown: it is a rendering
that lets the demo's enrolled visitors pass the liveness check through the
real path, not evidence that liveness works on real people (that evidence is
``kiosk pad eval`` on real video).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]


def triangulate(points: npt.ArrayLike, size: tuple[int, int]) -> npt.NDArray[np.int32]:
    """Delaunay triangles (M, 3) as indices into ``points`` (N, 2), all inside ``size`` (w, h)."""
    p = np.asarray(points, np.float64)
    w, h = size
    subdiv = cv2.Subdiv2D((-20 * w, -20 * h, 41 * w, 41 * h))  # far virtual vertices: no hull triangle lost
    for x, y in p:
        subdiv.insert((float(np.clip(x, 0, w)), float(np.clip(y, 0, h))))
    tris = []
    clipped = np.clip(p, 0, [w, h])
    for t in np.asarray(subdiv.getTriangleList(), np.float64).reshape(-1, 3, 2):
        d = np.sum((clipped[None, :, :] - t[:, None, :]) ** 2, axis=2)
        idx = [int(i) for i in np.argmin(d, axis=1)]
        # triangles reaching Subdiv2D's virtual outer vertices are not part of the triangulation
        if len(set(idx)) == 3 and float(d[range(3), idx].max()) < 1e-3:
            tris.append(idx)
    return np.asarray(tris, np.int32).reshape(-1, 3)


def support_points(landmarks: npt.ArrayLike, size: tuple[int, int], ring: float = 1.35, n_ring: int = 24,
                   n_edge: int = 5) -> tuple[F64, F64]:
    """Points that turn with the head (a ring around the face, at the depth of its outline) and points
    on the image border that stay put."""
    lm = np.asarray(landmarks, np.float64)
    c = lm[:, :2].mean(axis=0)
    r = np.linalg.norm(lm[:, :2] - c, axis=1).max() * ring
    a = np.linspace(0, 2 * math.pi, n_ring, endpoint=False)
    outline_z = np.percentile(lm[:, 2], 90)  # the face's edge, furthest from the camera
    turning = np.column_stack([c[0] + r * np.cos(a), c[1] + 1.15 * r * np.sin(a), np.full(n_ring, outline_z)])
    w, h = size
    e = np.linspace(0, 1, n_edge)
    xs, ys, zero = e * (w - 1), e * (h - 1), np.zeros(n_edge)
    border = np.concatenate([np.column_stack([xs, zero]), np.column_stack([xs, zero + h - 1]),
                             np.column_stack([zero, ys]), np.column_stack([zero + w - 1, ys])])
    return turning, np.unique(border, axis=0)


def turn(points: F64, yaw: float, pitch: float = 0.0, axis_depth: float = 0.6) -> F64:
    """Rotate (N, 3) points about axes through a point ``axis_depth`` face widths behind the face's centre;
    returns the projected (N, 2) positions (z is dropped: orthographic)."""
    c = points.mean(axis=0)
    width = float(np.ptp(points[:, 0])) or 1.0
    pivot = np.array([c[0], c[1], points[:, 2].mean() + axis_depth * width])
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    # yaw about the image's vertical axis, pitch about its horizontal axis; z grows away from the camera
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    q = (points - pivot) @ (rx @ ry).T + pivot
    return np.asarray(q, np.float64)


def warp(img: RGB, src: F64, dst: F64, tris: npt.NDArray[np.int32], depth: F64) -> RGB:
    """Piecewise-affine warp moving ``src`` (N, 2) to ``dst`` (N, 2); triangles drawn far to near by ``depth``."""
    h, w = img.shape[:2]
    label = np.full((h, w), -1, np.int32)
    order = np.argsort(-depth[tris].mean(axis=1))  # far (large z) first
    for m in order:
        cv2.fillConvexPoly(label, np.round(dst[tris[m]]).astype(np.int32), int(m))
    inv = np.stack([cv2.getAffineTransform(dst[t].astype(np.float32), src[t].astype(np.float32)) for t in tris])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = label >= 0
    a = inv[label[inside]]
    px, py = xs[inside], ys[inside]
    map_x, map_y = xs.copy(), ys.copy()
    map_x[inside] = a[:, 0, 0] * px + a[:, 0, 1] * py + a[:, 0, 2]
    map_y[inside] = a[:, 1, 0] * px + a[:, 1, 1] * py + a[:, 1, 2]
    return np.asarray(cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


class HeadTurner:
    """``HeadTurner(cutout, landmarks)(yaw, pitch)``: the cut-out with its head turned (radians)."""

    def __init__(self, img: RGB, landmarks: npt.ArrayLike) -> None:
        h, w = img.shape[:2]
        lm = np.asarray(landmarks, np.float64).reshape(-1, 3)
        ring, border = support_points(lm, (w, h))
        self.img = img
        self.moving = np.concatenate([lm, ring])
        self.border = border
        self.src = np.concatenate([self.moving[:, :2], border])
        self.tris = triangulate(self.src, (w, h))

    def __call__(self, yaw: float, pitch: float = 0.0) -> RGB:
        if yaw == 0.0 and pitch == 0.0:
            return self.img
        turned = turn(self.moving, yaw, pitch)
        dst = np.concatenate([turned[:, :2], self.border])
        depth = np.concatenate([turned[:, 2], np.full(len(self.border), turned[:, 2].max() + 1.0)])
        return warp(self.img, self.src, dst, self.tris, depth)
