"""Whether the pixels of the eye region move as one plane between two frames (OpenCV and numpy only).

FaceMesh fits a face to whatever it is shown: over a print of the upper face
worn above a real nose and mouth, its landmarks carry the real head's parallax
into the printed eyes. The pixels do not. Between two frames of a real head
turning, the band from the brows to below the eyes (the eye sockets, the
nasion, the brow ridge) cannot be aligned by one homography; a sheet of paper
can, up to camera noise.

Each frame is cut to a canonical crop (the eyes level, ``IOD_PX`` apart). Each
half of the band (one eye and its brow, split at the face's midline) of the
first crop is aligned onto the second by the homography that best matches the
pixels (OpenCV's ECC, started from the landmarks' homography and from that of
the band's corners tracked between the frames), so that a sheet
whose edge lets real skin or hair into the band, or a print folded along the
nose, still shows a plane on each side it covers; the lesser of the two
residuals counts.

A half that reads as relief is read again without its shading (each crop
less its blur at ``SHADING_SIGMA`` px, ``detail``), and the lesser reading
counts: light that moves across the face is not relief. A lamp's reflection
on glossy paper travels across the sheet as it turns; with the shading kept,
ECC settled between the print and the reflection, and 11 of 70 glossy
upper-face sheets opened the door (docs/liveness.md). Read only without its
shading, the band let more folded prints in (ECC aligns less well on what is
left), so the second reading may only find a plane, as the second start may.

What is left is expressed as a distance: the RMS of the intensity difference
(both sides normalised to zero mean and unit variance over the band) divided by
the RMS intensity gradient, which for small misalignments is the RMS of the
misalignment in pixels, then divided by ``IOD_PX``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

CROP = 128
IOD_PX = 48.0
EYE_Y = 52.0
BAND_ABOVE, BAND_BELOW = 0.45, 0.35  # the band's extent above and below the eye line, IOD
BLUR_SIGMA = 1.0  # pixels of the crop: camera noise is not structure
SHADING_SIGMA = 3.0  # pixels of the crop: light that varies more slowly than this is shading, not structure
MIN_BAND_PX = 200
MAX_KEPT_BYTES = 512 * 1024  # pixels a sampled frame may keep for its crop; beyond it the crop is cut at once
ECC_ITERATIONS, ECC_EPS = 50, 1e-4
TRACK_CORNERS, MIN_TRACKS = 60, 8  # corners of a half band tracked for ECC's second start
MAX_AREA_CHANGE = 9.0  # how much a plausible warp may scale the band's area, either way
WINDOW_MARGIN = 12  # rows of the crop above and below the band that the moving image may bring in

# FaceMesh points that start the alignment: eye corners, brows, forehead, nasion, upper cheeks.
ANCHORS = (33, 133, 362, 263, 70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 151, 9, 8, 168, 6, 116, 345)
# The face oval, to keep the band off the background and the hair.
OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
        176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
_EYES = ((33, 133), (362, 263))
_EYE_POINTS = [*_EYES[0], *_EYES[1]]


@dataclass(frozen=True)
class FaceCrop:
    """A frame's face, canonical: grey levels (CROP, CROP) and the anchor and oval points in crop pixels."""

    gray: npt.NDArray[np.uint8]
    anchors: npt.NDArray[np.float32]  # (len(ANCHORS), 2)
    oval: npt.NDArray[np.float32]  # (len(OVAL), 2)


def canonical(landmarks: npt.NDArray[np.floating]) -> npt.NDArray[np.float64] | None:
    """The 2x3 similarity that puts the eye centres level, ``IOD_PX`` apart, at height ``EYE_Y``."""
    p = np.asarray(np.asarray(landmarks)[_EYE_POINTS, :2], np.float64)  # the four eye corners only
    a = 0.5 * (p[0] + p[1])
    b = 0.5 * (p[2] + p[3])
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or np.linalg.norm(b - a) < 1e-6:
        return None
    za, zb = complex(a[0], a[1]), complex(b[0], b[1])
    da, db = complex(CROP / 2 - IOD_PX / 2, EYE_Y), complex(CROP / 2 + IOD_PX / 2, EYE_Y)
    s = (db - da) / (zb - za)
    t = da - s * za
    return np.array([[s.real, -s.imag, t.real], [s.imag, s.real, t.imag]])


def face_crop(rgb: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.floating]) -> FaceCrop | None:
    """The canonical crop of the face whose 468 landmarks (frame pixels) are given; None if the eyes
    are not usable."""
    source = crop_source(rgb, landmarks)
    return None if source is None else source.crop()


class CropSource:
    """What a frame's canonical face crop is cut from: a copy of the frame's pixels under the crop (its
    footprint, a small margin for the interpolation) and the warp from the crop into them.

    Keeping this is cheap (one copy of a sub-image); cutting the crop (a warp and a grey conversion)
    costs several times more and is needed only for the frames of a pair with parallax, a handful
    per approach: ``crop`` cuts it on first use, keeps it and lets the pixels go. The crop is the one
    ``cv2.warpAffine`` cuts from the whole frame with the same warp (the copy holds every pixel the
    warp reads, and the border is the frame's own: pixels beyond the frame replicate its edge in both).

    A track keeps up to ``FlatnessCue.max_frames`` of these. A footprint over ``MAX_KEPT_BYTES`` (a
    face close to the camera) is cut at once and nothing of the frame is kept, so that a track never
    holds more than that many times ``MAX_KEPT_BYTES`` of pixels (about 23 MB); in 500 frames of the
    25 real clips (close-ups) the footprint was a median 0.34 of the frame, at most 0.56."""

    __slots__ = ("_crop", "_forward", "_inverse", "_landmarks", "_pixels")

    def __init__(self, rgb: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.floating],
                 forward: npt.NDArray[np.float64]) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.size == 0:
            raise ValueError(f"a face crop needs an RGB frame of bytes, got {rgb.dtype} {rgb.shape}")
        a, b, c, d, e, f = _inverted(forward)  # crop pixels -> frame pixels, as warpAffine inverts a forward map
        h, w = rgb.shape[:2]
        corners = ((0.0, 0.0), (0.0, CROP), (CROP, 0.0), (CROP, CROP))
        xs = [a * u + b * v + c for u, v in corners]
        ys = [d * u + e * v + f for u, v in corners]
        if not all(math.isfinite(v) for v in xs + ys):  # eye corners absurdly far apart or away
            raise FootprintError(f"the crop's footprint is not finite: x {xs}, y {ys}")
        x0, x1 = _span(min(xs), max(xs), w)
        y0, y1 = _span(min(ys), max(ys), h)
        self._inverse = np.array([[a, b, c - x0], [d, e, f - y0]])
        self._forward = forward
        # Copies, not views: the camera may reuse its buffers, and a view would keep the whole frame alive.
        self._landmarks: npt.NDArray[np.floating] | None = np.array(landmarks, copy=True)
        self._crop: FaceCrop | None = None
        self._pixels: npt.NDArray[np.uint8] | None = None
        view = rgb[y0:y1, x0:x1]
        if view.nbytes > MAX_KEPT_BYTES:  # a face this close: the crop now, rather than the pixels
            self._crop = self._cut(view)
            self._landmarks = None
        else:
            self._pixels = np.array(view, np.uint8, copy=True)

    @property
    def nbytes(self) -> int:
        """Bytes of frame pixels held (none once the crop is cut)."""
        return 0 if self._pixels is None else int(self._pixels.nbytes)

    def crop(self) -> FaceCrop:
        if self._crop is None:
            assert self._pixels is not None
            self._crop = self._cut(self._pixels)
            self._pixels = self._landmarks = None  # the crop is all that is needed from now on
        return self._crop

    def _cut(self, pixels: npt.NDArray[np.uint8]) -> FaceCrop:
        assert self._landmarks is not None
        patch = cv2.warpAffine(pixels, self._inverse, (CROP, CROP),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        gray = np.asarray(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), np.uint8)
        m = self._forward
        p = np.asarray(self._landmarks, np.float64)[:, :2] @ m[:, :2].T + m[:, 2]
        return FaceCrop(gray, p[list(ANCHORS)].astype(np.float32), p[list(OVAL)].astype(np.float32))


class FootprintError(ValueError):
    """The landmarks put the crop nowhere in pixel space (coordinates that overflow)."""


def crop_source(rgb: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.floating]) -> CropSource | None:
    """The pixels the canonical crop of this face will be cut from; None if the eyes are not usable."""
    m = canonical(landmarks)
    if m is None:
        return None
    try:
        return CropSource(rgb, landmarks, m)
    except FootprintError:
        return None  # no pixels: no eye-band evidence, as for unusable eyes


def _inverted(m: npt.NDArray[np.float64]) -> tuple[float, float, float, float, float, float]:
    """The inverse of a 2x3 affine map, row by row, with the arithmetic ``cv2.warpAffine`` uses when it
    inverts the map it is given (so that a warp with the inverse reads exactly the same pixels)."""
    a, b, c, d, e, f = (float(v) for v in m.reshape(-1))
    det = a * e - b * d
    det = 1.0 / det if det != 0 else 0.0
    a2, e2 = e * det, a * det
    b2, d2 = b * -det, d * -det
    return a2, b2, -a2 * c - b2 * f, d2, e2, -d2 * c - e2 * f


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """The pixel range [start, stop) of one axis of a footprint from ``lo`` to ``hi``, two pixels of
    margin for the interpolation, within the frame and never empty (a footprint beyond the frame
    reads the replicated edge, which the range's clamped end still holds)."""
    start = min(max(math.floor(lo) - 2, 0), size - 1)
    stop = max(min(math.ceil(hi) + 3, size), start + 1)
    return start, stop


def eye_band(crop: FaceCrop) -> npt.NDArray[np.uint8]:
    """The band from a little above the brows to below the eyes, inside the face oval (0/1 mask)."""
    mask = np.zeros((CROP, CROP), np.uint8)
    cv2.fillPoly(mask, [np.round(crop.oval).astype(np.int32)], 1)
    mask = np.asarray(cv2.erode(mask, np.ones((5, 5), np.uint8)), np.uint8)
    top, bottom = int(round(EYE_Y - BAND_ABOVE * IOD_PX)), int(round(EYE_Y + BAND_BELOW * IOD_PX))
    mask[:max(top, 0)] = 0
    mask[bottom + 1:] = 0
    return np.asarray(mask, np.uint8)


def misalignment(src: FaceCrop, dst: FaceCrop, plane_below: float = 0.0,
                 band: Callable[[FaceCrop], npt.NDArray[np.uint8]] | None = None,
                 pool: Executor | None = None) -> float | None:
    """What the best homography leaves of the eye band between two crops, in IOD.

    The band's two halves (each eye with its brow, split at the face's midline) are aligned on their
    own and the lesser residual is returned: a sheet that covers only one side, or whose edge lets
    real skin, hair or background into the band, still reads as a plane on the side it covers. Each
    side is compared where both crops have band: pixels of the second crop outside its own band
    (background beside a turned head) never take part. A half that cannot be aligned (too small, or
    no convergence: the far side of a turned head, half hidden by the nose) gives no value; None when
    neither half can be aligned: no evidence.

    ``plane_below``: a half that only the second ECC start (tracked corners, see ``_aligned``) aligns
    counts when it reads under this, a plane, and not otherwise. The second start may find a plane the
    first one missed; it must never add relief the first could not measure, since a relief reading is
    what lets a face through.

    ``band``: the mask of a crop to compare (default ``eye_band``; benchmarks try others).

    ``pool``: when given, the image-left half is aligned there while the caller aligns the other (OpenCV
    releases the GIL: the two halves share nothing, so the value is the same, in less time on two
    cores). Never pass a pool whose own workers call this."""
    region = eye_band if band is None else band
    band_a, band_b = region(src), region(dst)
    h0, _ = cv2.findHomography(src.anchors, dst.anchors, 0)
    if h0 is None or not band_a.any() or not band_b.any():
        return None
    # Only a window of rows around the bands takes part, the same rows of both crops (ECC needs one size).
    rows = np.flatnonzero((band_a | band_b).any(axis=1))
    r0, r1 = max(int(rows[0]) - WINDOW_MARGIN, 0), min(int(rows[-1]) + 1 + WINDOW_MARGIN, CROP)
    shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, float(r0)], [0.0, 0.0, 1.0]])
    start = (np.linalg.inv(shift) @ h0 @ shift).astype(np.float32)
    a = np.asarray(cv2.GaussianBlur(src.gray[r0:r1].astype(np.float32), (0, 0), BLUR_SIGMA), np.float32)
    b = np.asarray(cv2.GaussianBlur(dst.gray[r0:r1].astype(np.float32), (0, 0), BLUR_SIGMA), np.float32)
    fa, fb = detail(a), detail(b)

    def side(s: int) -> float | None:
        return _either(a, b, fa, fb, _half(band_a[r0:r1], s), _half(band_b[r0:r1], s), start, plane_below)

    left = None
    if pool is not None:
        try:
            left = pool.submit(side, 0)
        except RuntimeError:  # shut down, or no thread could start (a task limit): the halves in turn
            left = None
    right = side(1)
    halves = [side(0) if left is None else left.result(), right]
    aligned = [h for h in halves if h is not None]
    return min(aligned) if aligned else None


def detail(img: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``img`` less its shading: what varies over fewer than ``SHADING_SIGMA`` pixels (0: ``img``)."""
    if SHADING_SIGMA <= 0:
        return img
    return np.asarray(img - cv2.GaussianBlur(img, (0, 0), SHADING_SIGMA), np.float32)


def _half(band: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """The band's image-left (0) or image-right (1) half: the crop puts the face's midline at its centre."""
    out = np.ascontiguousarray(band.copy())
    if side == 0:
        out[:, CROP // 2:] = 0
    else:
        out[:, :CROP // 2] = 0
    return out


def _either(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], fa: npt.NDArray[np.float32],
            fb: npt.NDArray[np.float32], band_a: npt.NDArray[np.uint8], band_b: npt.NDArray[np.uint8],
            start: npt.NDArray[np.float32], plane_below: float) -> float | None:
    """A half read as it is and, unless that already found a plane, without its shading (``fa``, ``fb``:
    ``detail``); the lesser counts. The reading without shading may only find a plane, as the second
    start may: where the first reading aligned nothing, it counts only under ``plane_below``."""
    if int(band_a.sum()) < MIN_BAND_PX or int(band_b.sum()) < MIN_BAND_PX:
        return None
    tracked = _tracked_start(a, b, band_a, start)  # on the images as they are, once for both readings
    kept = _aligned(a, b, band_a, band_b, start, tracked, plane_below)
    if kept is not None and kept < plane_below:
        return kept
    bare = _aligned(fa, fb, band_a, band_b, start, tracked, plane_below)
    if bare is None:
        return kept
    if kept is None:
        return bare if bare < plane_below else None
    return min(kept, bare)


def _aligned(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], band_a: npt.NDArray[np.uint8],
             band_b: npt.NDArray[np.uint8], start: npt.NDArray[np.float32],
             tracked: npt.NDArray[np.float32] | None, plane_below: float) -> float | None:
    """The residual, in IOD, of the best homography found that aligns ``b`` onto ``a``, over the pixels
    of ``band_a`` that land in ``band_b``.

    ECC refines a homography locally, so it is started twice: from the landmarks' homography
    (``start``), and from ``tracked``, the homography of the band's own corners tracked between the
    frames (``_tracked_start``: pyramidal Lucas-Kanade, RANSAC; None when too few were tracked).
    The landmarks are FaceMesh's reading of a face: on an artefact they carry the depth it
    hallucinates, and ECC started there can stop short of the plane the pixels lie on, or wander off;
    the tracked corners follow the pixels. The lesser residual of the two counts; when only the
    second start aligns the half, its residual counts only under ``plane_below``."""
    if int(band_a.sum()) < MIN_BAND_PX or int(band_b.sum()) < MIN_BAND_PX:
        return None
    first = _residual_after_ecc(a, b, band_a, band_b, start)
    second = None if tracked is None else _residual_after_ecc(a, b, band_a, band_b, tracked)
    if second is None:
        return first
    if first is None:
        return second if second < plane_below else None
    return min(first, second)


def _tracked_start(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], band_a: npt.NDArray[np.uint8],
                   start: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """The homography of corners of ``band_a`` tracked into ``b`` (their search started where the
    landmarks' homography puts them); None with too few corners or tracks."""
    a8 = np.asarray(np.clip(a, 0, 255), np.uint8)
    b8 = np.asarray(np.clip(b, 0, 255), np.uint8)
    corners = cv2.goodFeaturesToTrack(a8, TRACK_CORNERS, 0.01, 3, mask=band_a)
    if corners is None or len(corners) < MIN_TRACKS:
        return None
    corners = np.asarray(corners, np.float32)
    guess = np.asarray(cv2.perspectiveTransform(corners, start.astype(np.float64)), np.float32)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(a8, b8, corners, guess.copy(), winSize=(11, 11), maxLevel=2,
                                                flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    ok = status.reshape(-1) == 1
    if int(ok.sum()) < MIN_TRACKS:
        return None
    h, _ = cv2.findHomography(corners.reshape(-1, 2)[ok], moved.reshape(-1, 2)[ok], cv2.RANSAC, 1.5)
    return None if h is None else np.asarray(h, np.float32)


def _residual_after_ecc(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], band_a: npt.NDArray[np.uint8],
                        band_b: npt.NDArray[np.uint8], start: npt.NDArray[np.float32]) -> float | None:
    try:
        # OpenCV's mask is the moving image's: ECC compares only where b has band.
        _, warp = cv2.findTransformECC(a, b, start.copy(), cv2.MOTION_HOMOGRAPHY,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS),
                                       band_b, 3)
    except cv2.error:
        return None  # no convergence: no evidence
    if not plausible(np.asarray(warp, np.float64), band_a):
        return None  # ECC wandered off to a warp no view of one surface gives: no evidence
    size = (a.shape[1], a.shape[0])
    back = np.asarray(cv2.warpPerspective(b, warp, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP), np.float32)
    landed = cv2.warpPerspective(band_b, warp, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    keep = (band_a > 0) & landed
    if int(keep.sum()) < MIN_BAND_PX:
        return None
    return _residual_px(a, back, keep) / IOD_PX


def plausible(warp: npt.NDArray[np.floating], band: npt.NDArray[np.uint8]) -> bool:
    """Whether a homography can be a view of the band's surface from another camera position: in front
    of the camera over the whole band (no point sent through the horizon) and nowhere shrinking or
    growing the area by more than ``MAX_AREA_CHANGE`` (a head or a sheet turning in front of a door
    camera changes the band's scale by far less). ECC started from the landmarks can converge to a
    degenerate warp that smears the band into a line; what that leaves is no measure of relief."""
    ys, xs = np.nonzero(band)
    if len(xs) == 0:
        return False
    h = np.asarray(warp, np.float64)
    pts = np.column_stack([xs, ys, np.ones(len(xs))])[:: max(1, len(xs) // 64)]
    p = pts @ h.T
    w = p[:, 2]
    if not (w > 0).all():
        return False
    # The Jacobian's determinant of x -> (h x)_{1,2} / (h x)_3 is det(h) / w^3.
    area = np.linalg.det(h) / w**3
    return bool((area > 1.0 / MAX_AREA_CHANGE).all() and (area < MAX_AREA_CHANGE).all())


def _residual_px(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], keep: npt.NDArray[np.bool_]) -> float:
    """RMS intensity difference over the gradient RMS, both normalised over ``keep``: pixels."""
    sa, sb = float(a[keep].std()), float(b[keep].std())
    if sa < 1e-6 or sb < 1e-6:
        return 0.0  # a featureless band: nothing to misalign
    za = (a[keep] - a[keep].mean()) / sa
    zb = (b[keep] - b[keep].mean()) / sb
    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    grad = float(np.sqrt((gx[keep] ** 2 + gy[keep] ** 2).mean())) / sa
    return float(np.sqrt(((za - zb) ** 2).mean())) / max(grad, 1e-6)
