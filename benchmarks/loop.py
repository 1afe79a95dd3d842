"""The real loop on replayed walk-ups, and the service's footprint.

    .venv/bin/python -m benchmarks.loop [--quick] [--json out.json]

Frame-to-decision latency and frames per second through ``KioskLoop`` (the
demo's sequences, lockstep replay, mock relay), then ``kiosk run`` as a
process: time from exec to READY=1 on a real notify socket, and its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.machine import machine
from benchmarks.report import save
from kiosk.artifacts import dataset_path, models_dir
from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.config import load_settings
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.demo.run import ENROLLED, build_sequences, enroll
from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from kiosk.localenroll import enroll_signed
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.mqtt.keys import write_private_key
from kiosk.store import generate_key
from kiosk.vision.pipeline import build_pipeline
from kiosk.vision.quality import QualityConfig


def loop_latency(quick: bool) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory

    pipeline, card = build_pipeline()
    root = dataset_path("5-celebrity")
    rows, labels = [], []
    for person in ENROLLED:
        e = enroll(pipeline, root, person)
        rows.append(e)
        labels += [person] * len(e)
    gallery = Gallery(np.concatenate(rows), labels)
    seqs = build_sequences(pipeline, root, np.random.default_rng(7))
    frames = [f for s in seqs for f in s.frames]
    if quick:
        frames = frames[:120]
    clock = SimClock()
    with tempfile.TemporaryDirectory() as tmp:
        events = EventSink(Path(tmp) / "audit.jsonl")
        door = build_door(17, active_high=True, timing=DoorTiming(4.0), clock=clock, emit=events,
                          pin_factory=MockFactory())
        capture = Capture(ReplaySource(frames, fps=15, clock=clock), events, lockstep=True)
        results: list[FrameResult] = []
        loop = KioskLoop(capture, pipeline, lambda: gallery, card.threshold,
                         DecisionEngine(DecisionConfig(frames_to_grant=3, window_s=1.0, liveness=False), clock), door, events,
                         QualityConfig(min_face_px=60.0), on_result=results.append)
        capture.start()
        t0 = time.perf_counter()
        loop.run(threading.Event(), until_end=True)
        wall = time.perf_counter() - t0
        capture.stop()
        door.close()
        events.close()
    with_face = [r.latency_ms for r in results if any(m is not None for m in r.matches)]
    decisions = [r.latency_ms for r in results if r.decision is not None]
    return {"frames": len(results), "wall_s": round(wall, 3), "fps": round(len(results) / wall, 1),
            "frame_ms_all_median": round(statistics.median(r.latency_ms for r in results), 2),
            "frame_ms_with_face_median": round(statistics.median(with_face), 2) if with_face else None,
            "frame_ms_with_face_max": round(max(with_face), 2) if with_face else None,
            "decision_frame_ms": [round(d, 2) for d in decisions], "decisions": len(decisions)}


def footprint(runs: int) -> dict[str, Any]:
    """Exec -> READY=1 and peak RSS of `kiosk run` on a replayed camera, over several runs."""
    pipeline, card = build_pipeline()
    root = dataset_path("5-celebrity")
    ready, rss = [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        replay = tmp / "replay"
        replay.mkdir()
        for k, f in enumerate(build_sequences(pipeline, root, np.random.default_rng(3))[0].frames[:40]):
            cv2.imwrite(str(replay / f"{k:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        generate_key(tmp / "store.key")
        admin_pub = write_private_key(tmp / "admin.key", Ed25519PrivateKey.generate())
        (tmp / "kiosk.toml").write_text(
            f'[camera]\ntype = "replay"\npath = "{replay}"\nfps = 15\n[door]\npin_factory = "mock"\n'
            f'[store]\npath = "{tmp / "kiosk.db"}"\nkey_file = "{tmp / "store.key"}"\n'
            f'[events]\naudit_log = "{tmp / "audit.jsonl"}"\n[quality]\nmin_face_px = 60\n'
            f'[mqtt]\nadmin_keys = ["{admin_pub}"]\n')
        enroll_signed(load_settings(tmp / "kiosk.toml"), tmp / "admin.key", "ben", "Ben",
                      enroll(pipeline, root, "ben_afflek"), card.fingerprint)
        kiosk = shutil.which("kiosk") or str(Path(sys.executable).with_name("kiosk"))
        for i in range(runs):
            sock_path = tmp / f"notify{i}.sock"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(sock_path))
            sock.settimeout(60)
            env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "KIOSK_MODELS_DIR": str(models_dir())}
            t0 = time.monotonic()
            proc = subprocess.Popen([kiosk, "run", "--config", str(tmp / "kiosk.toml"), "--until-end"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while b"READY=1" not in sock.recv(4096):
                pass
            ready.append(time.monotonic() - t0)
            if proc.wait() != 0:
                raise RuntimeError(f"kiosk run exited with status {proc.returncode}")
            # ru_maxrss of a child carries the parent's high-water mark across fork/exec, so
            # the service reports its own VmHWM in its last event instead
            stopped = [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines()][-1]
            rss.append(stopped["stats"]["peak_rss_mib"])
            sock.close()
    return {"runs": runs, "ready_s_median": round(statistics.median(ready), 3), "ready_s_max": round(max(ready), 3),
            "peak_rss_mib_median": round(statistics.median(rss), 1), "peak_rss_mib_max": round(max(rss), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {"machine": machine(), "loop": loop_latency(args.quick), "footprint": footprint(2 if args.quick else 5)}
    lp, fp = res["loop"], res["footprint"]
    print(f"loop: {lp['frames']} frames in {lp['wall_s']} s = {lp['fps']} frames/s; per frame median "
          f"{lp['frame_ms_all_median']} ms, with a face {lp['frame_ms_with_face_median']} ms "
          f"(max {lp['frame_ms_with_face_max']}); decision frames {lp['decision_frame_ms']} ms")
    print(f"kiosk run: exec to READY=1 median {fp['ready_s_median']} s (max {fp['ready_s_max']}); peak RSS median "
          f"{fp['peak_rss_mib_median']} MiB (max {fp['peak_rss_mib_max']}) over {fp['runs']} runs")
    save(res, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
