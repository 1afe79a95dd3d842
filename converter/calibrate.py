"""Aligned face crops from a folder of photos, made by the kiosk's own detector and aligner."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.datasets import identity_images
from kiosk.errors import KioskError
from kiosk.imageio import read_rgb
from kiosk.progress import Progress
from kiosk.vision.align import DEFAULT_ALIGN, crop_face
from kiosk.vision.boxes import primary_face
from kiosk.vision.detector import Detector, FallbackDetector

logger = logging.getLogger(__name__)


@dataclass
class CropSet:
    """The largest face of each photo in a labelled folder, aligned."""

    name: str
    root: Path
    labels: list[str] = field(default_factory=list)
    crops: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """sha256 over the sorted content hashes of the photos used and the crop convention."""
        h = hashlib.sha256(repr(sorted(DEFAULT_ALIGN.as_dict().items())).encode())
        for d in sorted(self.digests):
            h.update(d.encode())
        return h.hexdigest()


def collect_crops(name: str, root: Path, detector: Detector | FallbackDetector, show_progress: bool = True) -> CropSet:
    items = list(identity_images(root))
    out = CropSet(name, root)
    bar = Progress(len(items), f"{name}: detecting and aligning") if show_progress else None
    for n, (label, path) in enumerate(items, start=1):
        try:
            rgb = read_rgb(path)
        except KioskError as exc:
            out.skipped.append(f"{path}: {exc}")
            continue
        face = primary_face(detector.detect(rgb))
        if face is None:
            out.skipped.append(f"{path}: no face found")
        else:
            out.labels.append(label)
            out.paths.append(path)
            out.crops.append(crop_face(rgb, face, DEFAULT_ALIGN))
            out.digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        if bar:
            bar(n)
    logger.info("%s: %d faces from %d photos (%d skipped)", name, len(out.crops), len(items), len(out.skipped))
    return out
