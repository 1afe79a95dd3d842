import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.match import Gallery, cosine, distance
from kiosk.vision.quant import dequantize, l2_normalize, prewhiten, quantize


def test_dequantize_widens_before_subtracting_the_zero_point() -> None:
    q = np.array([-128, 127], np.int8)
    # int8 arithmetic would wrap: -128 - 127 overflows
    assert dequantize(q, 0.5, 127) == pytest.approx([-127.5, 0.0])
    assert dequantize(np.array([0, 255], np.uint8), 0.1, 128) == pytest.approx([-12.8, 12.7])


def test_quantize_saturates_at_the_dtype_limits() -> None:
    x = np.array([-1000.0, 0.0, 1000.0])
    assert quantize(x, 1.0, 0, np.int8).tolist() == [-128, 0, 127]
    assert quantize(x, 1.0, 128, np.uint8).tolist() == [0, 128, 255]


@given(st.floats(-3, 3), st.floats(0.01, 0.1), st.integers(-20, 20))
def test_quantize_round_trip_is_within_half_a_step(x: float, scale: float, zp: int) -> None:
    q = quantize(np.array([x]), scale, zp, np.int8)
    back = float(dequantize(q, scale, zp)[0])
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    assert abs(back - min(max(x, lo), hi)) <= scale / 2 + 1e-6  # dequantize returns float32


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows_finite() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y = l2_normalize(x)
    assert y[0] == pytest.approx([0.6, 0.8])
    assert np.all(np.isfinite(y)) and y[1].tolist() == [0.0, 0.0]


def test_prewhiten_standardises_and_guards_flat_images() -> None:
    img = np.random.default_rng(0).integers(0, 256, (160, 160, 3)).astype(np.uint8)
    x = prewhiten(img)
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)
    flat = prewhiten(np.full((160, 160, 3), 7, np.uint8))
    assert np.all(flat == 0.0)


def test_gallery_returns_best_row_label_only_at_or_above_threshold() -> None:
    g = Gallery(l2_normalize(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])), ["ann", "bob", "ann"])
    q = l2_normalize(np.array([0.7, 0.7]))
    m = g.match(q, threshold=0.9)
    assert m.label == "ann" and m.index == 2 and m.score == pytest.approx(0.9899, abs=1e-4)
    assert g.match(q, threshold=0.995).label is None


def test_empty_gallery_matches_nobody() -> None:
    m = Gallery(np.zeros((0, 128), np.float32), []).match(np.ones(128, np.float32), 0.5)
    assert m.label is None and m.index == -1


def test_cosine_and_distance_agree_for_unit_vectors() -> None:
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    assert cosine(a, b) == pytest.approx(0.0)
    assert distance(0.0) == pytest.approx(np.sqrt(2))
    assert distance(1.0) == 0.0
