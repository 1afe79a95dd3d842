"""The flatness cue: rigid landmarks of a flat artefact move by one homography; a real head's show parallax.

See ``FlatnessCue``. The pure maths (homography, similarity, pose) is in ``geometry``, the eye band's
pixels in ``regions``; this keeps a track's frames and counts its evidence.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import geometry as g
from . import regions
from .background import usable_cores
from .cues import LivenessResult, Observation, Verdict
from .settings import LivenessSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairScore:
    """Two frames of rigid landmarks compared."""

    motion: float  # RMS after the best similarity, IOD: how much the shape changed
    residual: float  # RMS after the best homography, IOD: what a plane cannot explain
    dt: float

    @property
    def ratio(self) -> float:
        return self.residual / self.motion if self.motion > 0 else 0.0


def similarity_residuals(refs: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``geometry.similarity_residual`` of many reference sets (K, N, 2) against one (N, 2), vectorised.

    In complex form a 2-D similarity is b = s a + t with complex s, solved in closed form.
    """
    n = cur.shape[0]
    a = refs[..., 0] + 1j * refs[..., 1]
    b = cur[:, 0] + 1j * cur[:, 1]
    a0 = a - (a.sum(axis=1) / n)[:, None]
    b0 = b - b.sum() / n
    s = (np.conj(a0) * b0).sum(axis=1) / np.maximum((a0.real**2 + a0.imag**2).sum(axis=1), 1e-12)
    d = b0[None, :] - s[:, None] * a0
    rms = np.sqrt((d.real**2 + d.imag**2).sum(axis=1) / n)
    iod_cur = g.inter_ocular(cur)
    iod_refs = g.inter_oculars(refs)
    return np.asarray(rms / np.maximum(0.5 * (iod_refs + iod_cur), 1e-9))


@dataclass(frozen=True)
class Shape:
    """A rigid set as the similarity fit sees it: centred, in complex form, its squared norm and IOD."""

    points: npt.NDArray[np.float64]
    a0: npt.NDArray[np.complex128]
    norm: float
    iod: float


class History:
    """The smoothed rigid sets of one track, oldest first, with what the similarity fit needs of each.

    ``motions`` gives ``similarity_residuals`` of the sets within a window against a new one: each
    set's centred complex form, squared norm and IOD are kept from when it was added, in arrays
    that shift by one when full, so a frame costs one matrix-vector product rather than a fit per
    stored set.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self._times = np.zeros(size)
        self._sets: list[npt.NDArray[np.float64]] = []
        self._crops: list[regions.CropSource | None] = []  # what the face crop of each set's frame is cut from
        self._a0: npt.NDArray[np.complex128] | None = None  # (size, N), allocated at the first add
        self._norm = np.ones(size)
        self._iod = np.ones(size)

    def __len__(self) -> int:
        return self.count

    def time(self, i: int) -> float:
        return float(self._times[i])

    def points(self, i: int) -> npt.NDArray[np.float64]:
        return self._sets[i]

    def crop(self, i: int) -> regions.CropSource | None:
        return self._crops[i]

    @staticmethod
    def shape(points: npt.NDArray[np.float64]) -> Shape:
        """What ``motions`` and ``add`` need of a set, computed once for both."""
        a = points[:, 0] + 1j * points[:, 1]
        a0 = a - a.sum() / len(a)
        return Shape(points, a0, float((a0.real**2 + a0.imag**2).sum()), g.inter_ocular(points))

    def add(self, t: float, points: npt.NDArray[np.float64], crop: regions.CropSource | None = None,
            shape: Shape | None = None) -> None:
        """Keep a set (``shape``: its ``History.shape``, when the caller already has it)."""
        if shape is None or shape.points is not points:
            shape = self.shape(points)
        a0 = shape.a0
        if self._a0 is None or self._a0.shape[1] != len(a0):
            self._a0, self.count, self._sets, self._crops = np.zeros((self.size, len(a0)), np.complex128), 0, [], []
        if self.count == self.size:  # drop the oldest
            for arr in (self._times, self._a0, self._norm, self._iod):
                arr[:-1] = arr[1:]
            del self._sets[0]
            del self._crops[0]
            self.count -= 1
        i = self.count
        self._times[i] = t
        self._a0[i] = a0
        self._norm[i] = max(shape.norm, 1e-12)
        self._iod[i] = shape.iod
        self._sets.append(points)
        self._crops.append(crop)
        self.count += 1

    def motions(self, cur: npt.NDArray[np.float64] | Shape, now: float,
                window: float) -> tuple[int, npt.NDArray[np.float64]]:
        """The index of the oldest set added at most ``window`` before ``now`` (every later one is
        too: times only grow), and the similarity residual to ``cur`` of each set from there on.

        For a = a stored set and b = cur, both centred, in complex form: the best similarity
        leaves |b|^2 - |<a, b>|^2 / |a|^2 (least squares in closed form).
        """
        first = self.count
        while first > 0 and now - self._times[first - 1] <= window:
            first -= 1
        if first == self.count or self._a0 is None:
            return first, np.zeros(0)
        shape = cur if isinstance(cur, Shape) else self.shape(cur)
        b0 = shape.a0
        dot = np.conj(self._a0[first:self.count]) @ b0
        left = np.maximum(shape.norm - (dot.real**2 + dot.imag**2) / self._norm[first:self.count], 0.0)
        iods = self._iod[first:self.count]
        return first, np.asarray(np.sqrt(left / len(b0)) / np.maximum(0.5 * (iods + shape.iod), 1e-9))


@dataclass
class _Track:
    raw: deque[npt.NDArray[np.float64]]
    frames: History
    noise: deque[float]
    live: int = 0
    flat: int = 0
    planar: int = 0  # pairs with parallax in the landmarks whose eye band moved as one plane
    band: float | None = None  # the last eye-band misalignment measured (IOD)
    best: PairScore | None = None
    _floor: float | None = None  # cached median of ``noise``
    min_live: float | None = None  # the parallax threshold when not min_live_residual (a prompted turn was seen)

    def noise_floor(self) -> float | None:
        """The median landmark jitter of this track (IOD), once enough frames have measured it."""
        if len(self.noise) < FlatnessCue.noise_frames:
            return None
        if self._floor is None:
            self._floor = float(statistics.median(self.noise))  # a few dozen floats: cheaper than numpy's
        return self._floor

    def add_noise(self, jitter: float) -> None:
        self.noise.append(jitter)
        self._floor = None


class FlatnessCue:
    """Rigid landmarks of a flat artefact move by one homography; a real head's show parallax.

    Each frame's rigid landmarks (the mean of the last ``smooth_frames``
    frames, to bring FaceMesh's jitter down) are compared with the earlier
    frame within ``window_s`` whose shape differs most. That pair counts as
    parallax when its homography residual is at least ``min_live_residual``
    and at least ``live_ratio`` of the shape change, and as flat when the
    shape changed by ``min_motion`` or more and the residual is at most
    ``flat_ratio`` of it. Little motion is no evidence either way. A verdict
    needs ``evidence_frames`` frames of one kind.

    Parallax must also stand out from the track's own landmark noise: the
    residual has to be at least ``noise_factor`` times the track's jitter (the
    median homography residual between a frame and the best prediction of it
    on the way from its one neighbour to the other, ``geometry.between``, so
    that a head speeding up or slowing down between distant samples is not
    counted as jitter). A screen's moire, or a blurred print, makes FaceMesh jitter
    and jitter is not a plane's motion: without this it reads as depth.

    A frame whose landmarks jump from the previous frame's by more than a
    head can move in one frame (``max_jump`` homography residual) is a mesh
    failure: no evidence, and the smoothing starts afresh.

    Landmarks are FaceMesh's reading of the face, and FaceMesh reads depth into
    a print of the upper face worn over a real nose and mouth. So a pair with
    parallax counts as live only when the pixels agree (``kiosk.liveness.regions``):
    neither half of the eye band of the two frames (``Observation.extra["frame"]``,
    the RGB frame) may be aligned by one homography to within ``planar_band_max``.
    A pair whose band is that well aligned counts as planar evidence, and
    ``evidence_frames`` of them deny (``planar_eye_band``); each one also
    cancels ``planar_weight`` live pairs, so a track that showed a plane needs
    that many more. The weight is not one because the two readings are not
    equally easy to fake: an artefact reads as relief whenever the band
    cannot be aligned for another reason (a glare line, a fold inside a
    half, a sheet's edge), while real heads rarely read as a plane (of 109
    real pairs, 95 give a value and one sits at the bar: docs/liveness.md,
    "The eye band"). A pair without the frames,
    or whose alignment fails, is no evidence (never live).
    """

    name = "flatness"
    required = True
    smooth_frames = 3
    max_frames = 45
    noise_frames = 5  # jitter measurements before a pair may count as parallax
    noise_window = 30
    planar_weight = 2  # live pairs each planar pair cancels

    def __init__(self, settings: LivenessSettings) -> None:
        self.s = settings
        self._tracks: dict[int, _Track] = {}
        self._pool: ThreadPoolExecutor | None = None  # the eye band's second half, on a second core

    def _band_pool(self) -> ThreadPoolExecutor | None:
        """A worker for one half of the eye band while the caller aligns the other (the same value in
        about two thirds of the time); none on a single core. Started at the first pair that needs it."""
        if self._pool is None and usable_cores() > 1:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eye-band")
        return self._pool

    def reset(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def restart(self, track_id: int) -> None:
        """Start the track's evidence afresh (a prompted turn begins) but keep its planar pairs: a
        band that moved as a plane is evidence about the thing in front of the camera, not about the
        motion that showed it, and a prompt must not wipe it."""
        old = self._tracks.pop(track_id, None)
        if old is not None and old.planar:
            track = self._track(track_id)
            track.planar, track.band = old.planar, old.band

    def lower_threshold(self, track_id: int, min_live_residual: float) -> None:
        """From now on this track's parallax needs only ``min_live_residual`` (the judge saw the
        prompted turn); the noise floor and the ratio still apply."""
        self._track(track_id).min_live = min_live_residual

    def _track(self, track_id: int) -> _Track:
        if track_id not in self._tracks:
            self._tracks[track_id] = _Track(deque(maxlen=self.smooth_frames), History(self.max_frames),
                                            deque(maxlen=self.noise_window))
        return self._tracks[track_id]

    def observe(self, track_id: int, obs: Observation) -> LivenessResult:
        track = self._track(track_id)
        rig = obs.rigid
        if rig is None:  # no mesh, or a broken one: no evidence
            track.raw.clear()  # smoothing never spans a gap
            return self._result(track, None)
        raw = [*list(track.raw)[1 - self.smooth_frames:], rig]  # the smoothing window if this frame is kept
        # Up to three homography fits per frame, solved in one batch: the jump from the previous frame,
        # the jitter of the middle frame, and the pair of the smoothed frame with the most different one.
        src, dst = [], []
        if track.raw:
            src.append(track.raw[-1])
            dst.append(rig)
        cur: npt.NDArray[np.float64] | None = None
        shape: Shape | None = None
        pair_ref: tuple[float, float, int] | None = None  # (time, motion, index) of the chosen reference frame
        if len(raw) >= self.smooth_frames:
            before, middle, after = raw[-3], raw[-2], raw[-1]
            src.append(g.between(before, middle, after))
            dst.append(middle)
            cur = sum(raw[1:], raw[0]) / len(raw)
            shape = History.shape(cur)
            first, motions = track.frames.motions(shape, obs.now, self.s.window_s)
            if len(motions):
                k = first + int(np.argmax(motions))
                pair_ref = (track.frames.time(k), float(motions[k - first]), k)
                src.append(track.frames.points(k))
                dst.append(cur)
        residuals = list(g.homography_residuals(np.stack(src), np.stack(dst))) if src else []
        if track.raw and residuals.pop(0) > self.s.max_jump:
            logger.debug("track %d: landmarks jumped, frame ignored", track_id)
            track.raw.clear()
            jumped = self._result(track, None)
            return LivenessResult(jumped.verdict, jumped.reason, jumped.values | {"jumped": 1.0})
        track.raw.append(rig)
        if cur is None:
            return self._result(track, None)
        track.add_noise(residuals.pop(0))
        pair = None if pair_ref is None else PairScore(pair_ref[1], residuals.pop(0), obs.now - pair_ref[0])
        ref_crop = None if pair_ref is None else track.frames.crop(pair_ref[2])
        # The pixels only for a frame the history keeps (not the first two of a track, nor one that jumped).
        frame = obs.extra.get("frame")
        crop = (regions.crop_source(frame, obs.landmarks)
                if isinstance(frame, np.ndarray) and obs.landmarks is not None and self.s.planar_band_max > 0 else None)
        track.frames.add(obs.now, cur, crop, shape)
        if pair is not None:
            noise = track.noise_floor()
            floor = self.s.min_live_residual if track.min_live is None else track.min_live
            if (noise is not None and pair.residual >= max(floor, self.s.noise_factor * noise)
                    and self.s.live_ratio <= pair.ratio <= self.s.max_live_ratio):
                # Unprompted, a pair may count as live only further above the noise; it may always deny.
                may_live = track.min_live is not None or pair.residual >= self.s.passive_factor * noise
                self._parallax(track, ref_crop, crop, may_live)
            elif pair.motion >= self.s.min_motion and pair.ratio <= self.s.flat_ratio:
                track.flat += 1
            if track.best is None or pair.motion > track.best.motion:
                track.best = pair
        return self._result(track, pair)

    def _parallax(self, track: _Track, ref: regions.CropSource | None, cur: regions.CropSource | None,
                  may_live: bool = True) -> None:
        """A pair with parallax in the landmarks: live if the eye band's pixels show it too (and
        ``may_live``: it stands far enough above the track's noise for its kind), planar if they
        show a plane."""
        if self.s.planar_band_max <= 0:
            track.live += may_live
            return
        band = None if ref is None or cur is None else regions.misalignment(
            ref.crop(), cur.crop(), self.s.planar_band_max, pool=self._band_pool())
        if band is None:
            return  # no pixels, or no alignment: no evidence either way
        track.band = band
        if band < self.s.planar_band_max:
            track.planar += 1
        elif may_live:
            track.live += 1

    def _result(self, track: _Track, pair: PairScore | None) -> LivenessResult:
        values = {"live_frames": float(track.live), "flat_frames": float(track.flat)}
        if track.planar:
            values["planar_frames"] = float(track.planar)
        if track.band is not None:
            values["eye_band"] = round(track.band, 4)
        noise = track.noise_floor()
        if noise is not None:
            values["noise"] = round(noise, 4)
        if pair is not None:
            values |= {"motion": round(pair.motion, 4), "residual": round(pair.residual, 4),
                       "ratio": round(pair.ratio, 3), "pair_dt": round(pair.dt, 3)}
        if track.best is not None:
            values |= {"max_motion": round(track.best.motion, 4)}
        if track.flat >= self.s.evidence_frames:
            return LivenessResult(Verdict.FLAT, "flat_homography", values)
        if track.planar >= self.s.evidence_frames:
            return LivenessResult(Verdict.FLAT, "planar_eye_band", values)
        if track.live - self.planar_weight * track.planar >= self.s.evidence_frames:
            return LivenessResult(Verdict.LIVE, "parallax", values)
        return LivenessResult(Verdict.PENDING, "waiting_motion", values)
