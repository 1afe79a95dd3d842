"""Turning enrollment photos into embeddings, with the checks an administrator needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError
from kiosk.imageio import read_rgb
from kiosk.match import Gallery
from kiosk.vision.boxes import PRIMARY_MIN_RELATIVE_SCORE
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import sharpness

MIN_FACE_PX = 60.0
MIN_SHARPNESS = 20.0
RECOMMENDED = (3, 10)


class EnrollmentError(KioskError, ValueError):
    exit_code = 14


@dataclass(frozen=True)
class PhotoCheck:
    path: Path
    reason: str | None  # None: accepted
    embedding: npt.NDArray[np.float32] | None = None


def check_photo(pipeline: FacePipeline, path: Path, min_face_px: float = MIN_FACE_PX,
                min_sharpness: float = MIN_SHARPNESS) -> PhotoCheck:
    try:
        rgb = read_rgb(path)
    except KioskError as exc:
        return PhotoCheck(path, str(exc))
    faces = pipeline.detect(rgb)
    if not faces:
        return PhotoCheck(path, "no face found")
    best = max(f.score for f in faces)
    confident = [f for f in faces if f.score >= PRIMARY_MIN_RELATIVE_SCORE * best]
    if len(confident) > 1:
        return PhotoCheck(path, f"{len(confident)} faces; an enrollment photo must show one person")
    face = confident[0]
    side = min(face.width, face.height)
    if side < min_face_px:
        return PhotoCheck(path, f"face too small ({side:.0f} px; at least {min_face_px:.0f} px)")
    crop = pipeline.crops(rgb, [face])[0]
    sharp = sharpness(crop)
    if sharp < min_sharpness:
        return PhotoCheck(path, f"face too blurred (sharpness {sharp:.1f}; at least {min_sharpness:.0f})")
    return PhotoCheck(path, None, pipeline.embedder.embed([crop])[0])


def embed_photos(pipeline: FacePipeline, photos: list[Path]) -> tuple[npt.NDArray[np.float32], list[PhotoCheck]]:
    """Embeddings of the accepted photos and the verdict on every photo; raises when none is usable."""
    if len(photos) > RECOMMENDED[1]:
        raise EnrollmentError(f"{len(photos)} photos given; at most {RECOMMENDED[1]} are kept per person")
    checks = [check_photo(pipeline, p) for p in photos]
    good = [c.embedding for c in checks if c.embedding is not None]
    if not good:
        reasons = "; ".join(f"{c.path.name}: {c.reason}" for c in checks)
        raise EnrollmentError(f"no usable photo ({reasons})")
    return np.stack(good).astype(np.float32), checks


def similar_people(gallery: Gallery, embeddings: npt.NDArray[np.float32], threshold: float,
                   exclude: str | None = None) -> list[tuple[str, float]]:
    """Enrolled people (other than ``exclude``) whom the new embeddings already match."""
    if len(gallery) == 0:
        return []
    scores = gallery.matrix @ embeddings.T  # (rows, new)
    best: dict[str, float] = {}
    for label, row in zip(gallery.labels, scores.max(axis=1)):
        if label != exclude and row >= threshold:
            best[label] = max(best.get(label, -1.0), float(row))
    return sorted(best.items(), key=lambda kv: -kv[1])
