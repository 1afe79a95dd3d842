"""Where a flat or bent artefact lands in the camera image (pure numpy/OpenCV geometry).

A pinhole camera looks along +z. An artefact (a print, a phone or tablet
screen) is a texture of physical width ``width_m``, centred on its pose; it is
a plane, a cylinder bent about its vertical axis with a signed radius
(positive: the middle bulges towards the camera), or a print folded along a
vertical line (both halves folded back by the same angle, the fold towards the
camera, as an attacker folds a photo along the nose to give it depth). Planes
and each half of a fold are warped with one homography; cylinders are
ray-cast, pixel by pixel, inside their bounding box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Camera:
    width: int = 640
    height: int = 480
    focal: float = 560.0  # pixels: about 60 degrees of horizontal view at 640 px

    @property
    def k(self) -> F64:
        return np.array([[self.focal, 0.0, self.width / 2.0], [0.0, self.focal, self.height / 2.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Pose:
    """Orientation (radians; yaw about the vertical axis, pitch about the horizontal) and the
    position of the artefact's centre in camera coordinates (metres, z away from the camera)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    x: float = 0.0
    y: float = 0.0
    z: float = 0.4

    @property
    def rotation(self) -> F64:
        return rotation(self.yaw, self.pitch, self.roll)

    @property
    def t(self) -> F64:
        return np.array([self.x, self.y, self.z])


def rotation(yaw: float, pitch: float, roll: float) -> F64:
    cy, sy, cp, sp, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz


@dataclass(frozen=True)
class Surface:
    """A texture of ``tex_w`` x ``tex_h`` pixels printed ``width_m`` wide; ``bend_m`` is the signed
    cylinder radius (None: flat). ``fold_m``: a vertical fold this far right of the centre (metres, on
    the sheet), each half folded back by ``fold_angle`` (radians); None: no fold."""

    tex_w: int
    tex_h: int
    width_m: float
    bend_m: float | None = None
    fold_m: float | None = None
    fold_angle: float = 0.0

    def __post_init__(self) -> None:
        if self.bend_m is not None and self.fold_m is not None:
            raise ValueError("a surface is bent or folded, not both")

    @property
    def m_per_px(self) -> float:
        return self.width_m / self.tex_w

    def object_points(self, uv: npt.ArrayLike) -> F64:
        """Texture pixels (N, 2) -> points on the artefact (N, 3), metres, in its own frame."""
        p = np.asarray(uv, np.float64).reshape(-1, 2)
        s = (p[:, 0] - self.tex_w / 2.0) * self.m_per_px
        t = (p[:, 1] - self.tex_h / 2.0) * self.m_per_px
        if self.fold_m is not None:
            d = s - self.fold_m
            return np.column_stack([self.fold_m + d * math.cos(self.fold_angle), t,
                                    np.abs(d) * math.sin(self.fold_angle)])
        if self.bend_m is None:
            return np.column_stack([s, t, np.zeros_like(s)])
        r = self.bend_m
        a = s / r
        return np.column_stack([r * np.sin(a), t, r * (1.0 - np.cos(a))])


def project(cam: Camera, pose: Pose, surface: Surface, uv: npt.ArrayLike) -> F64:
    """Texture pixels (N, 2) -> frame pixels (N, 2)."""
    pts = surface.object_points(uv) @ pose.rotation.T + pose.t
    q = pts @ cam.k.T
    return q[:, :2] / q[:, 2:3]


def homography(cam: Camera, pose: Pose, surface: Surface) -> F64:
    """The 3x3 map from texture pixels to frame pixels of a flat artefact."""
    m = surface.m_per_px
    to_plane = np.array([[m, 0.0, -surface.tex_w / 2.0 * m], [0.0, m, -surface.tex_h / 2.0 * m], [0.0, 0.0, 1.0]])
    r = pose.rotation
    h = cam.k @ np.column_stack([r[:, 0], r[:, 1], pose.t]) @ to_plane
    return h / h[2, 2]


def fold_homographies(cam: Camera, pose: Pose, surface: Surface) -> tuple[tuple[F64, int], tuple[F64, int]]:
    """The maps from texture pixels to frame pixels of the two halves of a folded artefact, each with
    the texture column where it ends (left half: columns below it; right half: from it on)."""
    assert surface.fold_m is not None
    m = surface.m_per_px
    fold_u = surface.fold_m / m + surface.tex_w / 2.0
    c, s_ = math.cos(surface.fold_angle), math.sin(surface.fold_angle)
    r = pose.rotation
    halves = []
    for side in (-1.0, 1.0):  # left half: d < 0, its depth -d sin(angle); right half: d sin(angle)
        du = m * np.array([c, 0.0, side * s_])
        dv = np.array([0.0, m, 0.0])
        origin = np.array([surface.fold_m, 0.0, 0.0]) - fold_u * du - surface.tex_h / 2.0 * dv
        h = cam.k @ np.column_stack([r @ du, r @ dv, r @ origin + pose.t])
        halves.append(h / h[2, 2])
    col = int(round(fold_u))
    return (halves[0], col), (halves[1], col)


def _outline(surface: Surface, n: int = 9) -> F64:
    u = np.linspace(0, surface.tex_w, n)
    v = np.linspace(0, surface.tex_h, n)
    return np.concatenate([np.column_stack([u, np.zeros(n)]), np.column_stack([u, np.full(n, surface.tex_h)]),
                           np.column_stack([np.zeros(n), v]), np.column_stack([np.full(n, surface.tex_w), v])])


def _bent_maps(cam: Camera, pose: Pose, surface: Surface, box: tuple[int, int, int, int]) -> tuple[F32, F32]:
    """Ray-cast the pixels of ``box`` onto the cylinder: texture coordinates, -1 where it misses."""
    assert surface.bend_m is not None
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    d = np.stack([(xs - cam.width / 2.0) / cam.focal, (ys - cam.height / 2.0) / cam.focal, np.ones_like(xs)], -1)
    rot = pose.rotation
    o = -rot.T @ pose.t  # the camera centre in the artefact's frame
    d = d @ rot  # ray directions in the artefact's frame (rot.T @ d per pixel)
    r = surface.bend_m
    cz = r  # circle centre in x-z: (0, r), radius |r|; the sheet is x = r sin(a), z = r (1 - cos(a))
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = 2.0 * (o[0] * d[..., 0] + (o[2] - cz) * d[..., 2])
    c = o[0] ** 2 + (o[2] - cz) ** 2 - r * r
    disc = b * b - 4.0 * a * c
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    best_u = np.full(xs.shape, -1.0)
    best_v = np.full(xs.shape, -1.0)
    best_s = np.full(xs.shape, np.inf)
    half_w, half_h = surface.width_m / 2.0, surface.tex_h * surface.m_per_px / 2.0
    for sign in (-1.0, 1.0):
        s = (-b + sign * sq) / np.maximum(2.0 * a, 1e-12)
        px, py, pz = o[0] + s * d[..., 0], o[1] + s * d[..., 1], o[2] + s * d[..., 2]
        cos_a = (cz - pz) / r
        sin_a = px / r
        arc = r * np.arctan2(sin_a, cos_a)
        hit = ok & (s > 0) & (cos_a > 0) & (np.abs(arc) <= half_w) & (np.abs(py) <= half_h) & (s < best_s)
        best_s = np.where(hit, s, best_s)
        best_u = np.where(hit, arc / surface.m_per_px + surface.tex_w / 2.0, best_u)
        best_v = np.where(hit, py / surface.m_per_px + surface.tex_h / 2.0, best_v)
    return best_u.astype(np.float32), best_v.astype(np.float32)


def render(frame: RGB, texture: RGB, cam: Camera, pose: Pose, surface: Surface,
           shade: float = 0.0) -> tuple[RGB, F32]:
    """The frame with the artefact drawn over it, and the artefact's coverage (0..1) per pixel.

    ``shade``: how much a bent artefact darkens as it turns away from the camera (0: not at all).
    """
    h, w = frame.shape[:2]
    ones = np.ones(texture.shape[:2], np.float32)
    if surface.fold_m is not None:
        # Each half warped with zero outside it carries its colour already weighted by its coverage, so the
        # halves add up across the crease without a seam; dividing by the summed coverage undoes the weight.
        acc = np.zeros((h, w, 3), np.float32)
        total = np.zeros((h, w), np.float32)
        (hl, col), (hr, _) = fold_homographies(cam, pose, surface)
        sin_f, cos_f = math.sin(surface.fold_angle), math.cos(surface.fold_angle)
        # each half one texture column past the crease, so that the two overlap on it
        for side, hm, keep in ((-1.0, hl, slice(0, col + 1)), (1.0, hr, slice(max(col - 1, 0), None))):
            # the half's printed side faces the camera while its normal (artefact frame: away from
            # the camera) keeps a positive depth component; a half turned past edge-on is not drawn
            facing = float((pose.rotation @ np.array([-side * sin_f, 0.0, cos_f]))[2])
            if facing <= 0.0:
                continue
            half = np.zeros_like(texture)
            half[:, keep] = texture[:, keep]
            mask = np.zeros(texture.shape[:2], np.float32)
            mask[:, keep] = 1.0
            part = cv2.warpPerspective(half, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            cov = cv2.warpPerspective(mask, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            light = 1.0 - shade * (1.0 - facing)  # the half turned further from the camera catches less light
            acc += part.astype(np.float32) * light
            total += cov
        warped = np.clip(acc / np.maximum(total, 1e-6)[..., None], 0, 255).astype(np.uint8)
        cover = np.minimum(total, 1.0)
    elif surface.bend_m is None:
        hm = homography(cam, pose, surface)
        warped = np.asarray(cv2.warpPerspective(texture, hm, (w, h), flags=cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_CONSTANT), np.uint8)
        cover = np.asarray(cv2.warpPerspective(ones, hm, (w, h), flags=cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_CONSTANT), np.float32)
    else:
        outline = project(cam, pose, surface, _outline(surface))
        x0, y0 = np.floor(outline.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)
        warped = np.zeros((h, w, 3), np.uint8)
        cover = np.zeros((h, w), np.float32)
        if x1 > x0 and y1 > y0:
            mu, mv = _bent_maps(cam, pose, surface, (x0, y0, x1, y1))
            patch = cv2.remap(texture, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            cov = cv2.remap(ones, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            if shade > 0:
                angle = (mu - surface.tex_w / 2.0) * surface.m_per_px / surface.bend_m
                light = (1.0 - shade * (1.0 - np.cos(angle))).clip(0.0, 1.0).astype(np.float32)
                patch = cv2.multiply(patch, cv2.merge([light, light, light]), dtype=cv2.CV_8U)
            warped[y0:y1, x0:x1] = patch
            cover[y0:y1, x0:x1] = cov
    out = cv2.blendLinear(warped, np.ascontiguousarray(frame), cover, 1.0 - cover)
    return np.asarray(out, np.uint8), np.asarray(cover, np.float32)
