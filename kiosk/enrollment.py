"""Turning enrollment photos into one template per person, with the checks an administrator needs.

``enroll_template`` embeds 1-10 photos, refuses a set whose photos disagree
(likely two people; threshold from the score table's genuine distribution)
and fuses the rest into one unit template. ``duplicate_people`` asks whether
the door could tell the new template from everyone already enrolled, at the
threshold the security level gives for the gallery after enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError
from kiosk.imageio import read_rgb
from kiosk.match import Gallery
from kiosk.policy.scoremodel import ScoreModel, default_model
from kiosk.policy.templates import Consistency, consistency, fuse, same_person_threshold
from kiosk.policy.threshold import DEFAULT_TARGET, derive
from kiosk.vision.boxes import PRIMARY_MIN_RELATIVE_SCORE
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import sharpness

MIN_FACE_PX = 60.0
MIN_SHARPNESS = 20.0
RECOMMENDED = (3, 10)
TEMPLATE_KIND = "fused-mean-v1"  # one unit template per person: the normalised mean of its photos' embeddings


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


@dataclass(frozen=True)
class Template:
    """One person's enrollment: the fused unit template and how it was made."""

    template: npt.NDArray[np.float32]
    photos: int  # photos fused into it
    checks: list[PhotoCheck]
    consistency: Consistency
    kind: str = TEMPLATE_KIND

    def row(self) -> npt.NDArray[np.float32]:
        """The template as a (1, dim) matrix, the shape stores and galleries keep."""
        return self.template.reshape(1, -1)


def template_from_embeddings(embeddings: npt.NDArray[np.float32], model: ScoreModel | None = None,
                             checks: list[PhotoCheck] | None = None, min_photos: int = 1) -> Template:
    """Check that the photos agree, then fuse them; raises EnrollmentError when they do not."""
    e = np.asarray(embeddings, np.float32)
    if e.ndim != 2 or e.shape[0] < max(min_photos, 1):
        raise EnrollmentError(f"{0 if e.ndim != 2 else e.shape[0]} usable photos; at least {max(min_photos, 1)} "
                              f"needed ({RECOMMENDED[0]}-{RECOMMENDED[1]} recommended)")
    if e.shape[0] > RECOMMENDED[1]:
        raise EnrollmentError(f"{e.shape[0]} photos given; at most {RECOMMENDED[1]} are fused per person")
    model = model or default_model()
    verdict = consistency(e, same_person_threshold(model))
    if not verdict.ok:
        names = [c.path.name for c in checks if c.embedding is not None] if checks else None
        raise EnrollmentError(verdict.message(names))
    return Template(fuse(e), int(e.shape[0]), list(checks or []), verdict)


def enroll_template(pipeline: FacePipeline, photos: list[Path], model: ScoreModel | None = None,
                    min_photos: int = 1) -> Template:
    """Embed the photos (each checked), refuse a set that disagrees, fuse the rest into one template."""
    embeddings, checks = embed_photos(pipeline, photos)
    return template_from_embeddings(embeddings, model, checks, min_photos)


def duplicate_people(gallery: Gallery, template: npt.NDArray[np.float32], model: ScoreModel | None = None,
                     target: float = DEFAULT_TARGET, exclude: str | None = None) -> list[tuple[str, float]]:
    """Enrolled people (other than ``exclude``) whom ``template`` would be taken for in a 1:1 comparison.

    Scores the template against one fused template per enrolled person at the
    threshold the score model gives for ``target`` per comparison: the
    loosest threshold the security level ever uses (a gallery of one), so a
    hit means the door could confuse the two at any gallery size.
    """
    people = Gallery.from_rows(gallery.labels, gallery.matrix) if len(gallery) else gallery
    threshold = derive(model or default_model(), 1, target).threshold
    return similar_people(people, np.asarray(template, np.float32).reshape(1, -1), threshold, exclude)
