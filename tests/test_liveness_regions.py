"""The eye-band check: pixels of a plane are aligned by one homography, pixels with relief are not."""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from kiosk.liveness import regions
from kiosk.liveness.cues import Observation, Verdict
from kiosk.liveness.flatness import FlatnessCue
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from tests import liveness_pixels as px
from tests import liveness_synth as synth
from tests.clock import FakeClock
from tests.liveness_judging import DT, RecordingPrompter

W, H = px.W, px.H
BAND_MAX = LivenessSettings().planar_band_max


def _homography(yaw_deg: float) -> np.ndarray:
    """The image motion of a plane facing the camera turned by ``yaw_deg`` about a vertical line."""
    f, d = 600.0, 600.0
    y = math.radians(yaw_deg)
    k = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    r = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    n, t = np.array([0, 0, 1.0]), np.zeros(3)
    return np.asarray(k @ (r - np.outer(t, n) / d) @ np.linalg.inv(k))


def _relief(img: np.ndarray, pts: np.ndarray, amount_px: float, sides: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """Parallax that no homography makes: the eye sockets sit deeper than the brows and the nasion, so
    under a turn they slide sideways against them (``amount_px`` at each socket's centre; ``sides``: the
    image-left socket 0, the image-right one 1)."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    bump = np.zeros((H, W), np.float32)
    for a, b in [((33, 133), (362, 263))[k] for k in sides]:
        cx, cy = 0.5 * (pts[a, 0] + pts[b, 0]), 0.5 * (pts[a, 1] + pts[b, 1])
        bump += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 15.0**2)).astype(np.float32)
    return np.asarray(cv2.remap(img, xs - amount_px * bump, ys, cv2.INTER_LINEAR), np.uint8)


def test_a_plane_turned_in_3d_is_aligned_by_one_homography() -> None:
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, pts))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m < BAND_MAX / 3


def _shine(img: np.ndarray, centre: tuple[float, float], sigma: float, peak: float) -> np.ndarray:
    """``img`` with a lamp's reflection added: a Gaussian highlight ``peak`` grey levels high."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    spot = peak * np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    return np.asarray(np.clip(img.astype(np.float32) + spot[..., None], 0, 255), np.uint8)


def test_a_glossy_plane_whose_reflection_moves_still_reads_as_a_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Glossy paper turned under a lamp: the print moves by one homography, its reflection travels across
    it (0.75 IOD here). Shading is not relief: without taking it out first, the same pair reads as relief."""
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    before = _shine(img, (320.0, 215.0), 40.0, 80.0)
    after = _shine(moved, (380.0, 215.0), 40.0, 80.0)
    a, b = regions.face_crop(before, pts), regions.face_crop(after, px.warp_points(h, pts))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m < BAND_MAX
    monkeypatch.setattr(regions, "SHADING_SIGMA", 0.0)
    kept = regions.misalignment(a, b)
    assert kept is None or kept > BAND_MAX


def test_relief_in_the_eye_band_is_not_aligned_by_one_homography() -> None:
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(_relief(img, pts, 20.0), h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, pts))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m > BAND_MAX


def test_a_sheet_over_one_side_reads_as_a_plane() -> None:
    """Relief on one side only (a real eye beside a sheet's edge): the side the sheet covers decides."""
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(_relief(img, pts, 20.0, sides=(0,)), h, (W, H), flags=cv2.INTER_LINEAR),
                       np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, pts))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m < BAND_MAX


def test_a_print_folded_at_the_nose_reads_as_a_plane_on_each_side() -> None:
    """Two planes that meet at the face's midline: no single homography aligns the band, one per side does."""
    img, pts = px.texture(), px.landmarks()
    cx = float(pts[168, 0])
    # The right side turned about the fold (identity on x = cx): one homography over the whole band
    # leaves about 0.025 IOD of it, above the bar.
    fold = np.array([[1.3, 0.0, -0.3 * cx], [0.25, 1.0, -0.25 * cx], [0.0, 0.0, 1.0]])
    xs = np.arange(W, dtype=np.float32)[None, :].repeat(H, axis=0)
    folded = np.where((xs >= cx)[..., None], cv2.warpPerspective(img, fold, (W, H), flags=cv2.INTER_LINEAR), img)
    marks = pts.copy()
    right = pts[:, 0] >= cx
    marks[right] = px.warp_points(fold, pts[right])
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(np.asarray(folded, np.uint8), h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, marks))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m < BAND_MAX / 2


def test_camera_noise_on_a_plane_stays_under_the_bar() -> None:
    img, pts = px.texture(), px.landmarks()
    h = _homography(12.0)
    rng = np.random.default_rng(0)
    moved = cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR).astype(np.float32)
    noisy = [np.clip(x + rng.normal(0, 5.0, x.shape), 0, 255).astype(np.uint8) for x in (img.astype(np.float32), moved)]
    a, b = regions.face_crop(noisy[0], pts), regions.face_crop(noisy[1], px.warp_points(h, pts))
    assert a is not None and b is not None
    m = regions.misalignment(a, b)
    assert m is not None and m < BAND_MAX


def test_no_eyes_no_crop_and_a_tiny_band_no_verdict() -> None:
    pts = px.landmarks()
    same = pts.copy()
    same[[33, 133, 362, 263], :2] = 100.0
    assert regions.face_crop(px.texture(), same) is None
    crop = regions.face_crop(px.texture(), pts)
    assert crop is not None
    squashed = regions.FaceCrop(crop.gray, crop.anchors, np.full_like(crop.oval, 64.0))  # an oval of no area
    assert regions.misalignment(squashed, squashed) is None


def _judge_pixels(frames: list[tuple[np.ndarray, np.ndarray]], band_max: float) -> list[Verdict]:
    clock = FakeClock()
    judge = LivenessJudge(LivenessSettings(mode="passive", planar_band_max=band_max), clock, RecordingPrompter(),
                          random.Random(0))
    out = []
    for rgb, lm in frames:
        out.append(judge.observe(1, lm, frame=rgb).verdict)
        clock.advance(DT)
    return out


def _sheet_on_a_turning_head(n: int = 75) -> list[tuple[np.ndarray, np.ndarray]]:
    """Landmarks of a real head turning (parallax), pixels of a plane that follows its eyes and brows:
    what FaceMesh reports for a print of the upper face worn over a real face."""
    img, base = px.texture(), px.landmarks()
    head = synth.model(False)
    ref = synth.pose(head)
    rng = np.random.default_rng(4)
    frames = []
    for k in range(n):
        yaw = 25.0 * math.sin(2 * math.pi * k / 30)  # turning left and right, 2 s a cycle
        lm = synth.pose(head, yaw, noise_px=0.3, rng=rng)
        sel = list(regions.ANCHORS)
        h, _ = cv2.findHomography(ref[sel, :2], lm[sel, :2], 0)
        rgb = np.asarray(cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
        # the oval moves with the sheet too; the rigid points are the head's
        full = px.warp_points(h, base)
        full[list(synth.HEAD)] = lm[list(synth.HEAD)]
        frames.append((rgb, full))
    return frames


def test_a_sheet_over_a_turning_head_is_denied_by_its_pixels_not_its_landmarks() -> None:
    frames = _sheet_on_a_turning_head()
    guarded = _judge_pixels(frames, BAND_MAX)
    assert Verdict.FLAT in guarded and Verdict.LIVE not in guarded
    blind = _judge_pixels(frames, 0.0)  # without the check the landmarks' parallax makes it live
    assert Verdict.LIVE in blind


def test_a_bar_just_above_zero_lets_the_sheet_in_and_is_warned_about_at_start() -> None:
    """Only 0 turned the check off by name; 0.001 validates and is as blind, so any value under the bar
    the sheets were measured against is warned about."""
    assert Verdict.LIVE in _judge_pixels(_sheet_on_a_turning_head(), 0.001)
    [warning] = LivenessSettings(planar_band_max=0.001).weakened()
    assert warning.startswith(f"liveness.planar_band_max = 0.001 is under the {BAND_MAX:g}")
    assert LivenessSettings(planar_band_max=0.0).weakened() == [
        "liveness.planar_band_max = 0: a print of the upper face worn over a real face can pass as live"]


def test_crops_are_cut_only_for_the_frames_of_a_pair_with_parallax(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sampled frame keeps the pixels under its crop; the crop (a warp) is cut only for a pair the
    landmarks count as parallax."""
    cut: list[int] = []
    real_warp = cv2.warpAffine

    def counting(*args: object, **kwargs: object) -> object:
        cut.append(id(args[0]))
        return real_warp(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(regions.cv2, "warpAffine", counting)
    img = px.texture()
    still = [(img, px.landmarks())] * 40  # a print held still: no parallax pair, no crop
    assert set(_judge_pixels(still, BAND_MAX)) == {Verdict.PENDING}
    assert cut == []
    frames = _sheet_on_a_turning_head()
    verdicts = _judge_pixels(frames, BAND_MAX)
    assert Verdict.FLAT in verdicts  # the sheet is still denied by its pixels
    assert 0 < len(set(cut)) < len(frames)  # some frames' crops, never every frame's


def test_without_pixels_landmark_parallax_is_no_evidence() -> None:
    head = synth.model(False)
    rng = np.random.default_rng(4)
    clock = FakeClock()
    judge = LivenessJudge(LivenessSettings(mode="passive"), clock, RecordingPrompter(), random.Random(0))
    results = []
    for k in range(75):
        results.append(judge.observe(1, synth.pose(head, 25.0 * math.sin(2 * math.pi * k / 30), noise_px=0.3, rng=rng)))
        clock.advance(DT)
    assert {r.verdict for r in results} == {Verdict.PENDING}  # fail closed: never live without the frames


def test_only_a_warp_that_can_view_one_surface_is_plausible() -> None:
    band = np.zeros((64, 128), np.uint8)
    band[20:44, 10:60] = 1
    assert regions.plausible(np.eye(3), band)
    assert regions.plausible(_homography(30.0), band)  # a plane turned by 30 degrees
    through_horizon = np.eye(3)
    through_horizon[2, 0] = -1.0 / 30  # w = 1 - x/30 < 0 over most of the band
    assert not regions.plausible(through_horizon, band)
    smeared = np.diag([4.0, 4.0, 1.0])  # the band grown sixteenfold
    assert not regions.plausible(smeared, band)
    assert not regions.plausible(np.diag([0.25, 0.25, 1.0]), band)
    assert not regions.plausible(np.eye(3), np.zeros_like(band))


def test_planar_pairs_survive_the_prompt_and_cancel_live_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """A track whose eye band moved as a plane needs two live pairs more for each such pair, and a
    prompted turn, which starts the evidence afresh, does not wipe them."""
    readings = iter([0.005] * 3 + [0.05] * 200)  # three planar pairs, then relief from then on
    monkeypatch.setattr(regions, "misalignment", lambda a, b, plane_below=0.0, pool=None: next(readings))
    head = synth.model(False)
    rng = np.random.default_rng(4)
    settings = LivenessSettings(mode="passive", evidence_frames=4)
    cue = FlatnessCue(settings)
    img, base = px.texture(), px.landmarks()
    seen: list[tuple[float, float, Verdict]] = []
    for k in range(60):
        lm = synth.pose(head, 25.0 * math.sin(2 * math.pi * k / 30), noise_px=0.3, rng=rng)
        full = base.copy()
        full[list(synth.HEAD)] = lm[list(synth.HEAD)]
        r = cue.observe(1, Observation(k * DT, full, {"frame": img}))
        seen.append((r.values["live_frames"], r.values.get("planar_frames", 0.0), r.verdict))
        if r.values.get("planar_frames", 0.0) == 3:
            cue.restart(1)  # the judge prompts a turn
            break
    assert seen[-1][1] == 3 and seen[-1][2] is Verdict.PENDING
    verdicts = []
    for k in range(60, 140):
        lm = synth.pose(head, 25.0 * math.sin(2 * math.pi * k / 30), noise_px=0.3, rng=rng)
        full = base.copy()
        full[list(synth.HEAD)] = lm[list(synth.HEAD)]
        r = cue.observe(1, Observation(k * DT, full, {"frame": img}))
        verdicts.append((r.values["live_frames"], r.values.get("planar_frames", 0.0), r.verdict))
    assert all(p == 3 for _, p, _ in verdicts)  # the planar pairs stayed through the restart
    first_live = next(i for i, (_, _, v) in enumerate(verdicts) if v is Verdict.LIVE)
    assert verdicts[first_live][0] == 4 + 2 * 3  # evidence_frames live pairs, and two more for each planar pair
    assert all(v is Verdict.PENDING for _, _, v in verdicts[:first_live])
    cue.reset(1)  # the track left: nothing is kept
    assert cue.observe(1, Observation(0.0, None)).values.get("planar_frames") is None


def test_a_plane_whose_landmarks_read_depth_is_still_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """FaceMesh reads depth into a print: its midline landmarks stand out of the plane the pixels lie
    on. ECC started only from the landmarks' homography then stops far short of that plane, or does
    not converge at all; started also from the band's tracked corners it finds it."""
    img, pts = px.texture(), px.landmarks()
    for yaw, dx in ((25.0, 32.0), (20.0, 48.0)):  # the midline read 0.4-0.6 IOD out of the plane
        h = _homography(yaw)
        moved = np.asarray(cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
        marks = px.warp_points(h, pts)
        marks[[151, 9, 8, 168, 6], 0] += dx
        marks[[116, 345], 1] -= dx / 2
        a, b = regions.face_crop(img, pts), regions.face_crop(moved, marks)
        assert a is not None and b is not None
        found = regions.misalignment(a, b, BAND_MAX)
        assert found is not None and found < BAND_MAX / 1.5
        with monkeypatch.context() as m:
            m.setattr(regions, "_tracked_start", lambda *args: None)
            landmarks_only = regions.misalignment(a, b, BAND_MAX)
        assert landmarks_only is None or landmarks_only > 2 * BAND_MAX


@pytest.mark.parametrize(("first", "second", "counted"), [
    (0.030, 0.010, 0.010),  # both starts align: the better fit counts
    (0.030, None, 0.030),
    (None, 0.010, 0.010),  # only the tracked start aligns, and finds a plane: counted
    (None, 0.030, None),  # only the tracked start aligns, and reads relief: no evidence
    (None, None, None),
])
def test_the_tracked_start_may_find_a_plane_but_never_add_relief(
        monkeypatch: pytest.MonkeyPatch, first: float | None, second: float | None, counted: float | None) -> None:
    landmarks_start = np.eye(3, dtype=np.float32)
    tracked_start = np.diag([1.01, 1.0, 1.0]).astype(np.float32)
    monkeypatch.setattr(regions, "_residual_after_ecc",
                        lambda a, b, ba, bb, start: first if start is landmarks_start else second)
    band = np.ones((40, 128), np.uint8)
    img = np.zeros((40, 128), np.float32)
    assert regions._aligned(img, img, band, band, landmarks_start, tracked_start, BAND_MAX) == counted
    if second is None:  # no corners tracked: the landmarks' start alone
        assert regions._aligned(img, img, band, band, landmarks_start, None, BAND_MAX) == first


@pytest.mark.parametrize(("kept", "bare", "counted", "reads"), [
    (0.010, 0.030, 0.010, 1),  # a plane as it is: not read again
    (0.030, 0.010, 0.010, 2),  # relief with the shading, a plane without it: the plane counts
    (0.030, 0.020, 0.020, 2),  # the lesser relief counts
    (0.030, None, 0.030, 2),
    (None, 0.010, 0.010, 2),  # only the reading without shading aligns, and finds a plane: counted
    (None, 0.030, None, 2),  # only the reading without shading aligns, and reads relief: no evidence
])
def test_the_reading_without_shading_may_find_a_plane_but_never_add_relief(
        monkeypatch: pytest.MonkeyPatch, kept: float | None, bare: float | None, counted: float | None,
        reads: int) -> None:
    img, flat = np.full((40, 128), 100.0, np.float32), np.zeros((40, 128), np.float32)
    calls: list[bool] = []
    tracked = np.diag([1.01, 1.0, 1.0]).astype(np.float32)
    tracks: list[bool] = []

    def track(a: np.ndarray, *args: object) -> np.ndarray:
        tracks.append(a is img)
        return tracked

    def aligned(a: np.ndarray, b: np.ndarray, ba: object, bb: object, start: object, t: object,
                plane_below: float) -> float | None:
        assert t is tracked  # the corners are tracked once, on the images as they are, for both readings
        calls.append(a is flat)
        return bare if a is flat else kept

    monkeypatch.setattr(regions, "_tracked_start", track)
    monkeypatch.setattr(regions, "_aligned", aligned)
    band = np.ones((40, 128), np.uint8)
    assert regions._either(img, img, flat, flat, band, band, np.eye(3, dtype=np.float32), BAND_MAX) == counted
    assert len(calls) == reads and calls[0] is False and tracks == [True]


def test_a_band_without_the_eyes_keeps_the_rest_and_misalignment_reads_the_band_it_is_given() -> None:
    """``benchmarks.eye_band --without-eyes``: the band less an ellipse around each eye, nothing added; a
    plane still reads as a plane on it, and ``misalignment`` reads the band it is given."""
    from benchmarks.eye_band import band_without_eyes

    img, pts = px.texture(), px.landmarks()
    crop = regions.face_crop(img, pts)
    assert crop is not None
    full, holed = regions.eye_band(crop), band_without_eyes(1.6)(crop)
    assert not (holed & ~full).any() and 0 < holed.sum() < full.sum()
    for a, b in ((0, 1), (2, 3)):  # nothing left at either eye's centre
        x, y = np.round((crop.anchors[a] + crop.anchors[b]) / 2).astype(int)
        assert full[y, x] and not holed[y, x]
    assert holed[int(regions.EYE_Y) - 18, regions.CROP // 2]  # the brows' middle stays
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(img, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    later = regions.face_crop(moved, px.warp_points(h, pts))
    assert later is not None
    assert regions.misalignment(crop, later, band=lambda c: np.zeros_like(regions.eye_band(c))) is None
    m = regions.misalignment(crop, later, band=band_without_eyes(1.6))
    assert m is not None and m < BAND_MAX / 3


class _CountingPool(ThreadPoolExecutor):
    """A real worker thread that counts what it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="eye-band-test")
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("relief_sides", [(), (0,), (1,), (0, 1)])
def test_the_two_halves_aligned_at_once_give_the_value_of_one_after_the_other(relief_sides: tuple[int, ...]) -> None:
    """The flatness cue aligns the band's image-left half on a worker thread while it aligns the other:
    the halves share nothing, so a plane, relief on either side and on both read exactly as in turn."""
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    shown = _relief(img, pts, 20.0, sides=relief_sides) if relief_sides else img
    moved = np.asarray(cv2.warpPerspective(shown, h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, pts))
    assert a is not None and b is not None
    with _CountingPool() as pool:
        at_once = regions.misalignment(a, b, BAND_MAX, pool=pool)
        assert pool.submitted == 1
    in_turn = regions.misalignment(a, b, BAND_MAX)
    assert in_turn is not None
    assert at_once == in_turn


def test_a_pool_that_cannot_take_the_half_leaves_the_halves_in_turn() -> None:
    """A worker that cannot start (the service's task limit reached, or the pool shut down) costs time,
    never the reading: the caller aligns both halves."""
    img, pts = px.texture(), px.landmarks()
    h = _homography(15.0)
    moved = np.asarray(cv2.warpPerspective(_relief(img, pts, 20.0), h, (W, H), flags=cv2.INTER_LINEAR), np.uint8)
    a, b = regions.face_crop(img, pts), regions.face_crop(moved, px.warp_points(h, pts))
    assert a is not None and b is not None
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    m = regions.misalignment(a, b, BAND_MAX, pool=pool)
    assert m is not None and m > BAND_MAX
    assert m == regions.misalignment(a, b, BAND_MAX)
