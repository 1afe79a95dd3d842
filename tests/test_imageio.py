from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.errors import ImageFormatError, ImageReadError
from kiosk.imageio import read_rgb


def _write(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


def test_greyscale_is_read_as_three_equal_channels(tmp_path: Path) -> None:
    rgb = read_rgb(_write(tmp_path / "g.png", np.full((64, 64), 90, np.uint8)))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8 and int(rgb[0, 0, 2]) == 90


def test_alpha_channel_is_dropped_and_colours_reordered(tmp_path: Path) -> None:
    bgra = np.zeros((64, 64, 4), np.uint8)
    bgra[..., 0] = 255  # blue
    bgra[..., 3] = 10
    rgb = read_rgb(_write(tmp_path / "a.png", bgra))
    assert rgb.shape == (64, 64, 3) and rgb[0, 0].tolist() == [0, 0, 255]


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path: Path) -> None:
    img = np.full((64, 64, 3), 65535, np.uint16)
    img[..., 0] = 0
    rgb = read_rgb(_write(tmp_path / "d.png", img))
    assert rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [255, 255, 0]


def test_corrupt_empty_missing_and_tiny_files_raise_distinct_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="not a readable image"):
        read_rgb(bad)
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(ImageReadError, match="empty"):
        read_rgb(empty)
    with pytest.raises(ImageReadError, match="cannot read"):
        read_rgb(tmp_path / "missing.jpg")
    with pytest.raises(ImageFormatError, match="at least 32 px"):
        read_rgb(_write(tmp_path / "tiny.png", np.zeros((10, 10, 3), np.uint8)))
    assert ImageReadError.exit_code != ImageFormatError.exit_code


def test_the_shared_32_bit_png_reads_as_rgb(data: Path) -> None:
    rgb = read_rgb(data / "scenes" / "32bit.png")
    assert rgb.ndim == 3 and rgb.shape[2] == 3
