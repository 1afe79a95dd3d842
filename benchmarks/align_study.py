"""Which crop of a BlazeFace detection suits Sandberg's FaceNet best?

Embeds every photo of the labelled development sets with the float embedder
under a grid of crop conventions (``AlignSpec``) and prints verification AUC
and best accuracy per set.  The highest AUC + best accuracy, averaged over
the sets, is the candidate for ``kiosk.vision.align.DEFAULT_ALIGN``; a lead
smaller than the noise between neighbouring settings (~0.005) is not adopted.

    python -m benchmarks.align_study --model path/to/facenet_float32.tflite [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from kiosk.artifacts import dataset_path
from kiosk.datasets import identity_images
from kiosk.evaluation import all_pairs, verification_report
from kiosk.imageio import read_rgb
from kiosk.vision.align import AlignSpec, crop_face
from kiosk.vision.boxes import primary_face
from kiosk.vision.embedder import Embedder
from kiosk.vision.pipeline import build_detector
from kiosk.vision.runtime import load_runtime

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True, help="float32 FaceNet .tflite")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--detector", choices=["auto", "short", "full"], default="auto")
    args = ap.parse_args()
    ap_detector = args.detector
    detector = build_detector(ap_detector)
    embedder = Embedder(load_runtime().interpreter(args.model))
    sets = {"5-celebrity": dataset_path("5-celebrity"), "people": SHARED / "people"}
    loaded = {}
    for name, root in sets.items():
        items = []
        for label, path in identity_images(root):
            rgb = read_rgb(path)
            face = primary_face(detector.detect(rgb))
            if face is not None:
                items.append((label, rgb, face))
        loaded[name] = items
        print(f"{name}: {len(items)} photos with a face")
    # square regions around the box, and taller regions like MTCNN box + margin crops
    # (measured against facenet-pytorch's MTCNN on these photos: same centre x, 10 % higher,
    # 1.09x the BlazeFace width, 1.36x as tall as wide)
    grid = [AlignSpec(scale=s, shift_y=y, rotate=False, aspect=a)
            for s, a, y in itertools.product((1.0, 1.1, 1.2), (1.0, 1.2, 1.36, 1.5), (-0.15, -0.1, -0.05, 0.0, 0.05))]
    grid += [AlignSpec(scale=1.1, shift_y=-0.1, rotate=True, aspect=1.36), AlignSpec(scale=1.0, shift_y=0.05, rotate=True)]
    # tighter regions: the best above sat at the smallest width, and MTCNN's box without margin
    # (facenet-pytorch's default, the stronger reference) is 0.87x the BlazeFace width
    grid += [AlignSpec(scale=s, shift_y=y, rotate=False, aspect=a)
             for s, a, y in itertools.product((0.8, 0.87, 0.94), (1.2, 1.36, 1.5), (-0.1, -0.05, 0.0))]
    rows = []
    for spec in grid:
        row: dict[str, object] = {"spec": spec.as_dict()}
        aucs, scores = [], []
        for name, items in loaded.items():
            emb = embedder.embed([crop_face(rgb, face, spec) for _, rgb, face in items])
            i, j, same = all_pairs([label for label, _, _ in items])
            rep = verification_report(np.sum(emb[i] * emb[j], axis=1), same, 0.5)
            row[name] = {"auc": round(rep.auc, 4), "best_accuracy": round(rep.best_accuracy, 4)}
            aucs.append(rep.auc)
            scores.append(rep.auc + rep.best_accuracy)
        row["mean_auc"] = round(float(np.mean(aucs)), 4)
        row["score"] = round(float(np.mean(scores)), 4)  # AUC + best accuracy, averaged over the sets
        rows.append(row)
        print(json.dumps(row))
    best = max(rows, key=lambda r: float(r["score"]))  # type: ignore[arg-type]
    print("best:", json.dumps(best))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "best": best}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
