"""Partial attacks: a print of an enrolled person's upper face worn over a real, unenrolled face.

    .venv/bin/python -m benchmarks.partial [--json docs/pad_partial.json] [--people 10] [--seed 2026]
                                           [--cut 1.0] [--eye-holes 1.3] [--glare 60] [--quick]
                                           [--configs liveness_on,...] [--camera "low light"]

The attacker is a real person from ../shared/data/videos who answers the head-turn prompt
(``benchmarks.approaches``: the clip and prompt pairs that end live on their own). Over the face
they wear a sheet cut from a victim's photo: forehead, brows and eyes down to the line ``--cut``
of the way from the nasion to the nose tip (``kiosk.pad.partial``; with ``--eye-holes``, its eyes
cut out so that the wearer's real eyes show through; with ``--glare``, glossy paper with a lamp's
reflection that travels across it as the head turns), placed on every frame where
the real head's upper face is, so it turns with the head; the real nose, cheeks, mouth and chin
show below it. The victims are ``--people`` lfw-view1 people (drawn with ``--seed``), enrolled
from their other photos; the sheet comes from their first. Every replay goes through the real
loop three times: with the default configuration; with the eye-band check of
``kiosk.liveness.regions`` disabled (``liveness.planar_band_max = 0``), the kiosk before that check;
and with liveness off, which shows how often recognition alone would let the sheet in. Reported: how often the door opened (95 %
Clopper-Pearson). Times are on the replay's clock (machine-independent).

With ``--camera`` (a preset of ``kiosk.pad.camera_shift``), every frame, the sheet included, is recorded
through that camera (fresh sensor noise on each), and the live approaches are those that end live
through it.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.approaches import commit, data_missing, live_approaches, rate, short_clip, victim_arguments
from benchmarks.machine import machine
from kiosk.pad.camera_shift import PRESETS, ShiftedSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_SECONDS = 16.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    victim_arguments(ap)
    ap.add_argument("--cut", type=float, default=1.0, help="where the sheet ends: 0 nasion, 1 nose tip")
    ap.add_argument("--eye-holes", type=float, default=0.0,
                    help="cut the sheet's eyes out: holes this many times the eye's length (0: none)")
    ap.add_argument("--glare", type=float, default=0.0,
                    help="glossy paper: a lamp's highlight this many grey levels at its peak (0: matte)")
    ap.add_argument("--quick", action="store_true", help="2 approaches, 2 victims")
    ap.add_argument("--camera", default=None, choices=list(PRESETS),
                    help="record every frame through this camera (default: the clips as recorded)")
    ap.add_argument("--configs", default="liveness_on,baseline_eye_band_check_off,baseline_liveness_off",
                    help="which of the three configurations to run, comma-separated (default: all)")
    args = ap.parse_args(argv)
    if args.eye_holes < 0:
        ap.error(f"--eye-holes is a multiple of the eye's length, 0 (none) or more, not {args.eye_holes}")
    if not 0 <= args.glare <= 255:
        ap.error(f"--glare is the highlight's peak in grey levels, 0 (matte) to 255, not {args.glare}")
    if data_missing(DATA, "benchmarks.partial"):
        return 1
    from kiosk.config import Settings
    from kiosk.imageio import read_rgb
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.pad.eval import present_config
    from kiosk.pad.partial import PartialPrintSource
    from kiosk.pad.present import Presenter, from_video
    from kiosk.pad.render import lfw_people
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_detector, build_pipeline

    code = commit()
    pipeline, card = build_pipeline()
    # The sheet's own detector and FaceMesh: they run on the capture thread.
    sheet_detect, sheet_marks = build_detector().detect, build_landmarker().landmarks
    configs = {"liveness_on": present_config(Settings(), MAX_SECONDS),
               "baseline_eye_band_check_off": present_config(Settings(liveness={"planar_band_max": 0.0}), MAX_SECONDS),
               "baseline_liveness_off": present_config(Settings(liveness={"mode": "off"}), MAX_SECONDS)}
    unknown = set(args.configs.split(",")) - set(configs)
    if unknown:
        ap.error(f"--configs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(configs)}")
    configs = {k: v for k, v in configs.items() if k in args.configs.split(",")}
    landmarker = build_landmarker()
    people = lfw_people(DATA / "lfw-view1", 2 if args.quick else args.people, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    camera = None if args.camera is None else PRESETS[args.camera]
    shots = itertools.count(1)  # fresh camera noise per presentation, reproducibly

    def record(source: Any) -> Any:
        return source if camera is None else ShiftedSource(source, camera, seed=next(shots))

    live = live_approaches(pipeline, card.threshold, configs["liveness_on"], landmarker, find_videos(DATA / "videos"),
                           wrap=None if camera is None else record)
    if args.quick:
        live = live[:2]
    print(f"\napproaches that end live: {len(live)} (clip, prompt): "
          + ", ".join(f"{a.clip.stem}/{a.prompt}@{a.live_s:.1f}s" for a in live))
    species = "print_upper_face_eye_holes" if args.eye_holes > 0 else "print_upper_face"
    species += "_glossy" if args.glare > 0 else ""
    rows: list[dict[str, Any]] = []
    bar = Progress(len(configs) * len(live) * len(people), "wearing")
    for key, config in configs.items():
        for a in live:
            for name, photos in people:
                shown, enroll = photos[0], photos[1:]
                p = dataclasses.replace(from_video(a.clip, 15.0, 12.0), species=species, subject=name,
                                        enroll=lambda e=enroll: [read_rgb(x) for x in e])  # type: ignore[misc]

                def wrap(source: Any, shown: Path = shown) -> Any:
                    return record(PartialPrintSource(source, read_rgb(shown), sheet_detect, sheet_marks, cut=args.cut,
                                                     seed=args.seed, eye_holes=args.eye_holes, glare=args.glare))

                o = Presenter(pipeline, card.threshold, config, landmarker, seed=a.seed).present_cooperative(
                    p, wrap=wrap)
                scores = [d["score"] for d in o.decisions if isinstance(d.get("score"), (int, float))]
                rows.append({"config": key, "clip": short_clip(a.clip), "prompt": a.prompt, "victim": name,
                             "photo": shown.name, "error": o.error, "door_opened": o.door_opened,
                             "granted_s": o.granted_s, "verdict": o.verdict, "verdict_reason": o.verdict_reason,
                             "denied_attack": o.denied_attack, "face_changes": o.face_changes,
                             "best_score": max(scores) if scores else None, "values": o.values,
                             "decisions": o.decisions[-3:]})
                bar(len(rows))
    summary: dict[str, Any] = {}
    print()
    for key in configs:
        own = [r for r in rows if r["config"] == key]
        s = rate(own)
        s["denied_presentation_attack"] = sum(1 for r in own if r["error"] is None and r["denied_attack"])
        s["verdicts"] = {v: sum(1 for r in own if r["verdict"] == v) for v in sorted({r["verdict"] for r in own})}
        summary[key] = s
        lo, hi = s["ci95"]
        print(f"{key:22s} door opened {s['door_opened']}/{s['presented']} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %); "
              f"denied as presentation_attack {s['denied_presentation_attack']}; verdicts {s['verdicts']}")
    print(f"the sheet: {len(people)} victims (lfw-view1, seed {args.seed}), {len(live)} live approaches, cut {args.cut}, "
          f"camera {args.camera or 'as recorded'}; "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        command = " ".join(["python -m benchmarks.partial", *(argv if argv is not None else sys.argv[1:])])
        args.json.write_text(json.dumps({
            "command": command, "commit": code, "machine": machine(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "victims": [n for n, _ in people], "cut": args.cut, "eye_holes": args.eye_holes, "glare": args.glare,
            "camera": None if camera is None else vars(camera), "live_approaches": [
                {"clip": short_clip(a.clip), "prompt": a.prompt, "live_s": a.live_s} for a in live],
            "max_seconds": MAX_SECONDS, "summary": summary, "rows": rows}, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
