"""Drawing results on images people look at (OpenCV, RGB arrays)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face

RGB = npt.NDArray[np.uint8]


def similarity_colour(similarity: float) -> tuple[int, int, int]:
    """RGB running red (0 %) -> yellow (50 %) -> green (100 %); negatives are red."""
    p = float(np.clip(similarity, 0.0, 1.0))
    if p < 0.5:
        return 255, int(round(510 * p)), 0
    return int(round(255 * (2.0 - 2.0 * p))), 255, 0


def fit_height(rgb: RGB, height: int) -> tuple[RGB, float]:
    scale = height / rgb.shape[0]
    width = max(int(round(rgb.shape[1] * scale)), 1)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(rgb, (width, height), interpolation=interp), np.uint8), scale


def draw_face(img: RGB, face: Face, scale: float, colour: tuple[int, int, int], label: str) -> None:
    """Box, keypoints and a label under the box, in place."""
    x0, y0, x1, y1 = (int(round(v * scale)) for v in face.box)
    thick = max(2, img.shape[0] // 240)
    cv2.rectangle(img, (x0, y0), (x1, y1), colour, thick)
    for x, y in face.keypoints * scale:
        cv2.circle(img, (int(round(x)), int(round(y))), thick + 1, colour, -1)
    font_scale = max(0.5, img.shape[0] / 900)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
    ty = min(y1 + th + 2 * base + 4, img.shape[0] - base - 2)
    tx = min(max(x0, 0), max(img.shape[1] - tw - 4, 0))
    cv2.rectangle(img, (tx, ty - th - base - 2), (tx + tw + 4, ty + base), (0, 0, 0), -1)
    cv2.putText(img, label, (tx + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thick, cv2.LINE_AA)


def side_by_side(images: list[tuple[RGB, Face]], similarity: float, verdict: str, height: int = 480) -> RGB:
    """Photos scaled to one height, each face boxed in the similarity colour, a verdict banner on top."""
    colour = similarity_colour(similarity)
    label = f"Similarity: {100 * max(similarity, 0.0):.2f}%"
    panels = []
    for rgb, face in images:
        panel, scale = fit_height(rgb, height)
        panel = np.ascontiguousarray(panel)
        draw_face(panel, face, scale, colour, label)
        panels.append(panel)
    gap = np.full((height, 8, 3), 255, np.uint8)
    body = np.concatenate([panels[0], gap, *panels[1:]], axis=1)
    banner = np.full((40, body.shape[1], 3), 32, np.uint8)
    cv2.putText(banner, verdict, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2, cv2.LINE_AA)
    return np.concatenate([banner, body], axis=0)


def write_rgb(path: str, rgb: RGB) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}: unknown extension or folder not writable")


def draw_frame(rgb: RGB, faces: list[Face], labels: list[tuple[str, tuple[int, int, int]]], banner: str,
               banner_colour: tuple[int, int, int]) -> RGB:
    """A copy of a frame with each face boxed and labelled and a status banner on top."""
    img = np.ascontiguousarray(rgb.copy())
    for face, (text, colour) in zip(faces, labels):
        draw_face(img, face, 1.0, colour, text)
    cv2.rectangle(img, (0, 0), (img.shape[1], 28), (0, 0, 0), -1)
    cv2.putText(img, banner, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, banner_colour, 2, cv2.LINE_AA)
    return img
