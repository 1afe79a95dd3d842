"""Quantisation and vector maths shared by the embedder and the matcher (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_LIMITS = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int16): (-32768, 32767)}


def quantize(x: npt.NDArray[np.floating], scale: float, zero_point: int, dtype: npt.DTypeLike) -> npt.NDArray[np.integer]:
    """Real values -> integers: round(x / scale) + zero_point, saturated to the dtype."""
    lo, hi = _LIMITS[np.dtype(dtype)]
    q = np.round(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, lo, hi).astype(dtype)


def dequantize(q: npt.NDArray[np.integer], scale: float, zero_point: int) -> npt.NDArray[np.float32]:
    """Integers -> real values, widening to int64 first so the subtraction cannot wrap."""
    return ((q.astype(np.int64) - np.int64(zero_point)) * scale).astype(np.float32)


def l2_normalize(x: npt.NDArray[np.floating], eps: float = 1e-10) -> npt.NDArray[np.float32]:
    """Unit-length rows; an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32)


def prewhiten(img: npt.NDArray[np.number]) -> npt.NDArray[np.float32]:
    """Per-image standardisation the FaceNet weights were trained with.

    (x - mean) / max(std, 1 / sqrt(N)), N the number of values in the image.
    """
    x = img.astype(np.float32)
    std_adj = max(float(x.std()), 1.0 / np.sqrt(x.size))
    return ((x - x.mean()) / std_adj).astype(np.float32)
