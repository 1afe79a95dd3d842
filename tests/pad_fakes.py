"""Stand-ins for rendering tests: a photo with a face-like blob, and a detector that finds it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kiosk.vision.boxes import Face


def face_photo(path: Path, size: int = 240) -> Path:
    img = np.full((size, size, 3), 90, np.uint8)
    cv2.circle(img, (size // 2, size // 2), size // 5, (180, 150, 130), -1)
    cv2.imwrite(str(path), img)
    return path


def fake_detect(rgb: np.ndarray) -> list[Face]:
    """A face box in the middle of whatever it is shown, a fifth of the image wide."""
    h, w = rgb.shape[:2]
    s = min(h, w) / 5
    kp = np.array([[w / 2 - s / 4, h / 2 - s / 6], [w / 2 + s / 4, h / 2 - s / 6], [w / 2, h / 2], [w / 2, h / 2 + s / 4],
                   [w / 2 - s / 2, h / 2], [w / 2 + s / 2, h / 2]])
    return [Face((w / 2 - s / 2, h / 2 - s / 2, w / 2 + s / 2, h / 2 + s / 2), 0.9, kp)]
