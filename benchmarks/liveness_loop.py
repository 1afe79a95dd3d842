"""What liveness adds to the loop's frame: ``KioskLoop.process`` with liveness off, and on with FaceMesh on
a worker thread while the embedder runs (the loop's way) or in turn before it (the baseline).

    .venv/bin/python -m benchmarks.liveness_loop [--quick] [--paced] [--mesh-threads N] [--json out.json]

The frames of a real clip (as ``benchmarks.liveness``) stamped at 30 fps on a simulated clock, each given to
the real loop (detect, tracker, gates, FaceMesh on the frames the judge says are due, embed, the judge,
the decision, a relay on gpiozero's mock pins), for a track that never reaches a verdict (the worst case:
FaceMesh every other frame for as long as the face is there). Nobody is enrolled, so every mode takes the
same decision path. ``--all-ways`` adds the worker at the in-turn thread count and in turn at the worker's
(the loop's way changes both). The modes alternate pass by pass, and what liveness adds is each pass's figure
less that of the pass with liveness off in the same round: on the frames that ran FaceMesh (the median of
the whole frame's time against the same frames' with liveness off) and per camera frame (the means).
``--paced`` starts each frame at its camera time (a loop faster than its camera, which waits between
frames); otherwise frames run back to back (a board that cannot keep up).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.liveness import CLIP, GOAL_MS, commit, frames
from benchmarks.machine import machine
from benchmarks.report import finish
from kiosk.artifacts import models_dir
from kiosk.camera.base import Frame
from kiosk.camera.replay import SimClock
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from kiosk.liveness.background import mesh_threads as mesh_threads_for
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.landmarks import Landmarker, build_landmarker
from kiosk.liveness.prompters import LogPrompter
from kiosk.liveness.settings import LivenessSettings
from kiosk.loop import KioskLoop
from kiosk.match import Gallery
from kiosk.vision.boxes import Face
from kiosk.vision.pipeline import FacePipeline, build_pipeline
from kiosk.vision.quality import QualityConfig

CAMERA_FPS = 30.0
MODES = ("off", "at_once", "in_turn")
# --all-ways: the worker and the thread count apart (the loop's way changes both)
MORE_MODES = ("at_once_turn_threads", "in_turn_worker_threads")


class Counting:
    """The landmarker, counting its calls: which frames ran FaceMesh."""

    def __init__(self, inner: Landmarker) -> None:
        self.inner = inner
        self.calls = 0

    def landmarks(self, rgb: np.ndarray, face: Face) -> Any:
        self.calls += 1
        return self.inner.landmarks(rgb, face)


def one_pass(mode: str, pipeline: FacePipeline, mesh: Counting, video: list[np.ndarray], paced: bool,
             tmp: Path) -> tuple[list[float], list[bool]]:
    """Each frame's time through ``KioskLoop.process`` and whether it ran FaceMesh."""
    from gpiozero.pins.mock import MockFactory

    clock = SimClock()
    events = EventSink(tmp / f"{mode}.jsonl")
    door = build_door(17, active_high=True, timing=DoorTiming(3.0), clock=clock, emit=events,
                      pin_factory=MockFactory())
    stranger = np.random.default_rng(0).normal(size=(1, 128)).astype(np.float32)
    gallery = Gallery(stranger / np.linalg.norm(stranger), ["nobody"])
    liveness: Any = None
    if mode != "off":
        judge = LivenessJudge(LivenessSettings(mode="passive", min_live_residual=1.0, min_motion=1.0),
                              clock, LogPrompter(), random.Random(0))
        liveness = (mesh, judge)
    engine = DecisionEngine(DecisionConfig(liveness=mode != "off"), clock)
    capture: Any = type("NoCapture", (), {"on_lost": None})()
    loop = KioskLoop(capture, pipeline, lambda: gallery, 0.99, engine, door, events, QualityConfig(),
                     liveness=liveness, mesh_worker=mode.startswith("at_once"))
    times: list[float] = []
    meshed: list[bool] = []
    start = time.perf_counter()
    try:
        for k, rgb in enumerate(video):
            clock.now = k / CAMERA_FPS
            if paced and (wait := start + clock.now - time.perf_counter()) > 0:
                time.sleep(wait)
            before = mesh.calls
            t = time.perf_counter()
            loop.process(Frame(rgb, clock.now, k))
            times.append((time.perf_counter() - t) * 1000)
            meshed.append(mesh.calls > before)
            door.tick()
    finally:
        loop.close()
        door.close()
        events.close()
    return times, meshed


def run(quick: bool, threads: int, mesh_threads: int | None, paced: bool, clip: Path,
        rounds: int | None = None, all_ways: bool = False) -> dict[str, Any]:
    video = frames(clip, 40 if quick else 160)
    pipeline, _ = build_pipeline(models_dir() / "facenet_int8.tflite", threads=threads)
    # FaceMesh's threads as the service sets them: one on the worker, the vision threads in turn
    worker_threads, turn_threads = mesh_threads_for(mesh_threads, threads, True), mesh_threads_for(mesh_threads, threads, False)
    meshes = {"off": Counting(build_landmarker(threads=turn_threads))}
    meshes["in_turn"] = meshes["off"]
    meshes["at_once"] = (meshes["off"] if worker_threads == turn_threads
                         else Counting(build_landmarker(threads=worker_threads)))
    meshes["at_once_turn_threads"], meshes["in_turn_worker_threads"] = meshes["in_turn"], meshes["at_once"]
    modes = MODES + MORE_MODES if all_ways else MODES
    rounds = rounds or (2 if quick else 9)
    added: dict[str, list[float]] = {m: [] for m in modes[1:]}
    added_mean: dict[str, list[float]] = {m: [] for m in modes[1:]}
    whole: dict[str, list[float]] = {m: [] for m in modes}
    meshed_frames = 0
    with tempfile.TemporaryDirectory() as d:
        one_pass("off", pipeline, meshes["off"], video[:10], False, Path(d))  # warm-up
        for r in range(rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]  # each mode first as often as the others
            got = {m: one_pass(m, pipeline, meshes[m], video, paced, Path(d)) for m in order}
            off_times, _ = got["off"]
            whole["off"].append(statistics.median(off_times))
            for m in modes[1:]:
                times, meshed = got[m]
                idx = [k for k, x in enumerate(meshed) if x]
                meshed_frames = len(idx)
                whole[m].append(statistics.median(times[k] for k in idx))
                added[m].append(statistics.median(times[k] for k in idx)
                                - statistics.median(off_times[k] for k in idx))
                added_mean[m].append(statistics.fmean(times) - statistics.fmean(off_times))

    def summary(xs: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(xs), 3), "min_ms": round(min(xs), 3),
                "max_ms": round(max(xs), 3)}

    return {"machine": machine(), "commit": commit(), "clip": clip.name, "frames": len(video),
            "frames_meshed": meshed_frames, "fps": CAMERA_FPS, "paced": paced, "rounds": rounds,
            "threads": threads, "mesh_threads": {"at_once": worker_threads, "in_turn": turn_threads},
            "goal_ms": GOAL_MS,
            "added_per_sampled_frame": {m: summary(v) for m, v in added.items()},
            "added_per_camera_frame": {m: summary(v) for m, v in added_mean.items()},
            "frame_median_ms": {m: summary(v) for m, v in whole.items()}}


def table(res: dict[str, Any]) -> str:
    how = "paced at the camera's rate" if res["paced"] else "back to back"
    lines = [f"KioskLoop.process, {res['frames']} frames of {res['clip']} at {res['fps']:.0f} fps, {how}, "
             f"{res['rounds']} rounds; FaceMesh on {res['frames_meshed']} frames, at "
             f"{res['mesh_threads']['at_once']} thread(s) on the worker, {res['mesh_threads']['in_turn']} in turn; "
             f"the rest at {res['threads']}",
             f"{'FaceMesh':<42}{'added per sampled frame, ms':>30}{'added per camera frame, ms':>30}"]
    mt = res["mesh_threads"]
    names = {"at_once": f"on the worker, {mt['at_once']} thread(s) (the loop's way)",
             "in_turn": f"in turn, {mt['in_turn']} thread(s) (the baseline)",
             "at_once_turn_threads": f"on the worker, {mt['in_turn']} thread(s)",
             "in_turn_worker_threads": f"in turn, {mt['at_once']} thread(s)"}
    for m, name in names.items():
        if m not in res["added_per_sampled_frame"]:
            continue
        s, c = res["added_per_sampled_frame"][m], res["added_per_camera_frame"][m]
        lines.append(f"{name:<42}{s['median_ms']:>12.2f} ({s['min_ms']:.2f} to {s['max_ms']:.2f})"
                     f"{c['median_ms']:>12.2f} ({c['min_ms']:.2f} to {c['max_ms']:.2f})")
    off = res["frame_median_ms"]["off"]["median_ms"]
    lines.append(f"the whole frame with liveness off: {off:.2f} ms (median of the rounds' medians)")
    s, c, goal = res["added_per_sampled_frame"]["at_once"], res["added_per_camera_frame"]["at_once"], res["goal_ms"]
    lines.append(f"the loop's way adds {s['median_ms']:.2f} ms per sampled frame "
                 f"({'within' if s['median_ms'] <= goal else 'over'} the {goal} ms goal) and {c['median_ms']:.2f} ms "
                 f"per camera frame ({'within' if c['median_ms'] <= goal else 'over'} it), {how}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="few frames and rounds")
    ap.add_argument("--paced", action="store_true", help="each frame at its camera time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mesh-threads", type=int,
                    help="FaceMesh's interpreter threads (default: as the service, 1 on the worker, --threads in turn)")
    ap.add_argument("--rounds", type=int, help="passes per mode (default 9; 2 with --quick)")
    ap.add_argument("--clip", type=Path, default=CLIP, help="a real video clip")
    ap.add_argument("--all-ways", action="store_true",
                    help="also the worker at the in-turn thread count and in turn at the worker's: which of "
                         "the two changes does what")
    args = ap.parse_args()
    res = run(args.quick, args.threads, args.mesh_threads, args.paced, args.clip, args.rounds, args.all_ways)
    return finish(table(res), res, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
