"""Time to grant for a cooperative person who answers the head-turn prompt, from real footage.

    .venv/bin/python -m benchmarks.pad_cooperative [--json docs/pad_cooperative.json] [--reaction-s 1.0]
                                                   [--camera "low light"]

Each real clip in ../shared/data/videos with a clear head turn (``kiosk.pad.cooperative.find_turn``:
at least 0.2 IOD of nose offset within 1.5 s, from a face looking ahead) is presented twice through
the real loop with the default configuration, once prompted left and once right: the person stands as
in the still stretch before their turn, and ``--reaction-s`` after the prompt makes the clip's turn
(when the prompt asks for the other side, the whole presentation is played again as the clip's mirror
image, from its first frame: ``mirrored`` in the rows). Enrolled from the clip's last 20 %. Clips without
such a turn are listed, not presented. Times are on the replay's clock (machine-independent).

With ``--attacks DIR`` (folders from ``kiosk pad render``), the same is done for an attacker who answers
the prompt: every static attack sequence in which FaceMesh sees the face turn by at least the kiosk's
``min_turn`` is played reactively, the artefact turned the prompted way (its mirror image, from the first
frame, for the other side),
one prompt per sequence, its direction drawn per sequence. Reported per species: sequences that hold
such a turn, and how many opened the door (APCER of this adaptive attacker, 95 % Clopper-Pearson).

With ``--camera`` (a preset of ``kiosk.pad.camera_shift``), every frame served is recorded through that
camera (fresh sensor noise on each); the turns are found on the footage as recorded.

With ``--fps`` below 15, the loop is a slower door's (a Raspberry Pi that cannot keep up): the replay
and the reaction to the prompt run at 15 frames a second, the loop gets the frame nearest each of its
own ticks (``kiosk.pad.rate.SlowerSource``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.approaches import commit
from benchmarks.machine import machine
from kiosk.pad.camera_shift import PRESETS, ShiftedSource
from kiosk.pad.cooperative import REACTION_S
from kiosk.pad.metrics import clopper_pearson, percentiles
from kiosk.pad.rate import SlowerSource, slower_fps

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--reaction-s", type=float, default=REACTION_S)
    ap.add_argument("--quick", action="store_true", help="3 clips")
    ap.add_argument("--attacks", type=Path, action="append", default=[],
                    help="rendered attack folders: also present their static sequences as an attacker who "
                         "turns the artefact the prompted way")
    ap.add_argument("--camera", default=None, choices=list(PRESETS),
                    help="record every frame through this camera (default: as recorded)")
    ap.add_argument("--only", default="",
                    help="with --attacks: play only the sequences whose folder names start with these, comma-separated "
                         "(e.g. 006,044); prompts are drawn as in the full run, camera noise is not")
    ap.add_argument("--no-bona-fide", action="store_true", help="with --attacks: present only the attacks")
    ap.add_argument("--fps", type=slower_fps, default=15.0,
                    help="frames per second the door's loop handles (at most 15): the replay runs at 15 and the "
                         "loop gets the frame nearest each of its ticks (kiosk.pad.rate.SlowerSource), so the same "
                         "turns are found and played as at 15")
    args = ap.parse_args(argv)
    if not (DATA / "videos").is_dir():
        print(f"benchmarks.pad_cooperative: the shared data is missing at {DATA}", file=sys.stderr)
        return 1
    from kiosk.config import Settings
    from kiosk.liveness.challenge import choose_direction
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.pad.eval import present_config
    from kiosk.pad.present import Presenter, from_video
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_pipeline

    code = commit()  # the code this run loads, not whatever is checked out when it ends
    clips = [] if args.no_bona_fide else find_videos(DATA / "videos")[: 3 if args.quick else None]
    pipeline, card = build_pipeline()
    config = present_config(Settings(), 12.0)
    landmarker = build_landmarker()
    seeds = {d: next(s for s in range(100) if choose_direction(random.Random(s)) == d) for d in ("left", "right")}
    camera = None if args.camera is None else PRESETS[args.camera]
    shots = itertools.count(1)  # fresh camera noise per presentation, reproducibly

    def record(source: Any) -> Any:
        source = ShiftedSource(source, camera, seed=next(shots)) if camera is not None else source
        # a slower door: the camera records every frame, the loop gets to some of them
        return SlowerSource(source, args.fps, 15.0) if args.fps < 15.0 else source

    wrap = None if camera is None and args.fps >= 15.0 else record
    rows: list[dict[str, Any]] = []
    bar = Progress(2 * len(clips), "presenting")
    t0 = time.perf_counter()
    for n, clip in enumerate(clips):
        for k, (direction, seed) in enumerate(seeds.items()):
            o = Presenter(pipeline, card.threshold, config, landmarker, seed=seed).present_cooperative(
                from_video(clip, 15.0, 12.0), args.reaction_s, wrap=wrap)
            rows.append({"clip": str(clip).split("videos/")[-1], "prompt": direction, "error": o.error,
                         "verdict": o.verdict, "reason": o.verdict_reason, "granted": o.granted,
                         "door_opened": o.door_opened, "time_to_grant_s": o.time_to_grant_s,
                         "clip_turn": o.values.get("clip_turn"), "turn": o.values.get("turn"),
                         "residual": o.values.get("residual"), "noise": o.values.get("noise"),
                         "mirrored": o.values.get("mirrored")})  # played as the clip's mirror image
            bar(2 * n + k + 1)
    presented = [r for r in rows if r["error"] is None]
    granted = [r for r in presented if r["granted"]]
    lo, hi = clopper_pearson(len(granted), len(presented)) if presented else (0.0, 1.0)
    times = percentiles([r["time_to_grant_s"] for r in granted])
    attacks = present_attacks(args.attacks, pipeline, card.threshold, config, landmarker, args.reaction_s, wrap,
                              tuple(x for x in args.only.split(",") if x))
    print(f"\nclips with a clear turn: {len(presented) // 2} of {len(clips)}; prompts answered: {len(presented)}")
    print(f"{'clip':48s} {'prompt':6s} {'verdict':6s} {'reason':20s} {'turn':>6s} {'grant s':>8s}")
    for r in presented:
        print(f"{r['clip']:48s} {r['prompt']:6s} {r['verdict']:6s} {r['reason']!s:20s} "
              f"{r['turn'] if r['turn'] is not None else '-':>6} {r['time_to_grant_s'] or '-':>8}")
    print(f"granted {len(granted)}/{len(presented)} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %); first usable frame to "
          f"grant median {times['median']} s, p90 {times['p90']} s; reaction {args.reaction_s} s; "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        command = " ".join(["python -m benchmarks.pad_cooperative", *(argv if argv is not None else sys.argv[1:])])
        args.json.write_text(json.dumps({
            "command": command, "commit": code, "machine": machine(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reaction_s": args.reaction_s,
            "fps": args.fps,
            "camera": None if camera is None else vars(camera),
            "clips": len(clips), "presented": len(presented), "granted": len(granted), "ci95": [lo, hi],
            "time_to_grant_s": times, "rows": rows, "attacks": attacks}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def present_attacks(roots: list[Path], pipeline: Any, threshold: float, config: Any, landmarker: Any,
                    reaction_s: float, wrap: Any = None, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Static attack sequences played by an attacker who turns the artefact the prompted way."""
    if not roots:
        return {}
    from kiosk.pad.eval import collect
    from kiosk.pad.meta import STATIC_SPECIES
    from kiosk.pad.present import Presenter
    from kiosk.progress import Progress

    sequences = [p for p in collect([], roots) if p.species in STATIC_SPECIES]
    min_turn = config.liveness.min_turn
    rows: list[dict[str, Any]] = []
    bar = Progress(len(sequences), "attacker answering the prompt")  # counts every sequence, played or not
    for n, p in enumerate(sequences):
        if only and not Path(p.name).name.startswith(only):
            continue  # the others keep their places: each sequence's prompt follows its place in the full set
        o = Presenter(pipeline, threshold, config, landmarker, seed=n).present_cooperative(
            p, reaction_s, min_change=min_turn, max_start=2 * 0.04, wrap=wrap)
        rows.append({"sequence": Path(p.name).name, "species": p.species, "error": o.error,
                     "verdict": o.verdict, "reason": o.verdict_reason, "door_opened": o.door_opened,
                     "granted": o.granted, "clip_turn": o.values.get("clip_turn"), "turn": o.values.get("turn"),
                     "residual": o.values.get("residual"), "noise": o.values.get("noise"),
                     "live_frames": o.values.get("live_frames"), "eye_band": o.values.get("eye_band"),
                     "mirrored": o.values.get("mirrored")})
        bar(n + 1)
    summary: dict[str, Any] = {}
    print(f"\nattacker answering the prompt (turn of at least min_turn {min_turn} seen by FaceMesh):")
    for species in sorted({r["species"] for r in rows}):
        own = [r for r in rows if r["species"] == species]
        turned = [r for r in own if r["error"] is None]
        opened = [r for r in turned if r["door_opened"]]
        lo, hi = clopper_pearson(len(opened), len(turned)) if turned else (0.0, 1.0)
        reasons: dict[str, int] = {}
        for r in turned:
            reasons[str(r["reason"])] = reasons.get(str(r["reason"]), 0) + 1
        summary[species] = {"sequences": len(own), "with_turn": len(turned), "door_opened": len(opened),
                            "ci95": [lo, hi], "reasons": reasons}
        print(f"  {species:14s} {len(turned):3d} of {len(own):3d} hold such a turn; door opened {len(opened)}/"
              f"{len(turned)} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %); {reasons}")
    return {"summary": summary, "rows": rows}


if __name__ == "__main__":
    raise SystemExit(main())
