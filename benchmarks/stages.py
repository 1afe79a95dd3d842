"""Per-stage latency of the face pipeline on this machine.

    .venv/bin/python -m benchmarks.stages [--json out.json] [--quick]

Detect (BlazeFace short and full range), align, embed (int8 with XNNPACK,
int8 without, float32), match against a gallery, and model load times. Every
figure is the median of repeated runs with min and max; ratios are between
runs made in this same process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine, timeit
from benchmarks.report import finish
from kiosk.artifacts import dataset_path, models_dir
from kiosk.imageio import read_rgb
from kiosk.match import Gallery
from kiosk.vision.align import DEFAULT_ALIGN, crop_face
from kiosk.vision.boxes import primary_face
from kiosk.vision.embedder import Embedder
from kiosk.vision.pipeline import build_detector
from kiosk.vision.quant import l2_normalize
from kiosk.vision.runtime import load_runtime


def run(quick: bool, threads: int) -> dict[str, Any]:
    repeat = 10 if quick else 50
    root = models_dir()
    photo = sorted((dataset_path("5-celebrity") / "val" / "ben_afflek").glob("*.jpg"))[0]
    frame = read_rgb(photo)
    import cv2

    frame = cv2.resize(frame, (640, 480))  # a camera-sized frame
    rt = load_runtime()
    res: dict[str, Any] = {"machine": machine(), "runtime": f"{rt.name} {rt.version}", "threads": threads,
                           "frame": "640x480", "stages": {}, "load_ms": {}}
    t = time.perf_counter()
    short = build_detector("short", threads=threads)
    res["load_ms"]["detector_short"] = round((time.perf_counter() - t) * 1000, 1)
    full = build_detector("full", threads=threads)
    res["stages"]["detect_short"] = timeit(lambda: short.detect(frame), repeat)
    res["stages"]["detect_full"] = timeit(lambda: full.detect(frame), repeat)
    auto = build_detector("auto", threads=threads)
    empty = np.full_like(frame, 90)
    res["stages"]["detect_auto_face"] = timeit(lambda: auto.detect(frame), repeat)
    res["stages"]["detect_auto_no_face"] = timeit(lambda: auto.detect(empty), repeat)
    face = primary_face(auto.detect(frame))
    assert face is not None, f"no face in {photo}"
    res["stages"]["align"] = timeit(lambda: crop_face(frame, face, DEFAULT_ALIGN), repeat)
    crop = crop_face(frame, face, DEFAULT_ALIGN)
    embedders = {}
    for key, model, xnn in (("embed_int8_xnnpack", "facenet_int8.tflite", True),
                            ("embed_int8_no_xnnpack", "facenet_int8.tflite", False),
                            ("embed_float32_xnnpack", "facenet_float32.tflite", True)):
        t = time.perf_counter()
        embedders[key] = Embedder(rt.interpreter(root / model, num_threads=threads, xnnpack=xnn))
        res["load_ms"][key.replace("embed_", "embedder_")] = round((time.perf_counter() - t) * 1000, 1)
        e = embedders[key]
        res["stages"][key] = timeit(lambda e=e: e.embed([crop]), max(repeat // 2, 5))
    query = embedders["embed_int8_xnnpack"].embed([crop])[0]
    rng = np.random.default_rng(0)
    for n in ((1000,) if quick else (1000, 10_000, 100_000)):
        g = Gallery(l2_normalize(rng.normal(size=(n, 128)).astype(np.float32)), [f"p{i}" for i in range(n)])
        res["stages"][f"match_{n}"] = timeit(lambda g=g: g.match(query, 0.4), repeat)
        res[f"gallery_{n}_mib"] = round(g.matrix.nbytes / 2**20, 2)
    s = res["stages"]
    res["ratios"] = {
        "float32_over_int8_xnnpack": round(s["embed_float32_xnnpack"]["median_ms"] / s["embed_int8_xnnpack"]["median_ms"], 3),
        "int8_no_xnnpack_over_xnnpack": round(s["embed_int8_no_xnnpack"]["median_ms"]
                                              / s["embed_int8_xnnpack"]["median_ms"], 3),
    }
    res["model_bytes"] = {m: (root / m).stat().st_size for m in ("facenet_int8.tflite", "facenet_float32.tflite")}
    return res


def table(res: dict[str, Any]) -> str:
    lines = [f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, Python {res['machine']['python']}, "
             f"{res['runtime']}, {res['threads']} threads, frame {res['frame']}",
             f"{'stage':<26}{'median ms':>10}{'min':>9}{'max':>9}"]
    for k, v in res["stages"].items():
        lines.append(f"{k:<26}{v['median_ms']:>10.2f}{v['min_ms']:>9.2f}{v['max_ms']:>9.2f}")
    lines.append("load ms: " + ", ".join(f"{k} {v}" for k, v in res["load_ms"].items()))
    lines.append("ratios: " + ", ".join(f"{k} {v}x" for k, v in res["ratios"].items()))
    lines.append("model bytes: " + ", ".join(f"{k} {v:,}" for k, v in res["model_bytes"].items()))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="few repetitions (keeps the script working in CI)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    res = run(args.quick, args.threads)
    return finish(table(res), res, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
