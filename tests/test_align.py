import math

import numpy as np
import pytest

from kiosk.vision.align import AlignSpec, crop_face, crop_transform
from kiosk.vision.boxes import Face


def _face(box: tuple[float, float, float, float], eyes: tuple[tuple[float, float], tuple[float, float]]) -> Face:
    kps = np.zeros((6, 2))
    kps[0], kps[1] = eyes
    return Face(box, 0.9, kps)


def _apply(m: np.ndarray, xy: tuple[float, float]) -> np.ndarray:
    return m @ np.array([xy[0], xy[1], 1.0])


def test_box_centre_maps_to_crop_centre_and_box_fills_the_crop_at_scale_one() -> None:
    face = _face((100, 50, 200, 150), ((130, 90), (170, 90)))
    m = crop_transform(face, AlignSpec(scale=1.0, shift_y=0.0, rotate=False))
    assert _apply(m, (150, 100)) == pytest.approx([80, 80])
    assert _apply(m, (100, 50)) == pytest.approx([0, 0])
    assert _apply(m, (200, 150)) == pytest.approx([160, 160])


def test_shift_moves_the_crop_down_by_a_fraction_of_the_box() -> None:
    face = _face((100, 50, 200, 150), ((130, 90), (170, 90)))
    m = crop_transform(face, AlignSpec(scale=1.0, shift_y=0.1, rotate=False))
    assert _apply(m, (150, 110)) == pytest.approx([80, 80])


def test_rotation_levels_tilted_eyes() -> None:
    angle = math.radians(20)
    c = np.array([150.0, 100.0])
    d = 20 * np.array([math.cos(angle), math.sin(angle)])
    face = _face((100, 50, 200, 150), (tuple(c - d), tuple(c + d)))
    m = crop_transform(face, AlignSpec(scale=1.0, rotate=True))
    right, left = _apply(m, tuple(c - d)), _apply(m, tuple(c + d))
    assert right[1] == pytest.approx(left[1], abs=1e-6)
    assert left[0] > right[0]


def test_crop_of_a_large_frame_matches_the_crop_of_its_pixels() -> None:
    # a smooth gradient: the anti-aliased path must sample the same place
    yy, xx = np.mgrid[0:2000, 0:2000]
    rgb = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    rgb[:] = np.stack([xx // 8, yy // 8, np.full_like(xx, 128)], axis=-1).clip(0, 255).astype(np.uint8)
    face = _face((800, 800, 1600, 1600), ((1000, 1000), (1400, 1000)))
    crop = crop_face(rgb, face, AlignSpec(scale=1.0, shift_y=0.0))
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    # crop pixel (80, 80) samples frame pixel ~(1200, 1200) -> value 150
    assert int(crop[80, 80, 0]) == pytest.approx(150, abs=2)
    assert int(crop[80, 80, 1]) == pytest.approx(150, abs=2)
    assert int(crop[0, 0, 0]) == pytest.approx(100, abs=2)


def test_faces_at_the_frame_edge_are_padded_by_repeating_the_edge() -> None:
    rgb = np.full((100, 100, 3), 200, np.uint8)
    face = _face((-40, -40, 40, 40), ((-10, -10), (10, -10)))
    crop = crop_face(rgb, face, AlignSpec(scale=1.0))
    assert crop.shape == (160, 160, 3)
    assert int(crop.min()) == 200


def test_aspect_above_one_takes_a_taller_region_and_squeezes_it_square() -> None:
    face = _face((100, 100, 200, 200), ((130, 140), (170, 140)))
    m = crop_transform(face, AlignSpec(scale=1.0, aspect=1.5, shift_y=0.0))
    assert _apply(m, (100, 75)) == pytest.approx([0, 0])
    assert _apply(m, (200, 225)) == pytest.approx([160, 160])
