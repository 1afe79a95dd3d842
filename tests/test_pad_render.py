"""Rendering attack sequences: projection geometry, degradations, meta.json, and the folders replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk.camera.replay import ReplaySource
from kiosk.errors import DatasetError
from kiosk.pad.degradations import glare
from kiosk.pad.meta import ClipRange, SequenceMeta, read_meta, write_meta
from kiosk.pad.render import RenderSettings, lfw_people, render_clip, render_photo
from kiosk.pad.species import PHONE, pixel_grid, plan
from kiosk.pad.surfaces import Camera, Pose, Surface, _bent_maps, fold_homographies, homography, project, render
from tests.pad_fakes import face_photo, fake_detect

CAM = Camera()


def _flat_homography_residual(a: np.ndarray, b: np.ndarray) -> float:
    h, _ = cv2.findHomography(a, b, 0)
    q = cv2.perspectiveTransform(a.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((q - b) ** 2, axis=1))))


def test_flat_artefact_projects_through_one_homography() -> None:
    s = Surface(300, 400, 0.2)
    pose = Pose(0.4, -0.2, 0.1, 0.02, -0.01, 0.45)
    uv = np.random.default_rng(0).uniform(0, 300, (40, 2))
    direct = project(CAM, pose, s, uv)
    via_h = cv2.perspectiveTransform(uv.reshape(-1, 1, 2), homography(CAM, pose, s)).reshape(-1, 2)
    assert np.allclose(direct, via_h, atol=1e-6)


def test_two_views_of_a_flat_print_share_a_homography_but_a_bent_one_does_not() -> None:
    uv = np.random.default_rng(1).uniform(20, 280, (30, 2))
    a, b = Pose(-0.5, 0.1, 0.0, 0.0, 0.0, 0.4), Pose(0.5, -0.2, 0.05, 0.01, 0.0, 0.4)
    flat = Surface(300, 300, 0.2)
    bent = Surface(300, 300, 0.2, bend_m=0.12)
    assert _flat_homography_residual(project(CAM, a, flat, uv), project(CAM, b, flat, uv)) < 1e-3
    assert _flat_homography_residual(project(CAM, a, bent, uv), project(CAM, b, bent, uv)) > 1.0


def test_a_very_gently_bent_print_lands_where_a_flat_one_does() -> None:
    uv = np.array([[10.0, 10.0], [150.0, 150.0], [290.0, 40.0]])
    pose = Pose(0.3, 0.1, 0.0, 0.0, 0.0, 0.5)
    assert np.allclose(project(CAM, pose, Surface(300, 300, 0.2, 1e4), uv), project(CAM, pose, Surface(300, 300, 0.2), uv),
                       atol=0.05)


@pytest.mark.parametrize("bend", [0.15, -0.15])
def test_ray_casting_a_bent_print_inverts_its_projection(bend: float) -> None:
    s = Surface(300, 300, 0.2, bend)
    pose = Pose(0.35, -0.15, 0.05, 0.01, 0.0, 0.45)
    uv = np.array([[150.0, 150.0], [60.0, 200.0], [240.0, 90.0]])
    xy = project(CAM, pose, s, uv)
    mu, mv = _bent_maps(CAM, pose, s, (0, 0, CAM.width, CAM.height))
    for (u, v), (x, y) in zip(uv, xy):
        # the pixel nearest the projected point maps back to within a texture pixel or two
        got = np.array([mu[int(round(y)), int(round(x))], mv[int(round(y)), int(round(x))]])
        assert np.linalg.norm(got - (u, v)) < 2.5


@pytest.mark.parametrize("bend", [None, 0.15])
def test_rendered_artefact_covers_its_outline_and_nothing_else(bend: float | None) -> None:
    bg = np.zeros((CAM.height, CAM.width, 3), np.uint8)
    tex = np.full((200, 200, 3), (200, 100, 50), np.uint8)
    s = Surface(200, 200, 0.2, bend)
    pose = Pose(0.2, 0.1, 0.0, 0.0, 0.0, 0.5)
    out, cover = render(bg, tex, CAM, pose, s)
    cx, cy = project(CAM, pose, s, [[100.0, 100.0]])[0]
    assert tuple(out[int(cy), int(cx)]) == (200, 100, 50)
    assert cover[int(cy), int(cx)] == pytest.approx(1.0)
    assert cover[5, 5] == 0.0 and tuple(out[5, 5]) == (0, 0, 0)
    side = 0.2 * CAM.focal / 0.5
    assert 0.6 * side * side < cover.sum() < 1.2 * side * side


def test_each_half_of_a_folded_print_moves_by_its_own_homography() -> None:
    s = Surface(300, 300, 0.2, fold_m=0.01, fold_angle=np.radians(40))
    pose = Pose(0.3, -0.1, 0.05, 0.01, 0.0, 0.45)
    fold_u = 0.01 / s.m_per_px + 150
    rng = np.random.default_rng(2)
    (hl, col), (hr, _) = fold_homographies(CAM, pose, s)
    assert col == round(fold_u)
    for h, lo, hi in ((hl, 0.0, fold_u), (hr, fold_u, 300.0)):
        uv = np.column_stack([rng.uniform(lo, hi, 30), rng.uniform(0, 300, 30)])
        via_h = cv2.perspectiveTransform(uv.reshape(-1, 1, 2), h).reshape(-1, 2)
        assert np.allclose(project(CAM, pose, s, uv), via_h, atol=1e-6)
    # the fold comes towards the camera: the halves' edges lie further away than the crease
    z = s.object_points([[0.0, 150.0], [fold_u, 150.0], [300.0, 150.0]])[:, 2]
    assert z[1] == pytest.approx(0.0) and z[0] > 0.05 and z[2] > 0.05


def test_two_views_of_a_folded_print_share_no_homography() -> None:
    uv = np.random.default_rng(3).uniform(20, 280, (30, 2))
    a, b = Pose(-0.3, 0.1, 0.0, 0.0, 0.0, 0.4), Pose(0.3, -0.1, 0.05, 0.01, 0.0, 0.4)
    folded = Surface(300, 300, 0.2, fold_m=0.0, fold_angle=np.radians(35))
    assert _flat_homography_residual(project(CAM, a, folded, uv), project(CAM, b, folded, uv)) > 1.0
    with pytest.raises(ValueError, match="bent or folded"):
        Surface(300, 300, 0.2, bend_m=0.1, fold_m=0.0)


def test_rendered_folded_print_covers_both_halves_and_shades_them() -> None:
    bg = np.zeros((CAM.height, CAM.width, 3), np.uint8)
    tex = np.full((200, 200, 3), 200, np.uint8)
    s = Surface(200, 200, 0.2, fold_m=0.0, fold_angle=np.radians(40))
    pose = Pose(0.25, 0.0, 0.0, 0.0, 0.0, 0.5)
    out, cover = render(bg, tex, CAM, pose, s, shade=0.3)
    (lx, ly), (rx, ry) = project(CAM, pose, s, [[50.0, 100.0], [150.0, 100.0]])
    assert cover[int(ly), int(lx)] == pytest.approx(1.0) and cover[int(ry), int(rx)] == pytest.approx(1.0)
    assert cover[5, 5] == 0.0
    # turned, the two halves face the camera at different angles and catch different light
    assert abs(int(out[int(ly), int(lx), 0]) - int(out[int(ry), int(rx), 0])) > 10


def test_a_folded_print_shows_no_seam_along_its_crease() -> None:
    bg = np.zeros((CAM.height, CAM.width, 3), np.uint8)
    tex = np.full((200, 200, 3), 200, np.uint8)
    s = Surface(200, 200, 0.2, fold_m=0.003, fold_angle=np.radians(35))
    for yaw in (-0.3, 0.0, 0.3):
        pose = Pose(yaw, 0.1, 0.05, 0.0, 0.0, 0.5)
        out, cover = render(bg, tex, CAM, pose, s)
        fold_u = 0.003 / s.m_per_px + 100
        crease = project(CAM, pose, s, [[fold_u, v] for v in np.linspace(40, 160, 25)])
        for x, y in crease:
            assert cover[int(round(y)), int(round(x))] > 0.99
            assert abs(int(out[int(round(y)), int(round(x)), 0]) - 200) <= 2


def test_a_half_turned_past_edge_on_is_not_drawn() -> None:
    bg = np.zeros((CAM.height, CAM.width, 3), np.uint8)
    tex = np.zeros((200, 200, 3), np.uint8)
    tex[:, :100] = (220, 0, 0)  # left half red
    tex[:, 100:] = (0, 220, 0)  # right half green
    s = Surface(200, 200, 0.2, fold_m=0.0, fold_angle=np.radians(50))
    facing, away = render(bg, tex, CAM, Pose(0.0, 0.0, 0.0, 0.0, 0.0, 0.5), s)[0], \
        render(bg, tex, CAM, Pose(np.radians(60), 0.0, 0.0, 0.0, 0.0, 0.5), s)[0]
    assert (facing[..., 0] > 100).sum() > 1000 and (facing[..., 1] > 100).sum() > 1000
    # only the green half shows (and the one red texture column it carries over the crease)
    assert (away[..., 0] > 30).sum() < 0.05 * (facing[..., 0] > 100).sum() and (away[..., 1] > 100).sum() > 1000


def test_glare_stays_on_the_artefact() -> None:
    cover = np.zeros((48, 64), np.float32)
    cover[10:30, 10:30] = 1.0
    g = glare(cover, (20.0, 20.0), 8.0, 80.0)
    assert g[20, 20] >= 79 and g[40, 50] == 0 and g[:, 35:].max() == 0


def test_screen_pixel_grid_has_subpixel_stripes() -> None:
    grid = pixel_grid(np.full((4, 4, 3), 100, np.uint8))
    assert grid.shape == (12, 12, 3)
    assert grid[0, 0, 0] > grid[0, 0, 1] and grid[0, 1, 1] > grid[0, 1, 0]  # R column then G column
    assert grid[2, 0, 0] < grid[0, 0, 0]  # a darker gap row


def test_plans_stay_within_the_species_ranges() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        turned = plan("print_turned", (300, 300), 120.0, rng)
        assert 20 <= np.degrees(turned.motion.yaw_amp) <= 35 and np.degrees(turned.motion.pitch_amp) <= 35
        bent = plan("print_bent", (300, 300), 120.0, rng)
        assert bent.surface.bend_m is not None and abs(bent.surface.bend_m) <= 1.2 * bent.surface.width_m
        phone = plan("phone_photo", (900, 500), 300.0, rng)
        assert phone.surface.width_m == PHONE.width_m and phone.glare_strength >= 30
        folded = plan("print_folded", (300, 300), 120.0, rng)
        assert folded.surface.fold_m is not None and abs(folded.surface.fold_m) <= 0.004
        assert 20 <= np.degrees(folded.surface.fold_angle) <= 50 and 15 <= np.degrees(folded.motion.yaw_amp) <= 30
        still = plan("print_still", (300, 300), 120.0, rng)
        assert still.motion.yaw_amp == 0 and still.surface.bend_m is None
        poses = [still.motion.at(t / 15) for t in range(150)]
        assert max(abs(p.yaw - poses[0].yaw) for p in poses) < np.radians(3)  # held still: tremor only
    with pytest.raises(ValueError, match="unknown species"):
        plan("mask", (10, 10), 5.0, np.random.default_rng(0))


def test_a_harder_bend_is_drawn_from_its_own_range_and_nothing_else_changes() -> None:
    usual = plan("print_bent", (300, 300), 120.0, np.random.default_rng(4))
    hard = plan("print_bent", (300, 300), 120.0, np.random.default_rng(4), bend_widths=(0.3, 0.5))
    assert hard.surface.bend_m is not None and 0.3 <= abs(hard.surface.bend_m) / hard.surface.width_m <= 0.5
    assert usual.surface.bend_m is not None and 0.6 <= abs(usual.surface.bend_m) / usual.surface.width_m <= 1.2
    assert (hard.surface.width_m, hard.motion, hard.shade) == (usual.surface.width_m, usual.motion, usual.shade)


@pytest.mark.parametrize("species, default", [("print_turned", (20, 35)), ("phone_photo", (3, 25))])
def test_a_wider_turn_is_drawn_from_its_own_range(species: str, default: tuple[float, float]) -> None:
    for seed in range(5):
        usual = plan(species, (300, 300), 120.0, np.random.default_rng(seed))
        wide = plan(species, (300, 300), 120.0, np.random.default_rng(seed), turn_deg=(45, 60))
        assert default[0] <= np.degrees(usual.motion.yaw_amp) <= default[1]
        assert 45 <= np.degrees(wide.motion.yaw_amp) <= 60 and wide.motion.pitch_amp == usual.motion.pitch_amp


def _meta(**kw: object) -> SequenceMeta:
    base: dict[str, object] = {"species": "print_bent", "subject": "A_B", "source": "/data/A_B_0001.jpg", "seed": 3,
                               "fps": 15.0, "frames": 10, "enroll_photos": ["/data/A_B_0002.jpg"],
                               "params": {"bend_m": 0.2}}
    base.update(kw)
    return SequenceMeta(**base)  # type: ignore[arg-type]


def test_meta_round_trips(tmp_path: Path) -> None:
    m = _meta(enroll_photos=[], enroll_clip=ClipRange("/v/c.mp4", 4.0, 5.0), source_clip=ClipRange("/v/c.mp4", 0.0, 4.0),
              species="tablet_video")
    write_meta(tmp_path, m)
    assert read_meta(tmp_path) == m
    write_meta(tmp_path, _meta())
    assert read_meta(tmp_path) == _meta() and read_meta(tmp_path).attack


@pytest.mark.parametrize(("change", "message"), [
    ({"species": "mask"}, "species 'mask' is not one of"),
    ({"colour": "red"}, "unknown keys \\['colour'\\]"),
    ({"enroll_photos": []}, "cannot be enrolled"),
    ({"version": 9}, "re-render"),
])
def test_meta_rejects_bad_files_naming_the_problem(tmp_path: Path, change: dict[str, object], message: str) -> None:
    data = json.loads(_meta().to_json())
    data.update(change)
    (tmp_path / "meta.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message):
        read_meta(tmp_path)


def test_meta_missing_or_broken_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="kiosk pad render"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(DatasetError, match="not readable JSON"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"species": "print_still"}))
    with pytest.raises(DatasetError, match="missing keys"):
        read_meta(tmp_path)


@pytest.mark.parametrize("species", ["print_still", "print_turned", "print_bent", "print_folded", "phone_photo"])
def test_rendered_photo_sequence_replays_and_is_reproducible(tmp_path: Path, species: str) -> None:
    photo = face_photo(tmp_path / "a.jpg")
    other = face_photo(tmp_path / "b.jpg")
    settings = RenderSettings(frames=4)
    one = render_photo(species, photo, [other], "A", tmp_path / "one", 5, fake_detect, settings)
    two = render_photo(species, photo, [other], "A", tmp_path / "two", 5, fake_detect, settings)
    names = sorted(p.name for p in one.glob("*.jpg"))
    assert names == [f"frame_{i:05d}.jpg" for i in range(4)]
    assert all((one / n).read_bytes() == (two / n).read_bytes() for n in names)
    meta = read_meta(one)
    assert (meta.species, meta.subject, meta.source, meta.enroll_photos, meta.frames) == \
        (species, "A", str(photo), [str(other)], 4)
    src = ReplaySource(one, fps=15.0)
    src.open()
    frames = [src.read() for _ in range(5)]
    assert [f is not None and f.rgb.shape == (480, 640, 3) for f in frames] == [True] * 4 + [False]


def test_render_refuses_a_video_species_for_a_photo(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a photo species"):
        render_photo("tablet_video", tmp_path / "a.jpg", [], "A", tmp_path, 0, fake_detect)


def _clip(path: Path, seconds: float, fps: float = 25.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (160, 120))
    for k in range(int(seconds * fps)):
        img = np.full((120, 160, 3), 60, np.uint8)
        cv2.circle(img, (80 + k % 5, 60), 25, (150, 160, 170), -1)
        w.write(img)
    w.release()
    return path


def test_tablet_sequence_records_the_clip_split(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "c.mp4", 2.0)
    out = render_clip(clip, "c", tmp_path / "seq", 1, fake_detect, RenderSettings(frames=5))
    meta = read_meta(out)
    assert meta.species == "tablet_video" and meta.enroll_photos == []
    assert meta.source_clip == ClipRange(str(clip), 0.0, pytest.approx(1.6))  # type: ignore[arg-type]
    assert meta.enroll_clip is not None and meta.enroll_clip.start_s == pytest.approx(1.6)
    assert meta.enroll_clip.end_s == pytest.approx(2.0)
    assert len(list(out.glob("frame_*.jpg"))) == 5


def test_lfw_batch_takes_only_people_with_two_photos(tmp_path: Path) -> None:
    for name, n in [("Ann_A", 3), ("Bob_B", 1), ("Cy_C", 2), ("Di_D", 2)]:
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(n):
            face_photo(tmp_path / "images" / name / f"{name}_{i + 1:04d}.jpg", 40)
    people = lfw_people(tmp_path, 3, np.random.default_rng(0))
    assert sorted(n for n, _ in people) == ["Ann_A", "Cy_C", "Di_D"]
    with pytest.raises(DatasetError, match="3 people with two or more photos; 4 needed"):
        lfw_people(tmp_path, 4, np.random.default_rng(0))


def test_batch_keeps_complete_sequences_and_redoes_broken_ones(tmp_path: Path) -> None:
    from kiosk.pad.render import render_batch

    people = []
    for name in ("Ann_A", "Bob_B"):
        (tmp_path / name).mkdir()
        people.append((name, [face_photo(tmp_path / name / f"{name}_{i:04d}.jpg") for i in (1, 2)]))
    settings = RenderSettings(frames=3)
    first = render_batch(people, ["print_still"], 3, tmp_path / "out", 0, fake_detect, settings)
    assert [p.name for p in first] == ["000_Ann_A", "001_Bob_B", "002_Ann_A"]
    assert read_meta(first[2]).source.endswith("Ann_A_0002.jpg")  # the next photo of a person the second time
    (first[0] / "frame_00000.jpg").write_bytes(b"kept")
    (first[1] / "frame_00002.jpg").unlink()
    again = render_batch(people, ["print_still"], 3, tmp_path / "out", 0, fake_detect, settings)
    assert again == first
    assert (first[0] / "frame_00000.jpg").read_bytes() == b"kept"
    assert (first[1] / "frame_00002.jpg").is_file()


def test_an_interrupted_sequence_has_no_meta_and_is_no_sequence(tmp_path: Path) -> None:
    from kiosk.pad.render import write_sequence

    def frames() -> Any:
        yield np.zeros((64, 64, 3), np.uint8)
        raise KeyboardInterrupt

    seq = tmp_path / "seq"
    write_sequence(seq, iter([np.zeros((64, 64, 3), np.uint8)]), SequenceMeta("print_still", "A", "/x.jpg", 0, 15.0, 1))
    assert (seq / "meta.json").is_file()
    with pytest.raises(KeyboardInterrupt):
        write_sequence(seq, frames(), SequenceMeta("print_still", "A", "/x.jpg", 0, 15.0, 2))
    assert not (seq / "meta.json").exists()
