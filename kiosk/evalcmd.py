"""``kiosk eval``: verification accuracy on a pairs list or identity folders."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.datasets import identity_images, read_pairs
from kiosk.errors import DatasetError, KioskError
from kiosk.evaluation import Report, all_pairs, verification_report
from kiosk.imageio import read_rgb
from kiosk.progress import Progress
from kiosk.vision.pipeline import FacePipeline, build_pipeline

logger = logging.getLogger(__name__)


def embed_paths(pipeline: FacePipeline, paths: list[Path]) -> dict[Path, npt.NDArray[np.float32] | None]:
    """Embedding of the largest face of each photo; None when unreadable or faceless."""
    out: dict[Path, npt.NDArray[np.float32] | None] = {}
    bar = Progress(len(paths), "embedding")
    for n, path in enumerate(paths, start=1):
        try:
            out[path] = pipeline.largest(read_rgb(path), str(path))[1]
        except KioskError as exc:
            logger.warning("skipped %s", exc)
            out[path] = None
        bar(n)
    return out


def _scores(args: argparse.Namespace, pipeline: FacePipeline) -> tuple[list[float], list[bool], int]:
    if args.pairs:
        pairs = read_pairs(args.pairs, args.images or args.pairs.parent)
        emb = embed_paths(pipeline, sorted({p for a, b, _ in pairs for p in (a, b)}))
        scores, same, skipped = [], [], 0
        for a, b, s in pairs:
            ea, eb = emb[a], emb[b]
            if ea is None or eb is None:
                skipped += 1
                continue
            scores.append(float(np.dot(ea, eb)))
            same.append(s)
        return scores, same, skipped
    items = list(identity_images(args.identities))
    emb = embed_paths(pipeline, [p for _, p in items])
    kept = [(label, emb[p]) for label, p in items if emb[p] is not None]
    if len(kept) < 2:
        raise DatasetError(f"{args.identities}: fewer than two photos with a face")
    labels = [label for label, _ in kept]
    matrix = np.stack([e for _, e in kept if e is not None])
    i, j, same_arr = all_pairs(labels)
    n_total = len(items) * (len(items) - 1) // 2
    return list(np.sum(matrix[i] * matrix[j], axis=1).astype(float)), list(same_arr.astype(bool)), n_total - len(i)


def run_eval(args: argparse.Namespace) -> int:
    if getattr(args, "open_set", False):
        from kiosk.opensetcmd import run_open_set

        return run_open_set(args)
    pipeline, card = build_pipeline(args.model, detector=args.detector, runtime=args.runtime, threads=args.threads)
    threshold = card.threshold if args.threshold is None else args.threshold
    scores, same, skipped = _scores(args, pipeline)
    try:
        report = verification_report(scores, same, threshold, skipped)
    except ValueError as exc:
        raise DatasetError(f"cannot evaluate: {exc}") from exc
    if args.plot:
        from kiosk.plots import plot_verification

        plot_verification(np.asarray(scores), np.asarray(same), report, args.plot)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(_summary(report) + (f"\nwrote {args.plot}" if args.plot else ""))
    return 0


def _summary(r: Report) -> str:
    return (f"{r.n_pairs} pairs ({r.n_same} same, {r.n_different} different, {r.n_skipped} skipped)\n"
            f"accuracy at threshold {r.threshold:.4f}: {100 * r.accuracy_at_threshold:.2f}%\n"
            f"best accuracy {100 * r.best_accuracy:.2f}% at {r.best_threshold:.4f}; AUC {r.auc:.4f}\n"
            + "; ".join(f"TAR@FAR={k}: {100 * v:.2f}%" for k, v in r.tar_at_far.items()))


def add_open_set_args(parser: argparse.ArgumentParser) -> None:
    """The ``kiosk eval --open-set`` options (see kiosk.opensetcmd)."""
    from kiosk.opensetcmd import add_open_set_args as add

    add(parser)


__all__ = ["add_open_set_args", "run_eval"]
