"""The demo's synthetic head turn (FaceMesh-depth warp) and walk-ups: geometry on synthetic points,
and the demo end to end: enrolled visitors let in through the liveness path, the printed photo denied."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.demo.headturn import HeadTurner, triangulate, turn, warp
from kiosk.demo.sequences import background, walk_up


def _homography_residual(a: np.ndarray, b: np.ndarray) -> float:
    h, _ = cv2.findHomography(a, b, 0)
    q = cv2.perspectiveTransform(a.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((q - b) ** 2, axis=1))))


def test_delaunay_triangles_tile_the_convex_hull() -> None:
    xs, ys = np.meshgrid(np.linspace(10, 90, 5), np.linspace(10, 70, 4))
    pts = np.column_stack([xs.ravel(), ys.ravel()]) + np.random.default_rng(0).uniform(-2, 2, (20, 2))
    tris = triangulate(pts, (100, 80))
    assert tris.min() >= 0 and tris.max() < len(pts) and len(np.unique(tris)) == len(pts)
    area = sum(abs(float((pts[b] - pts[a])[0] * (pts[c] - pts[a])[1] - (pts[b] - pts[a])[1] * (pts[c] - pts[a])[0])) / 2
               for a, b, c in tris)
    assert area == pytest.approx(cv2.contourArea(cv2.convexHull(pts.astype(np.float32))), rel=1e-3)


def test_a_turned_flat_face_stays_a_homography_of_itself_and_a_deep_one_does_not() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (40, 2))
    flat = np.column_stack([xy, np.full(40, 5.0)])
    deep = np.column_stack([xy, 40.0 * np.exp(-((xy[:, 0] - 50) ** 2 + (xy[:, 1] - 50) ** 2) / 800.0)])
    assert np.allclose(turn(flat, 0.0)[:, :2], xy)
    assert _homography_residual(xy, turn(flat, 0.4)[:, :2]) < 1e-6
    assert _homography_residual(xy, turn(deep, 0.4)[:, :2]) > 1.0


def test_warp_with_unmoved_points_is_the_identity_and_moves_a_dot_with_its_vertex() -> None:
    img = np.zeros((80, 100, 3), np.uint8)
    pts = np.array([[0, 0], [99, 0], [0, 79], [99, 79], [50, 40]], np.float64)
    tris = triangulate(pts, (100, 80))
    depth = np.zeros(len(pts))
    img[38:43, 48:53] = 255
    assert np.array_equal(warp(img, pts, pts, tris, depth), img)
    moved = pts.copy()
    moved[4] = [60, 40]
    out = warp(img, pts, moved, tris, depth)
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert xs.mean() == pytest.approx(60, abs=1.5) and ys.mean() == pytest.approx(40, abs=1.5)


def test_head_turner_moves_the_nose_most_and_leaves_the_border() -> None:
    img = (np.random.default_rng(2).uniform(0, 255, (200, 200, 3))).astype(np.uint8)
    a = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    r = np.linspace(5, 50, 60)
    lm = np.column_stack([100 + r * np.cos(a * 3), 100 + r * np.sin(a * 3), -30 * np.cos(r / 50 * np.pi / 2)])
    turner = HeadTurner(img, lm)
    assert turner(0.0) is img
    out = turner(0.35)
    assert out.shape == img.shape and not np.array_equal(out, img)
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):  # the frame border stays put
        assert np.abs(out[edge].astype(int) - img[edge]).mean() < 1.0
    moved = np.abs(turn(turner.moving, 0.35)[:, 0] - turner.moving[:, 0])
    assert int(np.argmax(moved[:60])) == int(np.argmin(lm[:, 2]))  # the nearest point (nose tip) moves most


def test_walk_up_takes_a_turning_head_and_holds_at_the_door() -> None:
    rng = np.random.default_rng(3)
    bg = background(160, 120, rng)
    seen: list[int] = []

    def cut(k: int) -> np.ndarray:
        seen.append(k)
        return np.full((40, 40, 3), k, np.uint8)

    frames = walk_up(cut, bg, 6, rng, hold=4)
    assert len(frames) == 10 and seen == list(range(10))
    assert all(f.shape == (120, 160, 3) for f in frames)


def test_demo_lets_the_enrolled_in_through_liveness_and_denies_the_printed_photo(tmp_path: Path, models: Path,
                                                                                 data: Path) -> None:
    from kiosk.demo.run import run_demo

    s = run_demo(tmp_path, video=False)
    per = s["per_walk_up"]
    assert per["ben_afflek"]["granted"] and per["madonna"]["granted"]
    assert per["ben_afflek"]["synthetic"] and per["madonna"]["synthetic"]
    assert not per["jerry_seinfeld"]["granted"] and not per["mindy_kaling"]["granted"]
    attack = per["print of ben_afflek"]
    assert attack["kind"] == "attack" and not attack["granted"] and attack["reasons"] == ["presentation_attack"]
    granted = [d for d in s["decisions"] if d["granted"]]
    assert [d["liveness"] for d in granted] == ["live", "live"]
    assert s["relay_transitions"] == [False, True, False, True, False]  # two grants, never for the print
    assert s["loop"]["presentation_attacks"] == 1
    events = [json.loads(line) for line in (tmp_path / "demo_events.jsonl").read_text().splitlines()]
    denial = [e for e in events if e["type"] == "access_denied" and e["reason"] == "presentation_attack"]
    assert len(denial) == 1 and denial[0]["liveness_reason"] in ("challenge_timeout", "flat_homography")
    assert "motion" in denial[0]  # the cue values travel with the event
