"""The eye band's canonical crop: where it puts the face, and what a sampled frame keeps to cut it later
(``regions.CropSource``): the same crop as from the whole frame, never the frame itself."""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk.liveness import regions
from tests import liveness_pixels as px

W, H = px.W, px.H


def test_the_crop_puts_the_eyes_level_and_iod_apart() -> None:
    pts = px.landmarks()
    rolled = px.warp_points(np.vstack([cv2.getRotationMatrix2D((320, 240), 20, 1.3), [0, 0, 1]]), pts)
    crop = regions.face_crop(px.texture(), rolled)
    assert crop is not None and crop.gray.shape == (regions.CROP, regions.CROP)
    eyes = crop.anchors[:4]  # 33, 133, 362, 263
    left, right = eyes[:2].mean(axis=0), eyes[2:].mean(axis=0)
    np.testing.assert_allclose(right - left, [regions.IOD_PX, 0.0], atol=1e-3)
    np.testing.assert_allclose(left[1], regions.EYE_Y, atol=1e-3)


def _whole_frame_crop(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The crop cut straight from the whole frame (what ``CropSource`` must reproduce)."""
    m = regions.canonical(pts)
    assert m is not None
    patch = cv2.warpAffine(img, m, (regions.CROP, regions.CROP), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), np.uint8)


@pytest.mark.parametrize(("centre", "iod", "roll"), [
    ((320.0, 240.0), 80.0, 0.0),  # inside the frame
    ((317.3, 241.9), 61.7, 23.0),  # rolled, sub-pixel
    ((20.0, 30.0), 90.0, 10.0),  # running off the top left corner: the frame's edge is replicated
    ((630.0, 470.0), 70.0, -35.0),  # off the bottom right
    ((-200.0, 240.0), 40.0, 0.0),  # wholly beyond the left edge
    ((320.0, 240.0), 400.0, 5.0),  # larger than the frame
    ((320.0, 8.0), 80.0, 180.0),  # upside down, off the top edge
    ((6.0, 240.0), 70.0, 90.0),  # on its side, off the left edge
    ((634.0, 236.0), 70.0, -90.0),  # on its other side, off the right edge
    ((320.0, 474.0), 80.0, 180.0),  # upside down, off the bottom edge
])
def test_the_crop_source_keeps_only_the_footprint_and_cuts_the_same_crop(
        centre: tuple[float, float], iod: float, roll: float) -> None:
    img = px.texture()
    turn = np.vstack([cv2.getRotationMatrix2D(centre, roll, 1.0), [0, 0, 1]])
    pts = px.warp_points(turn, px.landmarks(centre, iod))
    source = regions.crop_source(img, pts)
    assert source is not None
    assert source.nbytes < img.nbytes  # a copy of the footprint, not of the frame
    img[:] = 0  # the camera reuses its buffer: the source holds its own pixels
    crop = source.crop()
    expected = _whole_frame_crop(px.texture(), pts)
    # The warp's fixed-point coordinates come from a translation moved by whole pixels: one grey level
    # may differ at a pixel in a few hundred crops (measured on the real clips: 6 of 3,000 crops).
    diff = np.abs(crop.gray.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and int((diff > 0).sum()) <= 2
    assert source.crop() is crop  # cut once
    whole = regions.face_crop(px.texture(), pts)
    assert whole is not None
    np.testing.assert_array_equal(crop.anchors, whole.anchors)
    np.testing.assert_array_equal(crop.oval, whole.oval)


def test_random_poses_cut_the_same_crop_as_the_whole_frame() -> None:
    rng = np.random.default_rng(7)
    img = px.texture()
    for _ in range(60):
        centre = (float(rng.uniform(-100, W + 100)), float(rng.uniform(-100, H + 100)))
        roll = float(rng.choice([0.0, 90.0, 180.0, -90.0, rng.uniform(-180, 180)]))
        turn = np.vstack([cv2.getRotationMatrix2D(centre, roll, 1.0), [0, 0, 1]])
        pts = px.warp_points(turn, px.landmarks(centre, float(rng.uniform(20, 200))))
        source = regions.crop_source(img, pts)
        assert source is not None
        diff = np.abs(source.crop().gray.astype(int) - _whole_frame_crop(img, pts).astype(int))
        assert diff.max() <= 1 and int((diff > 0).sum()) <= 2


def test_a_face_close_to_the_camera_has_its_crop_cut_at_once_and_keeps_nothing_of_the_frame() -> None:
    """A footprint over ``MAX_KEPT_BYTES`` is cut at once: a track holds at most that much per frame,
    and no source, cut or not, keeps the camera's frame alive (a view of it would)."""
    img = px.texture()
    near, far = px.landmarks(iod=300.0), px.landmarks(iod=60.0)
    before = sys.getrefcount(img)
    kept = regions.crop_source(img, far)
    cut = regions.crop_source(img, near)
    assert kept is not None and cut is not None
    assert sys.getrefcount(img) == before
    assert 0 < kept.nbytes <= regions.MAX_KEPT_BYTES
    assert cut.nbytes == 0
    whole = _whole_frame_crop(img, near)
    assert np.abs(cut.crop().gray.astype(int) - whole.astype(int)).max() <= 1
    kept.crop()
    assert kept.nbytes == 0  # cut: the copy is let go


def test_a_frame_that_is_not_rgb_bytes_is_refused() -> None:
    pts = px.landmarks()
    frames: list[Any] = [np.zeros((H, W), np.uint8), np.zeros((H, W, 3), np.uint16), np.zeros((0, 0, 3), np.uint8)]
    for frame in frames:
        with pytest.raises(ValueError, match="RGB frame of bytes"):
            regions.crop_source(frame, pts)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_eye_corners_that_overflow_give_no_crop_rather_than_an_error() -> None:
    """Finite landmarks so far apart that the footprint's corners overflow: no pixels to judge, the same
    as unusable eyes (in the loop an exception would lock the door and skip the frame for every face)."""
    pts = px.landmarks().astype(np.float64)  # FaceMesh's are float32, where this is inf; a float64 caller's
    pts[[33, 133]] = 0.0, 0.0, 0.0
    pts[[362, 263]] = 1e160, 1e159, 0.0
    assert regions.canonical(pts) is not None  # the eyes themselves are finite and apart
    assert regions.crop_source(px.texture(), pts) is None
    with pytest.raises(ValueError, match="RGB frame of bytes"):  # a wrong frame is still refused first
        regions.crop_source(np.zeros((H, W), np.uint8), pts)
