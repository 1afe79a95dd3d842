"""Our pipeline against the reference FaceNet pipeline, same weights, same images, one script.

    .venv/bin/python -m benchmarks.compare [--quick] [--json out.json]

Sets up ``.venv-bench`` (torch 2.14.1 + torchvision 0.29.1, facenet-pytorch
2.6 without its dependency pins) on first use, runs the reference there as a
subprocess, and ours in this process, on the same frame and photos.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.machine import machine, timeit
from kiosk.artifacts import artifact_path, dataset_path, models_dir
from kiosk.datasets import identity_images
from kiosk.evaluation import all_pairs, verification_report
from kiosk.imageio import read_rgb
from kiosk.vision.embedder import Embedder
from kiosk.vision.pipeline import build_pipeline
from kiosk.vision.runtime import load_runtime

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1"]
BENCH_EXTRA = ["h5py", "pillow", "requests", "tqdm"]


def ensure_bench_env(venv: Path = BENCH_VENV) -> Path:
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import facenet_pytorch, h5py"], capture_output=True).returncode == 0:
        return py
    print(f"setting up {venv} (torch, torchvision, facenet-pytorch; several GB, once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *BENCH_PACKAGES, *BENCH_EXTRA], check=True)
    # facenet-pytorch pins torch<2.3 and old numpy/pillow; its code runs on these
    subprocess.run([*pip, "--no-deps", "facenet-pytorch==2.6.0"], check=True)
    return py


def benchmark_frame() -> tuple[Path, str]:
    one_face = SHARED / "scenes" / "obama-480p.jpg"
    if one_face.is_file():
        return one_face, "shared/data/scenes/obama-480p.jpg (853x480, one face)"
    photo = sorted((dataset_path("5-celebrity") / "val" / "ben_afflek").glob("*.jpg"))[0]
    return photo, f"5-celebrity/{photo.name}"


def labelled_sets() -> dict[str, list[tuple[str, Path]]]:
    sets = {"5-celebrity": list(identity_images(dataset_path("5-celebrity")))}
    if (SHARED / "johns").is_dir():
        sets["johns"] = list(identity_images(SHARED / "johns"))
    return sets


def accuracy_on_common(sets: dict[str, list[tuple[str, Path]]], ours: dict[str, Any], ref: dict[str, Any]
                       ) -> dict[str, Any]:
    out = {}
    for name, items in sets.items():
        common = [(label, str(p)) for label, p in items if ours.get(str(p)) is not None and ref.get(str(p)) is not None]
        labels = [label for label, _ in common]
        i, j, same = all_pairs(labels)
        row: dict[str, Any] = {"images": len(items), "both_found_face": len(common), "pairs": int(len(i))}
        row["faces_found"] = {"ours": sum(ours.get(str(p)) is not None for _, p in items),
                              "reference": sum(ref.get(str(p)) is not None for _, p in items)}
        if same.all() or not same.any():
            out[name] = row  # too few faces found for both kinds of pair
            continue
        for who, embs in (("ours_int8", ours), ("reference_float32", ref)):
            e = np.stack([np.asarray(embs[p], np.float32) for _, p in common])
            e /= np.linalg.norm(e, axis=1, keepdims=True)
            rep = verification_report(np.sum(e[i] * e[j], axis=1), same, 0.5)
            row[who] = {"best_accuracy": round(rep.best_accuracy, 4), "auc": round(rep.auc, 4),
                        "tar_at_far_0.001": round(rep.tar_at_far["0.001"], 4)}
        out[name] = row
    return out


def run(quick: bool, threads: int = 2, margin: int = 0, detector: str = "auto") -> dict[str, Any]:
    py = ensure_bench_env()
    frame_path, frame_desc = benchmark_frame()
    sets = labelled_sets()
    images = [str(p) for items in sets.values() for _, p in items]
    pipeline, card = build_pipeline(threads=threads, detector=detector)
    rgb = read_rgb(frame_path)
    repeat = 10 if quick else 30
    ours_frame = timeit(lambda: pipeline.largest(rgb), repeat)

    ours: dict[str, Any] = {}
    for p in images:
        try:
            ours[p] = pipeline.largest(read_rgb(p), p)[1].tolist()
        except Exception:
            ours[p] = None
    with tempfile.TemporaryDirectory() as tmp:
        crops = []
        for k, p in enumerate(images[:12]):
            face_rgb = read_rgb(p)
            faces = pipeline.detect(face_rgb)
            if faces:
                c = pipeline.crops(face_rgb, faces[:1])[0]
                path = Path(tmp) / f"{k}.png"
                cv2.imwrite(str(path), cv2.cvtColor(c, cv2.COLOR_RGB2BGR))
                crops.append((path, c))
        job = {"weights": str(artifact_path("facenet_keras")), "frame": str(frame_path), "repeat": repeat,
               "threads": threads, "margin": margin, "images": images, "crops": [str(p) for p, _ in crops]}
        proc = subprocess.run([str(py), str(ROOT / "benchmarks" / "reference.py")], input=json.dumps(job),
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"reference pipeline failed:\n{proc.stderr[-3000:]}")
        ref = json.loads(proc.stdout)
        float_tflite = Embedder(load_runtime().interpreter(models_dir() / "facenet_float32.tflite", num_threads=threads))
        ours_float = float_tflite.embed([c for _, c in crops])
        ref_crops = np.asarray(ref["crop_embeddings"], np.float32)
        mapping_cos = np.sum(ours_float * ref_crops, axis=1)
    result = {
        "machine": machine(), "threads": threads, "frame": frame_desc,
        "ours": {"pipeline": f"BlazeFace {detector} range + FaceNet int8 TFLite (XNNPACK)", "frame_ms": ours_frame},
        "reference": {"pipeline": f"facenet-pytorch MTCNN (margin {margin}) + FaceNet float32 PyTorch "
                                  f"(channels_last), torch {ref['torch']}", "frame_ms": ref["frame_ms"]},
        "speedup": round(ref["frame_ms"]["median_ms"] / ours_frame["median_ms"], 2),
        "weights_check": {"crops": len(crops), "min_cosine_torch_vs_tflite_float": round(float(mapping_cos.min()), 5)},
        "accuracy": accuracy_on_common(sets, ours, ref["embeddings"]),
        "threshold": card.threshold,
    }
    return result


def table(r: dict[str, Any]) -> str:
    lines = [f"per frame with one face ({r['frame']}), {r['threads']} threads:",
             f"  ours      {r['ours']['frame_ms']['median_ms']:8.2f} ms  (min {r['ours']['frame_ms']['min_ms']:.2f}, "
             f"max {r['ours']['frame_ms']['max_ms']:.2f})  {r['ours']['pipeline']}",
             f"  reference {r['reference']['frame_ms']['median_ms']:8.2f} ms  (min {r['reference']['frame_ms']['min_ms']:.2f},"
             f" max {r['reference']['frame_ms']['max_ms']:.2f})  {r['reference']['pipeline']}",
             f"  speed-up  {r['speedup']}x",
             f"weights check: torch vs TFLite float32 on the same crops, min cosine "
             f"{r['weights_check']['min_cosine_torch_vs_tflite_float']}"]
    for name, a in r["accuracy"].items():
        lines.append(f"{name}: {a['pairs']} pairs on {a['both_found_face']} photos where both found a face "
                     f"(faces found: ours {a['faces_found']['ours']}, reference {a['faces_found']['reference']} "
                     f"of {a['images']})")
        for who in ("ours_int8", "reference_float32") if "ours_int8" in a else ():
            lines.append(f"  {who:<18} best accuracy {100 * a[who]['best_accuracy']:6.2f}%  AUC {a[who]['auc']:.4f}  "
                         f"TAR@FAR=0.001 {100 * a[who]['tar_at_far_0.001']:6.2f}%")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--margin", type=int, default=0,
                    help="MTCNN margin of the reference: 0 is facenet-pytorch's default and scored best here; "
                         "Sandberg validated with 32")
    ap.add_argument("--detector", choices=["auto", "short", "full"], default="auto", help="our BlazeFace model")
    args = ap.parse_args()
    r = run(args.quick, margin=args.margin, detector=args.detector)
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
