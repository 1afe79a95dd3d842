"""What a cheap camera does to a scene: lighting drift, glare, defocus and motion blur, sensor noise, JPEG."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Camerawork:
    """Per-sequence settings, drawn once from the seed so a sequence is consistent over time."""

    gain: tuple[float, float]  # exposure at the first and last frame
    tint: tuple[float, float, float]  # white-balance multipliers
    noise: float  # sensor noise, grey levels (sigma)
    blur: float  # defocus sigma, pixels
    jpeg_quality: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Camerawork:
        g0 = float(rng.uniform(0.75, 1.15))
        return cls((g0, float(np.clip(g0 * rng.uniform(0.85, 1.15), 0.6, 1.3))),
                   (float(rng.uniform(0.92, 1.08)), 1.0, float(rng.uniform(0.9, 1.1))),
                   float(rng.uniform(2.0, 7.0)), float(rng.uniform(0.3, 1.3)), int(rng.integers(70, 93)))


def glare(cover: F32, centre: tuple[float, float], radius: float, strength: float) -> RGB:
    """An additive specular highlight (grey levels per pixel) limited to the artefact's coverage."""
    h, w = cover.shape
    r = max(radius, 1.0)
    xs = np.exp(-((np.arange(w, dtype=np.float32) - centre[0]) ** 2) / (2.0 * r * r))
    ys = np.exp(-((np.arange(h, dtype=np.float32) - centre[1]) ** 2) / (2.0 * r * r))
    blob = np.outer(ys * strength, xs).astype(np.float32)
    return np.asarray(cv2.multiply(blob, cover), np.float32).clip(0, 255).astype(np.uint8)


def motion_blur(img: RGB, dx: float, dy: float) -> RGB:
    """Linear motion blur along (dx, dy) pixels of movement during the exposure."""
    n = int(min(max(abs(dx), abs(dy)), 15))
    if n < 2:
        return img
    k = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
    for s in np.linspace(-0.5, 0.5, 2 * n + 1):
        k[int(round(n + s * dy)), int(round(n + s * dx))] += 1.0
    return np.asarray(cv2.filter2D(img, -1, k / k.sum()), np.uint8)


def expose(frame: RGB, work: Camerawork, progress: float, rng: np.random.Generator,
           highlight: RGB | None = None, motion: tuple[float, float] = (0.0, 0.0)) -> RGB:
    """The frame as the camera records it at ``progress`` (0..1) through the sequence (before JPEG)."""
    img = frame if highlight is None else cv2.add(frame, cv2.merge([highlight, highlight, highlight]))
    gain = work.gain[0] + (work.gain[1] - work.gain[0]) * progress
    img = cv2.transform(img, np.diag(np.asarray(work.tint, np.float32) * np.float32(gain)))
    img = motion_blur(np.asarray(cv2.GaussianBlur(img, (0, 0), work.blur), np.uint8), *motion)
    noise = np.empty(img.shape, np.int16)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(noise, np.zeros(1), np.full(1, work.noise))
    return np.asarray(cv2.add(img, noise, dtype=cv2.CV_8U), np.uint8)


def jpeg_bytes(rgb: RGB, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())
