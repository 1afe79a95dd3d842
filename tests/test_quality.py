import numpy as np
import pytest

from kiosk.vision.boxes import Face
from kiosk.vision.quality import (
    QualityConfig,
    check_geometry,
    check_sharpness,
    outside_fraction,
    sharpness,
    yaw_ratio,
)


def _face(box: tuple[float, float, float, float], nose_dx: float = 0.0) -> Face:
    x0, y0, x1, _ = box
    w = x1 - x0
    kps = np.zeros((6, 2))
    kps[0] = (x0 + 0.3 * w, y0 + 0.4 * w)
    kps[1] = (x0 + 0.7 * w, y0 + 0.4 * w)
    kps[2] = (x0 + 0.5 * w + nose_dx * 0.4 * w, y0 + 0.6 * w)
    return Face(box, 0.9, kps)


def _sharp_crop() -> np.ndarray:
    return (np.indices((160, 160)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=2)


def test_frontal_face_has_zero_yaw_and_turned_face_does_not() -> None:
    assert yaw_ratio(_face((0, 0, 100, 100))) == pytest.approx(0.0)
    assert yaw_ratio(_face((0, 0, 100, 100), nose_dx=0.5)) == pytest.approx(0.5)


def test_outside_fraction_of_a_box_half_beyond_the_edge() -> None:
    assert outside_fraction(_face((-50, 0, 50, 100)), 640, 480) == pytest.approx(0.5)
    assert outside_fraction(_face((10, 10, 110, 110)), 640, 480) == 0.0


def test_blur_lowers_sharpness() -> None:
    import cv2

    crop = _sharp_crop()
    assert sharpness(cv2.GaussianBlur(crop, (0, 0), 3)) < sharpness(crop)


@pytest.mark.parametrize(("face", "crop", "reason"), [
    (_face((0, 0, 50, 50)), _sharp_crop(), "too_small"),
    (_face((-60, 0, 90, 150)), _sharp_crop(), "cut_off"),
    (_face((100, 100, 250, 250), nose_dx=0.8), _sharp_crop(), "turned_away"),
    (_face((100, 100, 250, 250)), np.full((160, 160, 3), 128, np.uint8), "blurred"),
    (_face((100, 100, 250, 250)), _sharp_crop(), None),
])
def test_each_gate_names_itself(face: Face, crop: np.ndarray, reason: str | None) -> None:
    cfg = QualityConfig()
    assert (check_geometry(face, (480, 640, 3), cfg) or check_sharpness(crop, cfg)) == reason
