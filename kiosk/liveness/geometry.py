"""Pure geometry of rigid FaceMesh landmarks: homography, similarity and pose (numpy only).

Distances are in inter-ocular distances (IOD): the distance between the two
eye centres, so figures do not depend on how far the face is from the camera.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Points = npt.NDArray[np.floating]

# FaceMesh indices of points that move with the skull: eye corners (not the
# lids, which blink), brows, nose, forehead, cheekbones. Not the mouth or the
# jaw: expressions move those and no single transform explains them.
EYE_CORNERS = (33, 133, 362, 263)
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
NOSE = (1, 4, 5, 6, 168, 195, 197, 98, 327)
FOREHEAD = (151, 9, 8)
CHEEKBONES = (116, 345, 123, 352, 50, 280, 101, 330)
RIGID = EYE_CORNERS + BROWS + NOSE + FOREHEAD + CHEEKBONES
# Within RIGID: the two eyes (outer and inner corners) and the nose tip.
RIGHT_EYE_IMAGE_LEFT = (0, 1)  # 33, 133: the subject's right eye, on the image's left
LEFT_EYE_IMAGE_RIGHT = (2, 3)  # 362, 263
NOSE_TIP = len(EYE_CORNERS) + len(BROWS)  # index of landmark 1 in RIGID


def rigid(landmarks: Points) -> F64:
    """The rigid subset (len(RIGID), 2) of 468 landmarks, x and y only."""
    return np.asarray(landmarks, np.float64)[list(RIGID), :2]


def eye_centres(points: Points) -> tuple[F64, F64]:
    """Centres of the eye on the image's left and the one on its right, from a RIGID set."""
    p = np.asarray(points, np.float64)
    (a0, a1), (b0, b1) = RIGHT_EYE_IMAGE_LEFT, LEFT_EYE_IMAGE_RIGHT
    return 0.5 * (p[a0] + p[a1]), 0.5 * (p[b0] + p[b1])


def inter_ocular(points: Points) -> float:
    return float(inter_oculars(np.asarray(points, np.float64)[None])[0])


def _normalised_fits(src: Points, dst: Points) -> tuple[F64, F64, F64, F64, F64]:
    """The K homographies between Hartley-normalised src and dst sets (K, N, 2), normalised DLT.

    Each set is moved so its centroid is at the origin and scaled so its mean distance from it is
    sqrt(2) (all 2K sets in one pass). Returns the K normalised homographies, the normalised src and
    dst sets, and each set's centroid and scale (2K,) so that a caller can map back to pixels.
    Batched so that the several fits one frame needs cost one pass of numpy calls.
    """
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 2 or a.shape[1] < 4:
        raise ValueError(f"need two (K, N>=4, 2) point sets of one shape, got {a.shape} and {b.shape}")
    k, n = a.shape[:2]
    z = np.concatenate([a, b])
    c = z.sum(axis=1) / n
    z = z - c[:, None, :]
    d = np.sqrt((z * z).sum(axis=2)).sum(axis=1) / n
    s = math.sqrt(2.0) / np.where(d > 0, d, 1.0)
    z *= s[:, None, None]
    x, y, u, v = z[:k, :, 0], z[:k, :, 1], z[k:, :, 0], z[k:, :, 1]
    # The DLT rows of each pair, (K, 2N, 9): [-x, -y, -1, 0, 0, 0, ux, uy, u] over [0, 0, 0, -x, -y, -1, vx, vy, v].
    m = np.zeros((k, 2 * n, 9))
    rows_u, rows_v = m[:, :n], m[:, n:]
    nx, ny = -x, -y
    rows_u[..., 0], rows_u[..., 1], rows_u[..., 2] = nx, ny, -1.0
    rows_v[..., 3], rows_v[..., 4], rows_v[..., 5] = nx, ny, -1.0
    rows_u[..., 6], rows_u[..., 7], rows_u[..., 8] = u * x, u * y, u
    rows_v[..., 6], rows_v[..., 7], rows_v[..., 8] = v * x, v * y, v
    # The right singular vector of m with the smallest singular value, as the eigenvector of the
    # 9x9 m^T m with the smallest eigenvalue: the same solution, several times cheaper than an SVD of m.
    h = np.linalg.eigh(np.swapaxes(m, 1, 2) @ m)[1][:, :, 0].reshape(k, 3, 3)
    return h, z[:k], z[k:], c, s


def apply_homography(h: F64, p: Points) -> F64:
    """Map points (N, 2) through a 3x3 homography (or K sets (K, N, 2) through K homographies (K, 3, 3))."""
    p = np.asarray(p, np.float64)
    q = p @ np.swapaxes(h[..., :, :2], -1, -2) + h[..., None, :, 2]
    w = q[..., 2:3]
    return q[..., :2] / np.where(np.abs(w) < 1e-12, 1e-12, w)


def fit_homographies(src: Points, dst: Points) -> F64:
    """The K 3x3 homographies mapping each src set (K, N, 2) onto its dst set, normalised DLT (N >= 4)."""
    hn, _, _, c, s = _normalised_fits(src, dst)
    k = len(hn)
    ta = np.zeros((k, 3, 3))
    ta[:, 0, 0] = ta[:, 1, 1] = s[:k]
    ta[:, :2, 2] = -s[:k, None] * c[:k]
    ta[:, 2, 2] = 1.0
    tb_inv = np.zeros((k, 3, 3))
    tb_inv[:, 0, 0] = tb_inv[:, 1, 1] = 1.0 / s[k:]
    tb_inv[:, :2, 2] = c[k:]
    tb_inv[:, 2, 2] = 1.0
    h = tb_inv @ hn @ ta
    h22 = h[:, 2, 2]
    return np.asarray(h / np.where(np.abs(h22) > 1e-12, h22, 1.0)[:, None, None])


def fit_homography(src: Points, dst: Points) -> F64:
    """The 3x3 homography mapping src (N, 2) onto dst (N, 2), normalised DLT (N >= 4)."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 4:
        raise ValueError(f"need two (N>=4, 2) point sets of one shape, got {a.shape} and {b.shape}")
    return fit_homographies(a[None], b[None])[0]


def fit_similarity(src: Points, dst: Points) -> F64:
    """The 2x3 least-squares similarity (rotation, uniform scale, translation) src -> dst (Umeyama)."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ca, b - cb
    var = float((a0**2).sum()) or 1e-12
    u, s, vt = np.linalg.svd(b0.T @ a0)
    d = np.eye(2)
    if np.linalg.det(u @ vt) < 0:
        d[1, 1] = -1.0
    r = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d)) / var
    return np.column_stack([scale * r, cb - scale * r @ ca])


def fit_affine(src: Points, dst: Points) -> F64:
    """The 2x3 least-squares affine map src -> dst."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    x = np.column_stack([a, np.ones(len(a))])
    sol = np.linalg.lstsq(x, b, rcond=None)[0]
    return np.asarray(sol.T)


def _rms(d: F64) -> float:
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))))


def _scale(src: F64, dst: F64) -> float:
    return max(0.5 * (inter_ocular(src) + inter_ocular(dst)), 1e-9)


def homography_residuals(src: Points, dst: Points) -> F64:
    """``homography_residual`` of K pairs of RIGID sets (K, N, 2) at once."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    hn, an, bn, _, s = _normalised_fits(a, b)
    # In the normalised frame: dst's normalisation is a similarity, so a distance there is the pixel
    # distance times dst's scale, and no fit needs mapping back to pixels.
    d = apply_homography(hn, an) - bn
    k = len(a)
    rms = np.sqrt((d * d).sum(axis=2).sum(axis=1) / a.shape[1]) / s[k:]
    iod = inter_oculars(np.concatenate([a, b]))  # both sides' in one pass
    return np.asarray(rms / np.maximum(0.5 * (iod[:k] + iod[k:]), 1e-9))


def inter_oculars(p: F64) -> F64:
    """Inter-ocular distance of each of K RIGID sets (K, N, 2)."""
    le, re = RIGHT_EYE_IMAGE_LEFT, LEFT_EYE_IMAGE_RIGHT
    axis = 0.5 * ((p[:, re[0]] + p[:, re[1]]) - (p[:, le[0]] + p[:, le[1]]))
    return np.asarray(np.sqrt((axis**2).sum(axis=1)))


def between(before: Points, middle: Points, after: Points) -> F64:
    """The point set on the way from ``before`` to ``after`` that fits ``middle`` best.

    ``before + t (after - before)``, with t in [0, 1] chosen by least squares on the centred sets
    (0.5 when the two do not differ). Landmark jitter is measured as the homography residual of a
    frame against this prediction from its two neighbours: a head whose turn speeds up or slows
    down between them is not half-way at the middle frame, and the plain mean would count that as
    jitter, more so the further apart the frames are (a slower loop).
    """
    b, m, a = (np.asarray(x, np.float64) for x in (before, middle, after))
    n = len(b)
    d = a - b
    d = d - d.sum(axis=0) / n  # the mean, as ndarray.mean computes it, without its wrapper's cost
    dd = float((d * d).sum())
    if dd < 1e-18:
        return np.asarray(0.5 * (b + a))
    r = m - b
    t = min(max(float((r - r.sum(axis=0) / n).ravel() @ d.ravel()) / dd, 0.0), 1.0)
    return np.asarray(b + t * (a - b))


def homography_residual(src: Points, dst: Points) -> float:
    """RMS distance, in IOD, between dst and src mapped by the best homography."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (N>=4, 2) point sets of one shape, got {a.shape} and {b.shape}")
    return float(homography_residuals(a[None], b[None])[0])


def similarity_residual(src: Points, dst: Points) -> float:
    """RMS distance, in IOD, left after the best similarity: how much the shape changed, not where it went."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    m = fit_similarity(a, b)
    return _rms(a @ m[:, :2].T + m[:, 2] - b) / _scale(a, b)


def affine_residual(src: Points, dst: Points) -> float:
    """RMS distance, in IOD, left after the best affine map."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    m = fit_affine(a, b)
    return _rms(a @ m[:, :2].T + m[:, 2] - b) / _scale(a, b)


def yaw_pitch(points: Points) -> tuple[float, float]:
    """Nose-tip offset from the eyes' midpoint, along and across the eye line, in IOD.

    A turn changes it; a flat picture turned in the hand does not (a plane's
    foreshortening scales the offset and the eye distance alike). Positive yaw:
    the nose towards the image's right, which is the subject's left with an
    unmirrored camera. Positive pitch: the nose lower in the image.
    """
    p = np.asarray(points, np.float64)
    a, b = eye_centres(p)
    axis = b - a
    iod = float(np.linalg.norm(axis)) or 1e-9
    ex = axis / iod
    ey = np.array([-ex[1], ex[0]])
    off = p[NOSE_TIP] - (a + b) / 2.0
    return float(off @ ex) / iod, float(off @ ey) / iod
