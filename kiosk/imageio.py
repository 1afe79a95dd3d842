"""Reading photos into RGB uint8 arrays, with a clear error for each bad case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.errors import ImageFormatError, ImageReadError

MIN_SIDE = 32
MAX_PIXELS = 60_000_000

RGB = npt.NDArray[np.uint8]


def to_rgb8(img: Any, origin: str = "image") -> RGB:
    """Any decoded BGR/BGRA/grey image, 8 or 16 bit, -> RGB uint8."""
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageFormatError(f"{origin}: pixel type {img.dtype} is not supported; save it as 8-bit JPEG or PNG")
    if img.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB))
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ImageFormatError(f"{origin}: expected 1, 3 or 4 colour channels, found shape {img.shape}")
    channels = img.shape[2]
    if channels == 1:
        return np.ascontiguousarray(cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB))
    if channels == 4:
        return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def read_rgb(path: str | Path) -> RGB:
    """Read a photo as RGB uint8; greyscale, alpha and 16-bit images are converted."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated, or an unsupported format)")
    h, w = img.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageFormatError(f"{path}: image is {w}x{h} px; at least {MIN_SIDE} px on each side is needed")
    if h * w > MAX_PIXELS:
        raise ImageFormatError(f"{path}: image is {w}x{h} px; at most {MAX_PIXELS // 1_000_000} megapixels")
    return to_rgb8(img, str(path))
