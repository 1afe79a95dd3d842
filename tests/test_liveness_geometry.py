"""Pure maths of the liveness cues on synthetic landmark sets: no TFLite runtime."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kiosk.liveness import geometry as g
from kiosk.liveness.flatness import History, similarity_residuals
from kiosk.liveness.roi import MESH_INPUT, face_roi
from kiosk.vision.boxes import Face
from tests import liveness_synth as synth


def _homography_points(h: np.ndarray, n: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    src = np.random.default_rng(seed).uniform(0, 200, (n, 2))
    return src, g.apply_homography(h, src)


def test_homography_fit_recovers_a_known_homography() -> None:
    h = np.array([[1.1, 0.05, 3.0], [-0.02, 0.95, 1.0], [1e-3, -5e-4, 1.0]])
    src, dst = _homography_points(h)
    np.testing.assert_allclose(g.fit_homography(src, dst), h, atol=1e-9)
    assert g.homography_residual(src, dst) < 1e-9


def _reference_homography(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Textbook normalised DLT (Hartley and Zisserman, algorithm 4.2), one point at a time, by SVD."""
    def normaliser(p: np.ndarray) -> np.ndarray:
        c = p.mean(axis=0)
        s = math.sqrt(2.0) / np.mean(np.linalg.norm(p - c, axis=1))
        return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])

    ta, tb = normaliser(a), normaliser(b)
    rows = []
    for (x, y), (u, v) in zip(_mapped(ta, a), _mapped(tb, b)):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    h = np.linalg.inv(tb) @ np.linalg.svd(np.array(rows))[2][-1].reshape(3, 3) @ ta
    return h / h[2, 2]


def _mapped(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.column_stack([p, np.ones(len(p))]) @ h.T
    return q[:, :2] / q[:, 2:]


def test_batched_residuals_equal_one_fit_per_pair() -> None:
    """The cue solves a frame's fits in one batch: each must be what a fit of its own pair gives."""
    rng = np.random.default_rng(7)
    src = rng.uniform(0, 200, (4, len(g.RIGID), 2))
    dst = src + rng.normal(0, 3.0, src.shape)
    batched = g.homography_residuals(src, dst)
    one_by_one = [g.homography_residual(a, b) for a, b in zip(src, dst)]
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)
    for a, b in zip(src, dst):  # against a plain DLT by SVD, written out here: RMS after the fit, over the mean IOD
        d = _mapped(_reference_homography(a, b), a) - b
        iod = 0.5 * (g.inter_ocular(a) + g.inter_ocular(b))
        assert g.homography_residual(a, b) == pytest.approx(float(np.sqrt(np.mean((d**2).sum(axis=1)))) / iod,
                                                            rel=1e-9)
    np.testing.assert_allclose(g.inter_oculars(src), [g.inter_ocular(a) for a in src], rtol=1e-12)


def test_homography_fit_needs_four_matching_points() -> None:
    with pytest.raises(ValueError, match="N>=4"):
        g.fit_homography(np.zeros((3, 2)), np.zeros((3, 2)))


def test_similarity_fit_explains_rotation_scale_and_shift_exactly() -> None:
    src = np.random.default_rng(2).uniform(0, 100, (30, 2))
    a = math.radians(20)
    r = 1.3 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    dst = src @ r.T + [5.0, -7.0]
    assert g.similarity_residual(src, dst) < 1e-9
    np.testing.assert_allclose(g.fit_similarity(src, dst)[:, :2], r, atol=1e-9)


def test_affine_map_leaves_a_similarity_residual_but_no_affine_residual() -> None:
    src = np.random.default_rng(3).uniform(0, 100, (30, 2))
    dst = src @ np.array([[1.0, 0.0], [0.0, 0.8]]).T  # squashed vertically
    assert g.affine_residual(src, dst) < 1e-9
    assert g.similarity_residual(src, dst) > 0.01


def test_vectorised_similarity_residuals_match_the_scalar_version() -> None:
    frames = synth.sweep(False, 20, frames=6)
    refs = np.stack([g.rigid(f) for f in frames[:-1]])
    cur = g.rigid(frames[-1])
    expected = [g.similarity_residual(r, cur) for r in refs]
    np.testing.assert_allclose(similarity_residuals(refs, cur), expected, rtol=1e-9)


def test_history_motions_match_the_vectorised_fit_inside_the_window_and_after_it_fills() -> None:
    frames = [g.rigid(f) for f in synth.sweep(False, 25, frames=12)]
    history = History(size=5)
    for k, f in enumerate(frames[:-1]):
        history.add(k * 0.5, f)
    assert len(history) == 5  # the oldest sets were dropped
    now, window = 6.0, 2.0  # sets added at 4.0, 4.5, 5.0 (k = 8..10) are within the window
    first, motions = history.motions(frames[-1], now, window)
    assert history.time(first) == 4.0
    expected = similarity_residuals(np.stack(frames[8:11]), frames[-1])
    np.testing.assert_allclose(motions, expected, rtol=1e-9)
    np.testing.assert_array_equal(history.points(first), frames[8])
    assert history.motions(frames[-1], 60.0, window)[1].size == 0  # nothing recent enough


def test_a_shape_computed_once_gives_what_the_history_computes_itself() -> None:
    frames = [g.rigid(f) for f in synth.sweep(True, 25, frames=8)]
    own, shared = History(size=4), History(size=4)
    for k, f in enumerate(frames[:-1]):
        own.add(k * 0.1, f)
        shared.add(k * 0.1, f, shape=History.shape(f))
    cur = frames[-1]
    first, by_array = own.motions(cur, 0.8, 1.0)
    assert shared.motions(History.shape(cur), 0.8, 1.0) == (first, pytest.approx(by_array, abs=0))
    # a shape of another set is not taken for this one: the history computes its own
    shared.add(0.8, cur, shape=History.shape(frames[0]))
    own.add(0.8, cur)
    np.testing.assert_array_equal(shared.motions(frames[0], 0.9, 1.0)[1], own.motions(frames[0], 0.9, 1.0)[1])


def test_homography_residuals_match_the_pixel_space_fit() -> None:
    head = synth.model()
    src = np.stack([g.rigid(synth.pose(head, yaw=y)) for y in (0, 10, -15)])
    dst = np.stack([g.rigid(synth.pose(head, yaw=y, pitch=8)) for y in (20, -5, 5)])
    h = g.fit_homographies(src, dst)
    by_pixels = [np.sqrt(np.mean(np.sum((g.apply_homography(h[k], src[k]) - dst[k]) ** 2, axis=1)))
                 / (0.5 * (g.inter_ocular(src[k]) + g.inter_ocular(dst[k]))) for k in range(3)]
    np.testing.assert_allclose(g.homography_residuals(src, dst), by_pixels, rtol=1e-7)


def test_plane_moved_in_3d_is_explained_by_one_homography() -> None:
    flat = synth.model(flat=True)
    a = g.rigid(synth.pose(flat))
    b = g.rigid(synth.pose(flat, yaw=35, pitch=15, roll=5, shift=(0.5, -0.3, -2.0)))
    assert g.similarity_residual(a, b) > 0.05  # the picture's shape changed...
    assert g.homography_residual(a, b) < 1e-6  # ...as a plane does


def test_turned_head_is_not_explained_by_a_homography() -> None:
    head = synth.model()
    a, b = g.rigid(synth.pose(head)), g.rigid(synth.pose(head, yaw=25))
    assert g.homography_residual(a, b) > 0.075
    assert g.homography_residual(a, b) > 0.5 * g.similarity_residual(a, b)


def test_residuals_are_in_inter_ocular_distances_whatever_the_face_size() -> None:
    head = synth.model()
    a, b = g.rigid(synth.pose(head)), g.rigid(synth.pose(head, yaw=20))
    assert g.homography_residual(a * 3, b * 3) == pytest.approx(g.homography_residual(a, b), rel=1e-6)


def test_yaw_grows_when_the_subject_turns_left_and_a_flat_picture_barely_changes_it() -> None:
    head, flat = synth.model(), synth.model(flat=True)
    frontal = g.yaw_pitch(g.rigid(synth.pose(head)))[0]
    assert abs(frontal) < 0.01
    assert g.yaw_pitch(g.rigid(synth.pose(head, yaw=20)))[0] > 0.2
    assert g.yaw_pitch(g.rigid(synth.pose(head, yaw=-20)))[0] < -0.2
    assert abs(g.yaw_pitch(g.rigid(synth.pose(flat, yaw=30)))[0]) < 0.08


def test_inter_ocular_distance_of_the_synthetic_frontal_head() -> None:
    a = g.rigid(synth.pose(synth.model()))
    assert g.inter_ocular(a) == pytest.approx(synth.FOCAL / (synth.DISTANCE + 0.125), rel=0.02)


def _face(eye_a: tuple[float, float], eye_b: tuple[float, float], box: tuple[float, float, float, float]) -> Face:
    kps = np.zeros((6, 2))
    kps[0], kps[1] = eye_a, eye_b
    return Face(box, 0.9, kps)


def test_roi_is_a_square_one_and_a_half_times_the_box_centred_on_it() -> None:
    roi = face_roi(_face((120, 150), (180, 150), (100, 100, 200, 220)))
    assert (roi.cx, roi.cy) == (150.0, 160.0)
    assert roi.side == pytest.approx(180.0)
    assert roi.angle == pytest.approx(0.0)
    m = roi.to_frame_matrix()
    corners = np.array([[0, 0], [MESH_INPUT, 0], [MESH_INPUT, MESH_INPUT]], float) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(corners, [[60, 70], [240, 70], [240, 250]])


def test_roi_follows_the_eye_line_and_projects_the_input_centre_to_the_box_centre() -> None:
    roi = face_roi(_face((100, 100), (150, 150), (80, 80, 180, 180)))
    assert roi.angle == pytest.approx(math.pi / 4)
    pts = roi.project(np.array([[MESH_INPUT / 2, MESH_INPUT / 2, 10.0], [MESH_INPUT, MESH_INPUT / 2, 0.0]]))
    np.testing.assert_allclose(pts[0], [130.0, 130.0, 10.0 * 150 / MESH_INPUT], rtol=1e-5)
    # the input's x axis runs along the eye line, half the side from the centre
    np.testing.assert_allclose(pts[1, :2], [130 + 75 / math.sqrt(2), 130 + 75 / math.sqrt(2)], rtol=1e-5)


def test_a_turn_that_speeds_up_between_two_frames_is_not_read_as_jitter() -> None:
    """A head turning 0, 3 and 20 degrees at three samples (a slow loop, a turn starting): the plain
    mean of the neighbours puts the middle frame half-way and leaves the head's motion as a residual;
    the best point between them does not."""
    head = synth.model()
    before, middle, after = (g.rigid(synth.pose(head, yaw=y)) for y in (0.0, 3.0, 20.0))
    mean = g.homography_residual(0.5 * (before + after), middle)
    fitted = g.homography_residual(g.between(before, middle, after), middle)
    assert mean > 0.01  # two noise floors' worth at 12 times: would hide a prompted turn's parallax
    assert fitted < 0.25 * mean


def test_between_is_the_mean_for_a_steady_motion_and_stays_on_the_segment() -> None:
    head = synth.model()
    before, middle, after = (g.rigid(synth.pose(head, yaw=y, shift=(0.1 * y, 0.0, 0.0))) for y in (0.0, 5.0, 10.0))
    steady = g.between(before, middle, after)
    assert np.abs(steady - 0.5 * (before + after)).max() < 0.02 * g.inter_ocular(middle)
    # a middle frame beyond the later one is predicted by the later one, not extrapolated
    np.testing.assert_allclose(g.between(before, after + (after - before), after), after)
    np.testing.assert_allclose(g.between(before, before - (after - before), after), before)
    # neighbours that do not differ: their mean
    np.testing.assert_allclose(g.between(before, middle, before), before)


def test_jitter_of_a_still_face_is_about_the_same_either_way() -> None:
    """Landmark noise on a still face: fitting one more number (t) takes out little of it."""
    head = g.rigid(synth.pose(synth.model()))
    rng = np.random.default_rng(3)
    ratios = []
    for _ in range(200):
        b, m, a = (head + rng.normal(0.0, 0.5, head.shape) for _ in range(3))
        ratios.append(g.homography_residual(g.between(b, m, a), m) / g.homography_residual(0.5 * (b + a), m))
    assert 0.95 < float(np.median(ratios)) <= 1.01
