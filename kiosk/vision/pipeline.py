"""Frame -> faces -> aligned crops -> embeddings, wired from injected parts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.artifacts import Manifest, artifact_path, models_dir
from kiosk.errors import NoFaceError
from kiosk.vision.align import DEFAULT_ALIGN, AlignSpec, crop_face
from kiosk.vision.anchors import SPECS
from kiosk.vision.boxes import Face, primary_face
from kiosk.vision.detector import Detector, FallbackDetector
from kiosk.vision.embedder import Embedder
from kiosk.vision.modelcard import DEFAULT_MODEL, ModelCard
from kiosk.vision.runtime import load_runtime

logger = logging.getLogger(__name__)

DETECTOR_ARTIFACTS = {"short": "blazeface_short_range", "full": "blazeface_full_range"}


@dataclass
class FacePipeline:
    detector: Detector | FallbackDetector
    embedder: Embedder
    align: AlignSpec = DEFAULT_ALIGN

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[Face]:
        return self.detector.detect(rgb)

    def crops(self, rgb: npt.NDArray[np.uint8], faces: list[Face]) -> list[npt.NDArray[np.uint8]]:
        return [crop_face(rgb, f, self.align) for f in faces]

    def embed(self, rgb: npt.NDArray[np.uint8], faces: list[Face]) -> npt.NDArray[np.float32]:
        return self.embedder.embed(self.crops(rgb, faces))

    def largest(self, rgb: npt.NDArray[np.uint8], origin: str = "image") -> tuple[Face, npt.NDArray[np.float32]]:
        """The photo's subject (see ``primary_face``) and its embedding."""
        face = primary_face(self.detect(rgb))
        if face is None:
            raise NoFaceError(f"{origin}: no face found")
        return face, self.embed(rgb, [face])[0]


def build_detector(kind: str = "auto", *, runtime: str = "auto", threads: int = 2,
                   root: Path | None = None) -> Detector | FallbackDetector:
    """``short`` or ``full`` range BlazeFace, or ``auto``: full range with short range as fallback."""
    if kind == "auto":
        full = build_detector("full", runtime=runtime, threads=threads, root=root)
        short = build_detector("short", runtime=runtime, threads=threads, root=root)
        assert isinstance(full, Detector) and isinstance(short, Detector)
        return FallbackDetector(full, short)
    spec = SPECS[kind]
    path = artifact_path(DETECTOR_ARTIFACTS[kind], root, Manifest.load())
    return Detector(load_runtime(runtime).interpreter(path, num_threads=threads), spec)


def build_pipeline(
    model: Path | None = None,
    *,
    detector: str = "auto",
    runtime: str = "auto",
    threads: int = 2,
    xnnpack: bool = True,
    delegate: str | None = None,
    root: Path | None = None,
) -> tuple[FacePipeline, ModelCard]:
    """Load the detector and the embedder (its sha256 checked against its manifest)."""
    root = root or models_dir()
    model = model or root / DEFAULT_MODEL
    card = ModelCard.load(model)
    rt = load_runtime(runtime)
    embedder = Embedder(rt.interpreter(model, num_threads=threads, xnnpack=xnnpack, delegate=delegate))
    align = AlignSpec(**card.data["preprocessing"]["align"]) if "preprocessing" in card.data else DEFAULT_ALIGN
    return FacePipeline(build_detector(detector, runtime=runtime, threads=threads, root=root), embedder, align), card
