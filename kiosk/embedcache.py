"""Embeddings of photo sets and video clips, computed once and cached outside the project.

Evaluations over thousands of photos (``kiosk eval --open-set``,
``benchmarks/score_model.py``) embed every photo once with the kiosk's own
pipeline and keep the result in a scratch folder keyed by the embedder's
sha256 and crop convention, so a new model or alignment never reuses stale
numbers. The cache holds embeddings only, never images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError
from kiosk.imageio import read_rgb
from kiosk.progress import Progress
from kiosk.vision.boxes import primary_face
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import sharpness

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


def default_cache_dir() -> Path:
    """``$KIOSK_EVAL_CACHE``, else ``$XDG_CACHE_HOME/kiosk-eval`` (``~/.cache/kiosk-eval``)."""
    if os.environ.get("KIOSK_EVAL_CACHE"):
        return Path(os.environ["KIOSK_EVAL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kiosk-eval"


def pipeline_key(model_sha256: str, pipeline: FacePipeline) -> str:
    """Identifies the embedding space and crop convention a cached embedding belongs to."""
    align = json.dumps(pipeline.align.__dict__, sort_keys=True)
    detector = type(pipeline.detector).__name__
    return hashlib.sha256(f"{model_sha256}|{align}|{detector}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class EmbeddedSet:
    """Photos of one set: ``ok[i]`` is False when photo i had no usable face (its row is zeros)."""

    paths: list[str]
    labels: list[str]
    embeddings: F32
    ok: npt.NDArray[np.bool_]

    def kept(self) -> tuple[list[str], F32]:
        idx = np.nonzero(self.ok)[0]
        return [self.labels[i] for i in idx], self.embeddings[idx]


def _list_digest(items: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for label, path in items:
        st = path.stat()
        h.update(f"{label}\0{path.resolve()}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:20]


def embed_photo(pipeline: FacePipeline, path: Path) -> F32 | None:
    try:
        return pipeline.largest(read_rgb(path), str(path))[1]
    except KioskError as exc:
        logger.info("skipped %s", exc)
        return None


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"


def _known(folder: Path) -> dict[str, tuple[F32, bool]]:
    """Embeddings already cached in any set of this pipeline, by photo (path, size, mtime)."""
    out: dict[str, tuple[F32, bool]] = {}
    for f in sorted(folder.glob("set-*.npz")):
        try:
            with np.load(f, allow_pickle=False) as z:
                if "stamps" not in z:
                    continue
                for stamp, e, ok in zip(z["stamps"], z["embeddings"], z["ok"]):
                    out[str(stamp)] = (e.astype(np.float32), bool(ok))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignored unreadable cache file %s: %s", f, exc)
    return out


def embed_set(pipeline: FacePipeline, model_sha256: str, items: list[tuple[str, Path]], name: str,
              cache_dir: Path | None = None) -> EmbeddedSet:
    """Embeddings of (label, photo) items; photos embedded before with this pipeline come from the cache."""
    cache_dir = cache_dir or default_cache_dir()
    folder = cache_dir / pipeline_key(model_sha256, pipeline)
    path = folder / f"set-{_list_digest(items)}.npz"  # keyed by content, whatever the set is called
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            logger.info("embeddings of %s from %s", name, path)
            return EmbeddedSet([str(p) for p in z["paths"]], [str(x) for x in z["labels"]],
                               z["embeddings"].astype(np.float32), z["ok"].astype(bool))
    known = _known(folder) if folder.is_dir() else {}
    stamps = [_stamp(p) for _, p in items]
    dim = next((e.shape[0] for e, _ in known.values()), 128)
    emb = np.zeros((len(items), dim), np.float32)
    ok = np.zeros(len(items), bool)
    todo = [n for n, s in enumerate(stamps) if s not in known]
    for n, s in enumerate(stamps):
        if s in known:
            emb[n], ok[n] = known[s]
    if todo:
        bar = Progress(len(todo), f"embedding {name}")
        for done, n in enumerate(todo, start=1):
            e = embed_photo(pipeline, items[n][1])
            if e is not None:
                if emb.shape[1] != e.shape[0]:
                    raise ValueError(f"embedding size {e.shape[0]} differs from the cache's {emb.shape[1]}")
                emb[n], ok[n] = e, True
            bar(done)
    out = EmbeddedSet([str(p) for _, p in items], [label for label, _ in items], emb, ok)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, paths=np.array(out.paths), labels=np.array(out.labels), embeddings=emb, ok=ok,
                        stamps=np.array(stamps))
    tmp.replace(path)
    return out


@dataclass(frozen=True)
class EmbeddedClip:
    """Primary-face embeddings of sampled frames of one clip, with per-frame quality cues."""

    path: str
    frame_index: npt.NDArray[np.int64]
    time_s: npt.NDArray[np.float64]
    embeddings: F32
    face_px: npt.NDArray[np.float64]  # shorter side of the face box
    sharpness: npt.NDArray[np.float64]  # variance of the Laplacian of the aligned crop
    det_score: npt.NDArray[np.float64]


def embed_clip(pipeline: FacePipeline, model_sha256: str, clip: Path, every: int = 3,
               cache_dir: Path | None = None) -> EmbeddedClip:
    """Every ``every``-th frame of a video through detect -> primary face -> align -> embed."""
    import cv2

    cache_dir = cache_dir or default_cache_dir()
    st = clip.stat()
    digest = hashlib.sha256(f"{clip.resolve()}|{st.st_size}|{int(st.st_mtime)}|{every}".encode()).hexdigest()[:20]
    path = cache_dir / pipeline_key(model_sha256, pipeline) / f"clip-{clip.stem}-{digest}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return EmbeddedClip(str(clip), z["frame_index"], z["time_s"], z["embeddings"].astype(np.float32),
                                z["face_px"], z["sharpness"], z["det_score"])
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    bar = Progress(max(total, 1), f"embedding {clip.name}")
    idx: list[int] = []
    embs: list[F32] = []
    px: list[float] = []
    sh: list[float] = []
    sc: list[float] = []
    n = -1
    while True:
        good, bgr = cap.read()
        if not good:
            break
        n += 1
        if n % every:
            continue
        rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.uint8)
        face = primary_face(pipeline.detect(rgb))
        if face is not None:
            crop = pipeline.crops(rgb, [face])[0]
            embs.append(pipeline.embedder.embed([crop])[0])
            idx.append(n)
            px.append(float(min(face.width, face.height)))
            sh.append(sharpness(crop))
            sc.append(float(face.score))
        bar(n + 1)
    cap.release()
    bar(max(total, n + 1))
    out = EmbeddedClip(str(clip), np.array(idx, np.int64), np.array(idx, np.float64) / fps,
                       np.stack(embs).astype(np.float32) if embs else np.zeros((0, 128), np.float32),
                       np.array(px), np.array(sh), np.array(sc))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, frame_index=out.frame_index, time_s=out.time_s, embeddings=out.embeddings,
                        face_px=out.face_px, sharpness=out.sharpness, det_score=out.det_score)
    tmp.replace(path)
    return out
