"""Per-frame cost of the liveness defence against the per-frame cost of the existing pipeline.

    .venv/bin/python -m benchmarks.liveness [--json out.json] [--quick] [--threads 2] [--mesh-threads 1]

On the frames of a real clip (../shared/data/videos, resampled to 15 fps and
640 px wide at most): FaceMesh on the detected face (ROI crop + inference),
the judge's ``observe`` (flatness cue, homography fits), and for comparison
detect (BlazeFace auto) + align + embed (int8 FaceNet) on the same frames, all
in this process and in the loop's order (``kiosk.loop.KioskLoop.process``: detect, the quality
gates, which align the face for the embedder when its geometry passes, FaceMesh, embed, the judge).
Figures are medians with min and max over the frames.

Then the cost per camera frame as the loop pays it: the same frames stamped at 30 fps, detect, the
gates and embed on each (untimed), FaceMesh on the frames the judge says are due (``sample_hz`` 15: every
other frame), the last result reused in between, for a track that never reaches a verdict (the
worst case): the mean per camera frame and the median cost of a frame that runs FaceMesh. Twice: back
to back (each frame as soon as the last is done: a board that cannot keep up with its camera) and paced
(each frame at its camera time: a loop faster than its camera, which waits between frames while the
interpreters' worker threads fall asleep; a door on this kind of machine).
The judge gets each frame's pixels as in the loop (it keeps a copy of the pixels under the face's
canonical crop on every sampled frame); the eye-band check, cutting the two crops included, runs only
on a pair the landmarks count as parallax, so it is timed apart, per pair, on pairs of the clip one
second apart: as the flatness cue runs it (the band's two halves aligned at once, one on a worker
thread) and, as the baseline, the halves one after the other, alternating. Last, FaceMesh before the embedder
(the loop's order) against after it, alternating over three passes: FaceMesh's cost and the whole
frame's, so that what FaceMesh saves is not merely moved to the embedder.

Everything above times the liveness work itself, FaceMesh run in turn. The loop runs FaceMesh on a worker
thread while the embedder runs (``kiosk.liveness.background``), so what liveness costs the loop is measured
last, as the difference it makes to the whole frame through ``KioskLoop.process``: liveness off, FaceMesh on
the worker (the loop's way), FaceMesh in turn (the baseline), alternating, back to back and paced
(``benchmarks.liveness_loop``, which also runs alone).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.machine import machine
from benchmarks.report import finish
from kiosk.artifacts import models_dir
from kiosk.liveness import regions
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.landmarks import build_landmarker
from kiosk.liveness.prompters import LogPrompter
from kiosk.liveness.settings import LivenessSettings
from kiosk.vision.boxes import Face, primary_face
from kiosk.vision.pipeline import FacePipeline, build_pipeline
from kiosk.vision.quality import QualityConfig, check_geometry, sharpness
from kiosk.vision.runtime import load_runtime

CAMERA_FPS = 30.0  # a Raspberry Pi camera module's video configuration, and most webcams
GOAL_MS = 2.0
CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "LivePortrait" / "driving" / "d3.mp4"


def frames(path: Path, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    step = max(1, round((cap.get(cv2.CAP_PROP_FPS) or 30.0) / 15.0))
    out: list[np.ndarray] = []
    i = 0
    while len(out) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            scale = min(1.0, 640 / bgr.shape[1])
            out.append(cv2.cvtColor(cv2.resize(bgr, None, fx=scale, fy=scale), cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    if not out:
        raise SystemExit(f"no frames read from {path}")
    return out


def gates(pipeline: FacePipeline, rgb: np.ndarray, face: Face) -> np.ndarray | None:
    """What ``KioskLoop.process`` does to a face before FaceMesh: the geometry gates, and for a face that
    passes them its aligned crop for the embedder and the sharpness gate (reading the face's pixels:
    FaceMesh's crop then finds them in the caches). The crop, or None when the geometry failed (the loop
    then aligns the face after FaceMesh, for the embedder)."""
    if check_geometry(face, rgb.shape, QualityConfig()) is not None:
        return None
    crop = pipeline.crops(rgb, [face])[0]
    sharpness(crop)
    return crop


def embed(pipeline: FacePipeline, rgb: np.ndarray, face: Face, crop: np.ndarray | None) -> None:
    """The loop's embedding after FaceMesh: the crop the gates cut, or one cut now."""
    pipeline.embedder.embed([crop if crop is not None else pipeline.crops(rgb, [face])[0]])


def stats(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 3), "min_ms": round(min(samples), 3),
            "max_ms": round(max(samples), 3), "n": len(samples)}


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    return out.stdout.strip() or "unknown"


def run(quick: bool, threads: int, clip: Path, mesh_threads: int | None = None) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 2)  # other work on the machine inflates every figure
    video = frames(clip, 40 if quick else 160)
    pipeline, _ = build_pipeline(models_dir() / "facenet_int8.tflite", threads=threads)
    asked_mesh_threads = mesh_threads
    mesh_threads = threads if mesh_threads is None else mesh_threads
    landmarker = build_landmarker(threads=mesh_threads)
    judge = LivenessJudge(LivenessSettings(mode="passive"), time.monotonic, LogPrompter(), random.Random(0))
    rt = load_runtime()
    pipe, mesh, judged, both, marks, shown = [], [], [], [], [], []
    verdicts: dict[str, int] = {}
    for k in range(2):  # warm-up
        pipeline.embed(video[k], pipeline.detect(video[k])[:1])
    for i, rgb in enumerate(video):
        # in the loop's order: detect, the gates, FaceMesh, embed, then the judge
        t0 = time.perf_counter()
        face = primary_face(pipeline.detect(rgb))
        if face is None:
            continue
        crop = gates(pipeline, rgb, face)
        t1 = time.perf_counter()
        lm = landmarker.landmarks(rgb, face)
        t2 = time.perf_counter()
        embed(pipeline, rgb, face, crop)
        t3 = time.perf_counter()
        marks.append(lm)
        shown.append(rgb)
        result = judge.observe(1, lm, now=i / 15.0, frame=rgb)
        t4 = time.perf_counter()
        pipe.append((t1 - t0 + t3 - t2) * 1000)
        mesh.append((t2 - t1) * 1000)
        judged.append((t4 - t3) * 1000)
        both.append((t2 - t1 + t4 - t3) * 1000)
        verdicts[result.verdict.value] = verdicts.get(result.verdict.value, 0) + 1
    # Steady state of a track that never reaches a verdict: the judge's buffer stays full (the worst case).
    undecided = LivenessJudge(LivenessSettings(mode="passive", min_live_residual=1.0, min_motion=1.0),
                              time.monotonic, LogPrompter(), random.Random(0))
    pending = []
    for i, (lm, rgb) in enumerate(zip(marks, shown)):
        t = time.perf_counter()
        undecided.observe(1, lm, now=i / 15.0, frame=rgb)
        pending.append((time.perf_counter() - t) * 1000)
    # The eye-band check runs only on a pair the landmarks count as parallax (a handful per approach):
    # its cost per pair, on pairs one second apart, cutting the two crops from what the judge keeps of
    # each sampled frame (``regions.CropSource``) included.
    band: list[float] = []
    band_serial: list[float] = []
    pool = ThreadPoolExecutor(max_workers=1)  # as the flatness cue runs it: one half on a second core
    bar = LivenessSettings().planar_band_max
    for n, i in enumerate(range(0, len(marks) - 15, 5)):
        la, lb = marks[i], marks[i + 15]
        a = None if la is None else regions.crop_source(shown[i], la)
        b = None if lb is None else regions.crop_source(shown[i + 15], lb)
        if a is not None and b is not None:
            # the halves in parallel (the loop's way) and one after the other (the baseline), alternating
            for run_pool in ((pool, None) if n % 2 == 0 else (None, pool)):
                t = time.perf_counter()
                regions.misalignment(a.crop(), b.crop(), bar, pool=run_pool)
                (band if run_pool is not None else band_serial).append((time.perf_counter() - t) * 1000)
    pool.shutdown()
    worst = [m + p for m, p in zip(mesh, pending)]
    # The floor under all of it: FaceMesh's inference alone, back to back on one input (no crop, no other
    # model in between), which no change to the code around the model can go below.
    floor = []
    face = primary_face(pipeline.detect(shown[-1])) if shown else None
    if face is not None:
        landmarker.landmarks(shown[-1], face)  # fills the input tensor
        for _ in range(20 if quick else 200):
            t = time.perf_counter()
            landmarker.interpreter.invoke()
            floor.append((time.perf_counter() - t) * 1000)
    camera = per_camera_frame(landmarker, pipeline, video, CAMERA_FPS)
    paced = per_camera_frame(landmarker, pipeline, video, CAMERA_FPS, paced=True)
    orders = compare_orders(landmarker, pipeline, video)
    from benchmarks import liveness_loop

    through_loop = {how: liveness_loop.run(quick, threads, asked_mesh_threads,
                                           how == "paced", clip)
                    for how in ("back_to_back", "paced")}
    res: dict[str, Any] = {"machine": machine(), "commit": commit(), "load_avg_1m_at_start": load,
                           "runtime": f"{rt.name} {rt.version}", "threads": threads,
                           "clip": str(clip.name), "frames": len(pipe), "frame": f"{video[0].shape[1]}x{video[0].shape[0]}",
                           "stages": {"pipeline_detect_align_embed": stats(pipe), "landmarks": stats(mesh),
                                      "judge_observe": stats(judged), "judge_observe_no_verdict": stats(pending),
                                      "liveness_total": stats(both), "liveness_total_no_verdict": stats(worst),
                                      "eye_band_check_per_parallax_pair": stats(band),
                                      "eye_band_check_per_parallax_pair_halves_in_turn": stats(band_serial),
                                      "facemesh_inference_alone_back_to_back": stats(floor)},
                           "verdict_frames": verdicts, "camera": camera, "camera_paced": paced, "orders": orders,
                           "through_the_loop": through_loop,
                           "mesh_threads": mesh_threads}
    s = res["stages"]
    res["ratio_liveness_over_pipeline"] = round(s["liveness_total_no_verdict"]["median_ms"]
                                                / s["pipeline_detect_align_embed"]["median_ms"], 3)
    return res


def per_camera_frame(landmarker: Any, pipeline: Any, video: list[np.ndarray], fps: float,
                     paced: bool = False) -> dict[str, Any]:
    """Liveness cost per camera frame as the loop pays it: the judge's ``due`` decides which frames
    get FaceMesh (``sample_hz``), the others reuse the last result. Worst case: a track that never
    reaches a verdict. The same frames are stamped ``fps`` apart, three passes, the median kept. Detect,
    the gates and embed run (untimed) in the loop's order: detect, the gates, FaceMesh, embed, the judge.
    FaceMesh runs before the embedder, which would otherwise have pushed its weights and the frame out
    of the caches.

    Back to back (``paced`` False) each frame starts when the last is done, as on a board that cannot
    keep up with its camera. ``paced``: each frame starts at its camera time, as at a door whose loop is
    faster than the camera: the loop waits between frames, and the interpreters' worker threads fall
    asleep and the caches cool meanwhile, which costs the next frame more."""
    faces = [primary_face(pipeline.detect(rgb)) for rgb in video]
    passes = []
    for _ in range(3):
        judge = LivenessJudge(LivenessSettings(mode="passive", min_live_residual=1.0, min_motion=1.0),
                              time.monotonic, LogPrompter(), random.Random(0))
        costs: list[float] = []
        sampled: list[float] = []
        start = time.perf_counter()
        for k, (rgb, face) in enumerate(zip(video, faces)):
            if face is None:
                continue
            now = k / fps
            if paced and (wait := start + now - time.perf_counter()) > 0:
                time.sleep(wait)
            pipeline.detect(rgb)  # untimed: the loop's own work runs around the liveness work, in its order
            crop = gates(pipeline, rgb, face)
            t = time.perf_counter()
            due = judge.due(1, now)
            lm = landmarker.landmarks(rgb, face) if due else None
            spent = time.perf_counter() - t
            embed(pipeline, rgb, face, crop)
            t = time.perf_counter()
            if due:
                judge.observe(1, lm, now=now, frame=rgb)
            else:
                judge.current(1)
            costs.append((spent + time.perf_counter() - t) * 1000)
            if due:
                sampled.append(costs[-1])
        passes.append((statistics.fmean(costs), costs, sampled))
    means = sorted(p[0] for p in passes)
    _, costs, sampled = passes[[p[0] for p in passes].index(means[1])]  # the median pass, not the fastest
    return {"fps": fps, "paced": paced, "frames": len(costs), "meshed": len(sampled), "passes": 3,
            "mean_ms": round(means[1], 3), "mean_ms_passes": [round(m, 3) for m in means],
            "sampled_frame_median_ms": round(statistics.median(sampled), 3),
            "p90_ms": round(float(np.percentile(costs, 90)), 3), "goal_ms": GOAL_MS}


def compare_orders(landmarker: Any, pipeline: Any, video: list[np.ndarray], passes: int = 3) -> dict[str, Any]:
    """FaceMesh before the embedder (the loop's order) against after it (the order before b1268e1),
    alternating, on the same frames: FaceMesh's median and the whole frame's (detect, FaceMesh,
    embed), so that what FaceMesh saves is not just moved to the embedder."""
    out: dict[str, Any] = {"before_embedder": [], "after_embedder": []}
    for _ in range(passes):
        for order in ("before_embedder", "after_embedder"):
            mesh, whole = [], []
            for rgb in video:
                t0 = time.perf_counter()
                face = primary_face(pipeline.detect(rgb))
                if face is None:
                    continue
                crop = gates(pipeline, rgb, face)
                if order == "before_embedder":
                    t1 = time.perf_counter()
                    landmarker.landmarks(rgb, face)
                    t2 = time.perf_counter()
                    embed(pipeline, rgb, face, crop)
                else:
                    embed(pipeline, rgb, face, crop)
                    t1 = time.perf_counter()
                    landmarker.landmarks(rgb, face)
                    t2 = time.perf_counter()
                mesh.append((t2 - t1) * 1000)
                whole.append((time.perf_counter() - t0) * 1000)
            out[order].append({"facemesh_median_ms": round(statistics.median(mesh), 3),
                               "frame_median_ms": round(statistics.median(whole), 3)})
    return out


def table(res: dict[str, Any]) -> str:
    lines = [f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, {res['runtime']}, "
             f"{res['threads']} threads, {res['frames']} frames {res['frame']} of {res['clip']}",
             f"{'stage':<30}{'median ms':>10}{'min':>9}{'max':>9}"]
    for k, v in res["stages"].items():
        lines.append(f"{k:<30}{v['median_ms']:>10.2f}{v['min_ms']:>9.2f}{v['max_ms']:>9.2f}")
    lines.append(f"liveness (no verdict, worst case) / pipeline per frame: {res['ratio_liveness_over_pipeline']}x; "
                 f"verdicts per frame: "
                 f"{res['verdict_frames']}")
    at_once = res["stages"]["eye_band_check_per_parallax_pair"]["median_ms"]
    in_turn = res["stages"]["eye_band_check_per_parallax_pair_halves_in_turn"]["median_ms"]
    lines.append(f"eye band per parallax pair, halves at once / in turn: {at_once / in_turn:.2f}x (medians)")
    lines.append(f"load average at start {res['load_avg_1m_at_start']} (commit {res['commit']}); "
                 f"FaceMesh at {res['mesh_threads']} thread(s)")
    for key, how in (("camera", "back to back"), ("camera_paced", "paced at the camera's rate")):
        c = res[key]
        lines.append(f"the liveness work by itself, FaceMesh in turn (not what the loop pays: see the last lines), "
                     f"camera at {c['fps']:.0f} fps, {how}, no verdict (worst case): FaceMesh on {c['meshed']} of "
                     f"{c['frames']} frames; mean per camera frame {c['mean_ms']:.2f} ms (median of 3 passes), "
                     f"each sampled frame {c['sampled_frame_median_ms']:.2f} ms (median)")
    for order, runs in res["orders"].items():
        mesh = ", ".join(f"{r['facemesh_median_ms']:.2f}" for r in runs)
        whole = ", ".join(f"{r['frame_median_ms']:.2f}" for r in runs)
        lines.append(f"FaceMesh {order.replace('_', ' ')}: FaceMesh {mesh} ms; whole frame {whole} ms (medians, per pass)")
    from benchmarks import liveness_loop

    for how in res.get("through_the_loop", {}).values():
        lines.append(liveness_loop.table(how))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="few frames (keeps the script working in CI)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mesh-threads", type=int, help="FaceMesh's interpreter threads (default: --threads)")
    ap.add_argument("--clip", type=Path, default=CLIP, help="a real video clip")
    args = ap.parse_args()
    res = run(args.quick, args.threads, args.clip, args.mesh_threads)
    return finish(table(res), res, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
