"""Swap attacks: a real head earns the live verdict, then a print of an enrolled person is raised over it.

    .venv/bin/python -m benchmarks.swap [--json docs/pad_swap.json] [--people 10] [--seed 2026] [--quick]

The attacker is a real person from ../shared/data/videos who answers the head-turn prompt
(``kiosk.pad.cooperative``: each clip with a clear turn, prompted left and right). Each such
approach is first replayed alone; where it ends LIVE, it is replayed again with ``--people``
lfw-view1 people as victims (drawn with ``--seed``): enrolled from their other photos, the
attacker, not enrolled, holds up the victim's first photo 0.5 s after the live verdict
(``kiosk.pad.swap``). Every replay goes through the real loop with the default configuration,
twice: as the kiosk is, and with the identity-continuity check (``kiosk.continuity``) disabled,
the baseline it is measured against. Reported: how often the door opened (95 % Clopper-Pearson).
Times are on the replay's clock (machine-independent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.approaches import commit, data_missing, live_approaches, short_clip, victim_arguments
from benchmarks.machine import machine
from kiosk.pad.metrics import clopper_pearson

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SWAP_AFTER_S = 0.5
MAX_SECONDS = 16.0


class _NoContinuity:
    """The baseline: a track keeps whatever face it shows (the kiosk before ``kiosk.continuity``)."""

    def __init__(self, face_change: float) -> None:
        self.face_change = face_change

    def changed(self, track: int, embedding: Any) -> float | None:
        return None

    def add(self, track: int, embedding: Any) -> None:
        return None

    def end(self, tracks: list[int]) -> None:
        return None

    def freeze(self, track: int) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    victim_arguments(ap)
    ap.add_argument("--quick", action="store_true", help="2 clips, 2 victims")
    args = ap.parse_args(argv)
    if data_missing(DATA, "benchmarks.swap"):
        return 1
    import kiosk.loop
    from kiosk.config import Settings
    from kiosk.imageio import read_rgb
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.pad.eval import present_config
    from kiosk.pad.present import Presenter, from_video
    from kiosk.pad.render import lfw_people
    from kiosk.pad.swap import SwapSource
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_detector, build_pipeline

    code = commit()
    pipeline, card = build_pipeline()
    swap_detect = build_detector().detect  # the source's own: it runs on the capture thread
    config = present_config(Settings(), MAX_SECONDS)
    landmarker = build_landmarker()
    people = lfw_people(DATA / "lfw-view1", 2 if args.quick else args.people, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    # 1. The attacker's own approaches that end LIVE: when, for each clip and prompt.
    live = live_approaches(pipeline, card.threshold, config, landmarker, find_videos(DATA / "videos"))
    if args.quick:
        live = live[:2]
    print(f"\napproaches that end live: {len(live)} (clip, prompt): "
          + ", ".join(f"{a.clip.stem}/{a.prompt}@{a.live_s:.1f}s" for a in live))
    # 2. Each of them with each victim's print raised after the verdict, with and without the check.
    rows: list[dict[str, Any]] = []
    bar = Progress(2 * len(live) * len(people), "swapping")
    real = kiosk.loop.FaceContinuity
    done = 0
    for guarded in (True, False):
        kiosk.loop.FaceContinuity = real if guarded else _NoContinuity  # type: ignore[misc,assignment]
        try:
            for clip, direction, seed, live_s in live:
                for name, photos in people:
                    shown, enroll = photos[0], photos[1:]
                    p = dataclasses.replace(from_video(clip, 15.0, 12.0), species="print_swap", subject=name,
                                            enroll=lambda e=enroll: [read_rgb(x) for x in e])  # type: ignore[misc]

                    def wrap(source: Any, shown: Path = shown, at: float = live_s + SWAP_AFTER_S) -> Any:
                        return SwapSource(source, read_rgb(shown), at, swap_detect)

                    o = Presenter(pipeline, card.threshold, config, landmarker, seed=seed).present_cooperative(
                        p, wrap=wrap)
                    rows.append({"guarded": guarded, "clip": short_clip(clip), "prompt": direction,
                                 "victim": name, "photo": shown.name, "live_s": live_s, "error": o.error,
                                 "door_opened": o.door_opened, "granted_s": o.granted_s,
                                 "face_changes": o.face_changes, "denied_attack": o.denied_attack,
                                 "decisions": o.decisions[-3:]})
                    done += 1
                    bar(done)
        finally:
            kiosk.loop.FaceContinuity = real  # type: ignore[misc]
    summary: dict[str, Any] = {}
    print()
    for guarded in (True, False):
        own = [r for r in rows if r["guarded"] is guarded and r["error"] is None]
        opened = [r for r in own if r["door_opened"]]
        lo, hi = clopper_pearson(len(opened), len(own)) if own else (0.0, 1.0)
        changed = sum(1 for r in own if r["face_changes"])
        attacks = sum(1 for r in own if r["denied_attack"])
        key = "continuity_check" if guarded else "baseline_without_check"
        summary[key] = {"presented": len(own), "door_opened": len(opened), "ci95": [lo, hi],
                        "face_changed": changed, "denied_presentation_attack": attacks}
        print(f"{key:24s} door opened {len(opened)}/{len(own)} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %); "
              f"face change seen in {changed}; denied as presentation_attack within {MAX_SECONDS:.0f} s: {attacks}")
    print(f"{len(people)} victims (lfw-view1, seed {args.seed}), {len(live)} live approaches; "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        command = " ".join(["python -m benchmarks.swap", *(argv if argv is not None else sys.argv[1:])])
        args.json.write_text(json.dumps({
            "command": command, "commit": code, "machine": machine(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "victims": [n for n, _ in people], "live_approaches": [
                {"clip": short_clip(a.clip), "prompt": a.prompt, "live_s": a.live_s} for a in live],
            "swap_after_s": SWAP_AFTER_S, "max_seconds": MAX_SECONDS, "summary": summary, "rows": rows},
            indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
