"""Real people through other cameras: does liveness still let them in, and does it ever call them attacks?

    .venv/bin/python -m benchmarks.pad_camera [--json docs/pad_camera.json] [--cameras "far,low light"] [--quick]

The liveness thresholds were set on the 25 real clips of ../shared/data/videos as recorded. A door's
camera puts fewer pixels on the face, sees less light, has a softer lens or compresses its stream,
so every clip is replayed through each camera of ``kiosk.pad.camera_shift.PRESETS`` (fresh sensor
noise on every frame), through the real loop with the default configuration:

- passively, as ``kiosk pad eval`` plays bona fide clips (a recording cannot answer the prompt):
  BPCER (a flat verdict without a challenge), no passive verdict (BPNRR), and how often the face
  passed the quality gates at all;
- as a cooperative person who answers the prompt (``benchmarks.pad_cooperative``): the clips with a
  clear head turn, prompted left and right; granted, and the verdicts of those refused.

Every camera replays the same clips with the same prompts, so the rows differ only by the camera (and
its noise: drawn per presentation from a counter, so a run with other options, ``--quick`` or
``--no-passive``, draws other noise).
The person is enrolled from the clip as recorded (an administrator's photos, not the door camera).
All figures are in-sample for the real side: these clips set the thresholds. Times are on the
replay's clock.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.approaches import commit, prompt_seeds, short_clip
from benchmarks.machine import machine
from kiosk.pad.camera_shift import PRESETS, CameraShift
from kiosk.pad.metrics import clopper_pearson

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_SECONDS = 12.0


def cameras(text: str) -> list[CameraShift]:
    """Preset names, comma-separated ("all": every preset)."""
    if text == "all":
        return list(PRESETS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown camera {', '.join(unknown) or repr(text)}; "
                                         f"choose from {', '.join(PRESETS)}")
    return [PRESETS[n] for n in names]


def share(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"k": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}


def text(d: dict[str, Any]) -> str:
    return f"{d['k']:>2}/{d['n']:<2} [{100 * d['ci95'][0]:4.1f}, {100 * d['ci95'][1]:5.1f} %]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--cameras", type=cameras, default=list(PRESETS.values()),
                    help=f"comma-separated, of: {', '.join(PRESETS)} (default: all)")
    ap.add_argument("--quick", action="store_true", help="3 clips")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--no-passive", action="store_true", help="only the cooperative replays")
    mode.add_argument("--no-cooperative", action="store_true", help="only the passive replays")
    args = ap.parse_args(argv)
    if not (DATA / "videos").is_dir():
        print(f"benchmarks.pad_camera: the real clips are missing at {DATA / 'videos'}", file=sys.stderr)
        return 1
    from kiosk.config import Settings
    from kiosk.errors import KioskError
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.pad.camera_shift import ShiftedSource
    from kiosk.pad.eval import present_config, summarise
    from kiosk.pad.meta import BONA_FIDE
    from kiosk.pad.present import Outcome, Presenter, from_video
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_pipeline

    code = commit()  # the code this run loads, not whatever is checked out when it ends
    clips = find_videos(DATA / "videos")[: 3 if args.quick else None]
    pipeline, card = build_pipeline()
    config = present_config(Settings(), MAX_SECONDS)
    landmarker = build_landmarker()
    seeds = prompt_seeds()
    t0 = time.perf_counter()
    turning: list[Path] | None = None  # clips with a clear turn (found on the footage as recorded)
    results: list[dict[str, Any]] = []
    for shift in args.cameras:
        numbers = itertools.count(1)  # fresh noise per presentation, reproducibly

        def wrap(source: Any, _shift: CameraShift = shift, _seeds: Iterator[int] = numbers) -> Any:
            return ShiftedSource(source, _shift, seed=next(_seeds))

        row: dict[str, Any] = {"camera": shift.name, "shift": {k: v for k, v in vars(shift).items() if k != "name"}}
        if not args.no_passive:
            presenter = Presenter(pipeline, card.threshold, config, landmarker, seed=0)
            bar = Progress(len(clips), f"{shift.name}: clips as recorded")
            outcomes = []
            for n, clip in enumerate(clips):
                try:
                    outcomes.append(presenter.present(from_video(clip, 15.0, MAX_SECONDS), wrap=wrap))
                except KioskError as exc:  # one clip that cannot be enrolled must not end the run
                    outcomes.append(Outcome(str(clip), BONA_FIDE, clip.stem, False, 0, error=str(exc)))
                bar(n + 1)
            b = summarise(outcomes)["bona_fide"]
            row["passive"] = {
                "bpcer": share(b["bpcer"]["k"], b["bpcer"]["n"]), "bpnrr": share(b["bpnrr"]["k"], b["bpnrr"]["n"]),
                "recognisable": share(b["recognisable"]["k"], b["recognisable"]["n"]),
                "not_presented": [o.name for o in outcomes if o.error is not None],
                "planar_eye_band_pairs": sum(int(o.values.get("planar_frames", 0)) for o in outcomes),
                "clips": [{"clip": short_clip(Path(o.name)), "verdict": o.verdict, "reason": o.verdict_reason,
                           "challenged": o.challenged, "usable_frames": o.usable_frames,
                           "gate_failures": o.gate_failures,  # frames no face passed, by the gate that stopped it
                           "planar_frames": o.values.get("planar_frames")} for o in outcomes]}
        if args.no_cooperative:
            results.append(row)
            report(results[-1:])
            continue
        coop: list[dict[str, Any]] = []
        todo = clips if turning is None else turning
        bar = Progress(2 * len(todo), f"{shift.name}: answering the prompt")
        found: list[Path] = []
        for n, clip in enumerate(todo):
            for k, (direction, seed) in enumerate(seeds.items()):
                try:
                    o = Presenter(pipeline, card.threshold, config, landmarker, seed=seed).present_cooperative(
                        from_video(clip, 15.0, MAX_SECONDS), wrap=wrap)
                except KioskError as exc:
                    print(f"{short_clip(clip)} prompted {direction}: not presented: {exc}", file=sys.stderr)
                    continue
                finally:
                    bar(2 * n + k + 1)
                if o.error is not None:
                    continue
                if clip not in found:
                    found.append(clip)
                coop.append({"clip": short_clip(clip), "prompt": direction, "verdict": o.verdict,
                             "reason": o.verdict_reason, "granted": o.granted, "door_opened": o.door_opened,
                             "time_to_grant_s": o.time_to_grant_s, "usable_frames": o.usable_frames,
                             "turn": o.values.get("turn"), "residual": o.values.get("residual"),
                             "noise": o.values.get("noise"), "planar_frames": o.values.get("planar_frames")})
        if turning is None:
            turning = found
        reasons: dict[str, int] = {}
        for r in coop:
            reasons[str(r["reason"])] = reasons.get(str(r["reason"]), 0) + 1
        row["cooperative"] = {"granted": share(sum(r["granted"] for r in coop), len(coop)),
                              "denied_as_attack": share(sum(r["verdict"] == "flat" for r in coop), len(coop)),
                              "reasons": reasons, "rows": coop}
        results.append(row)
        report(results[-1:])
    print("\nsummary (in-sample real clips; the same clips and prompts for every camera)")
    report(results)
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join(["python -m benchmarks.pad_camera", *(argv if argv is not None else sys.argv[1:])]),
            "commit": code, "machine": machine(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "clips": len(clips), "turning_clips": [short_clip(c) for c in turning or []], "cameras": results},
            indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'camera':14s} {'BPCER passive':24s} {'no passive verdict':24s} {'face usable':24s} "
          f"{'answering: granted':24s} {'answering: denied as attack':28s} reasons")
    for r in rows:
        p, c = r.get("passive"), r.get("cooperative")
        cells = [text(p["bpcer"]), text(p["bpnrr"]), text(p["recognisable"])] if p else ["-", "-", "-"]
        cells += [text(c["granted"]), text(c["denied_as_attack"]), str(c["reasons"])] if c else ["-", "-", "-"]
        print(f"{r['camera']:14s} {cells[0]:24s} {cells[1]:24s} {cells[2]:24s} {cells[3]:24s} {cells[4]:28s} {cells[5]}")
        if p:
            stopped = {k for clip in p["clips"] if not clip["usable_frames"] for k in clip.get("gate_failures", {})}
            if stopped:
                print(f"{'':14s} clips never usable: {sum(not c['usable_frames'] for c in p['clips'])}, "
                      f"stopped by {', '.join(sorted(stopped))}")


if __name__ == "__main__":
    raise SystemExit(main())
