"""``kiosk-convert``: FaceNet h5 -> full-int8 TFLite with a parity report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.artifacts import artifact_path, dataset_path, models_dir, sha256_file
from kiosk.errors import ConversionError, KioskError
from kiosk.vision.align import DEFAULT_ALIGN
from kiosk.vision.modelcard import DEFAULT_MODEL, card_path

logger = logging.getLogger("kiosk.convert")

SHARED_JOHNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "johns"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-convert", description=__doc__)
    p.add_argument("--weights", type=Path, help="facenet_keras.h5 (default: the fetched artifact)")
    p.add_argument("--calibration", type=Path, help="folder of photos, one sub-folder per person "
                   "(default: the fetched 5-celebrity train images)")
    p.add_argument("--eval", type=Path, action="append", default=None, metavar="DIR",
                   help="labelled identity folder for accuracy and parity (repeatable; default: "
                        "5-celebrity and ../shared/data/johns when present)")
    p.add_argument("--io", choices=["int8", "uint8", "float"], default="int8", help="input/output tensor type")
    p.add_argument("--out", type=Path, help=f"output model (default: models/{DEFAULT_MODEL})")
    p.add_argument("--no-float", action="store_true", help="do not also write facenet_float32.tflite")
    p.add_argument("--edgetpu", action="store_true", help="also compile for the Coral Edge TPU (edgetpu_compiler)")
    p.add_argument("--limit", type=int, help="use at most this many calibration images (quick runs)")
    p.add_argument("--score-table", type=Path, default=None,
                   help="score table whose summary and provenance go into the model card "
                        "(default: kiosk/policy/score_table.json)")
    p.add_argument("--attach-score-table", action="store_true",
                   help="only (re)write the score-model block of the existing card beside --out; "
                        "the model itself is not touched")
    return p


def _score_block(table_path: Path | None, model: Path) -> dict[str, Any] | None:
    """The card's ``score_model`` block, or None (with a warning) when there is no table."""
    from converter.report import score_model_block
    from kiosk.policy.scoremodel import TABLE_PATH

    path = table_path or TABLE_PATH
    if not path.is_file():
        logger.warning("no score table at %s: the card carries no score model (run python -m benchmarks.score_model)",
                       path)
        return None
    try:
        table = json.loads(path.read_text())
        return score_model_block(table, sha256_file(path), sha256_file(model), path.name)
    except (OSError, ValueError, KioskError) as exc:
        raise ConversionError(f"score table {path} is unusable ({exc}); recompute it with "
                              "python -m benchmarks.score_model") from exc


def attach_score_table(model: Path, table_path: Path | None = None) -> dict[str, Any]:
    """Rewrite only the ``score_model`` block of ``model``'s card; the model file is left as it is."""
    path = card_path(model)
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"cannot read the model card {path} ({exc}): run kiosk-convert first") from exc
    block = _score_block(table_path, model)
    if block is None:
        raise ConversionError(f"no score table at {table_path}: run python -m benchmarks.score_model")
    card["score_model"] = block
    _write_atomic(path, (json.dumps(card, indent=2) + "\n").encode())
    return card


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _tensor_info(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zp = detail["quantization"]
    return {"shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale), "zero_point": int(zp)}


def _edgetpu(model: Path) -> Path:
    exe = shutil.which("edgetpu_compiler")
    if exe is None:
        raise ConversionError("--edgetpu needs edgetpu_compiler on PATH (Coral's Debian package "
                              "edgetpu-compiler, x86_64 only); the int8 model was written without it")
    proc = subprocess.run([exe, "-s", "-o", str(model.parent), str(model)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConversionError(f"edgetpu_compiler failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return model.with_name(model.stem + "_edgetpu.tflite")


def convert(args: argparse.Namespace) -> dict[str, Any]:
    from converter.calibrate import collect_crops
    from converter.export import to_float_tflite, to_int8_tflite
    from converter.facenet import build_facenet
    from converter.report import MIN_FLOAT_AUC, accuracy_block, choose_threshold, pair_scores, parity
    from converter.weights import load_h5_weights
    from kiosk.evaluation import verification_report
    from kiosk.progress import Progress
    from kiosk.vision.embedder import Embedder
    from kiosk.vision.pipeline import build_detector
    from kiosk.vision.quant import l2_normalize, prewhiten
    from kiosk.vision.runtime import load_runtime

    t0 = time.monotonic()
    root = models_dir()
    weights = args.weights or artifact_path("facenet_keras")
    out = args.out or root / DEFAULT_MODEL
    out.parent.mkdir(parents=True, exist_ok=True)
    calib_dir = args.calibration or dataset_path("5-celebrity") / "train"
    eval_dirs = args.eval or [dataset_path("5-celebrity"), *([SHARED_JOHNS] if SHARED_JOHNS.is_dir() else [])]

    detector = build_detector("auto")
    model = build_facenet()
    n_layers = load_h5_weights(model, weights)
    logger.info("loaded %d weighted layers from %s", n_layers, weights)

    def float_embed(crops: list[np.ndarray]) -> np.ndarray:
        x = np.stack([prewhiten(c) for c in crops])
        return l2_normalize(model.predict(x, batch_size=16, verbose=0))

    sets = [collect_crops(d.name if d.name != "5-celebrity" else "5-celebrity", d, detector) for d in eval_dirs]
    float_emb = {}
    for s in sets:
        if len(set(s.labels)) < 2:
            raise ConversionError(f"evaluation set {s.root} needs at least two people with a detectable face")
        float_emb[s.name] = float_embed(s.crops)
        scores, same = pair_scores(float_emb[s.name], s.labels)
        rep = verification_report(scores, same, 0.5)
        logger.info("float model on %s: AUC %.4f, best accuracy %.4f", s.name, rep.auc, rep.best_accuracy)
        if rep.auc < MIN_FLOAT_AUC:
            raise ConversionError(
                f"the float model does not separate people on {s.root} (AUC {rep.auc:.3f} < {MIN_FLOAT_AUC}): "
                "the weights were mis-loaded or the preprocessing is wrong; refusing to quantise")

    calib = collect_crops("calibration", calib_dir, detector)
    crops = calib.crops[: args.limit] if args.limit else calib.crops
    bar = Progress(len(crops), "calibrating int8")
    tflite = to_int8_tflite(model, [prewhiten(c) for c in crops], io=args.io, progress=bar)
    _write_atomic(out, tflite)
    float_path = out.with_name("facenet_float32.tflite")
    if not args.no_float:
        _write_atomic(float_path, to_float_tflite(model))

    runtime = load_runtime()
    embedder = Embedder(runtime.interpreter(out))
    interp = embedder.interpreter
    results: dict[str, Any] = {"parity": {}, "accuracy": {}}
    pooled_scores, pooled_same = [], []
    int8_emb = {}
    for s in sets:
        bar = Progress(len(s.crops), f"{s.name}: int8 embeddings")
        embs = []
        for k, c in enumerate(s.crops, start=1):
            embs.append(embedder.embed([c])[0])
            bar(k)
        int8_emb[s.name] = np.stack(embs)
        results["parity"][s.name] = parity(float_emb[s.name], int8_emb[s.name])
        sc, sm = pair_scores(int8_emb[s.name], s.labels)
        pooled_scores.append(sc)
        pooled_same.append(sm)
    threshold = choose_threshold(np.concatenate(pooled_scores), np.concatenate(pooled_same))
    for s in sets:
        fl = accuracy_block(float_emb[s.name], s.labels, threshold["value"])
        q = accuracy_block(int8_emb[s.name], s.labels, threshold["value"])
        results["accuracy"][s.name] = {
            "images": len(s.crops), "skipped": len(s.skipped), "float32": fl, "int8": q,
            "best_accuracy_drop_points": round(100 * (fl["best_accuracy"] - q["best_accuracy"]), 3)}

    import tensorflow as tf

    card = {
        "format": 1,
        "model": out.name,
        "sha256": sha256_file(out),
        "size_bytes": out.stat().st_size,
        "architecture": "Inception-ResNet-v1 (FaceNet), Sandberg 20170512-110547, MS-Celeb-1M",
        "weights": {"file": weights.name, "sha256": sha256_file(weights), "layers_loaded": n_layers},
        "quantization": "full integer int8 (TFLITE_BUILTINS_INT8), per-channel weights, batch 1",
        "io": args.io,
        "input": _tensor_info(interp.get_input_details()[0]),
        "output": _tensor_info(interp.get_output_details()[0]),
        "embedding_size": embedder.size,
        "preprocessing": {"align": DEFAULT_ALIGN.as_dict()},
        "preprocessing_notes": "BlazeFace short-range detection, crop per kiosk.vision.align, RGB, "
                               "prewhiten (x - mean) / max(std, 1/sqrt(N)); L2-normalise the output in numpy",
        "calibration": {"folder": str(calib_dir), "images": len(calib.crops) + len(calib.skipped),
                        "faces_used": len(crops), "skipped": calib.skipped, "fingerprint": calib.fingerprint},
        "eval_sets": {s.name: {"folder": str(s.root), "fingerprint": s.fingerprint, "skipped": s.skipped}
                      for s in sets},
        **results,
        "threshold": threshold,
        "score_model": _score_block(args.score_table, out),
        "float_model": ({"file": float_path.name, "sha256": sha256_file(float_path)} if not args.no_float else None),
        "converter": {"tensorflow": tf.__version__, "python": sys.version.split()[0],
                      "seconds": round(time.monotonic() - t0, 1)},
    }
    if not args.no_float:
        float_card = {**{k: card[k] for k in ("format", "architecture", "weights", "preprocessing",
                                              "preprocessing_notes", "threshold", "embedding_size")},
                      "model": float_path.name, "sha256": sha256_file(float_path), "quantization": "none (float32)"}
        card_path(float_path).write_text(json.dumps(float_card, indent=2) + "\n")
    card_path(out).write_text(json.dumps(card, indent=2) + "\n")
    if args.edgetpu:
        compiled = _edgetpu(out)
        card["edgetpu_model"] = {"file": compiled.name, "sha256": sha256_file(compiled)}
        card_path(out).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.attach_score_table:
            model = args.out or models_dir() / DEFAULT_MODEL
            card = attach_score_table(model, args.score_table)
            sm = card["score_model"]
            print(f"{card_path(model)}: score model from {sm['file']} ({sm['note']})")
            return 0
        card = convert(args)
    except KioskError as exc:
        print(f"kiosk-convert: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps({k: card[k] for k in ("model", "sha256", "input", "output", "parity", "threshold")}, indent=2))
    for name, acc in card["accuracy"].items():
        print(f"{name}: float32 best {acc['float32']['best_accuracy']:.4f}, int8 best {acc['int8']['best_accuracy']:.4f}"
              f" (drop {acc['best_accuracy_drop_points']:.2f} points), int8 AUC {acc['int8']['auc']:.4f}")
    return 0
