"""How far a real face strays from its own track: the bona fide side of ``kiosk.continuity``.

    .venv/bin/python -m benchmarks.continuity [--json docs/continuity.json]

Over every real clip in ../shared/data/videos at 15 fps, the largest face of each frame is embedded
when the loop would embed it (it passes the quality gates, or fails only on turn or blur, which the
liveness cues still look at) and compared with three references built from the clip's earlier
embedded frames: their mean (what the kiosk uses), the mean of the first three, and the previous
frame alone. Reported per clip and overall: the lowest cosine and the 1st percentile. A real face
below ``decision.face_change`` would restart its own track.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def clip_rows(clip: Path, pipeline: Any, quality: Any) -> list[tuple[str, float, float, float]]:
    from kiosk.pad.video import iter_clip
    from kiosk.vision.boxes import primary_face
    from kiosk.vision.quality import check_geometry, sharpness

    embs: list[np.ndarray] = []
    rows = []
    for rgb in iter_clip(clip, 0.0, None, 15.0):
        face = primary_face(pipeline.detect(rgb))
        if face is None:
            continue
        gate = check_geometry(face, rgb.shape, quality)
        crop = pipeline.crops(rgb, [face])[0]
        if gate is None and sharpness(crop) < quality.min_sharpness:
            gate = "blurred"
        if gate not in (None, "turned_away", "blurred"):
            continue
        e = pipeline.embedder.embed([crop])[0].astype(np.float64)
        if embs:
            mean = np.sum(embs, axis=0)
            first = np.sum(embs[:3], axis=0)
            rows.append((gate or "passed", float(e @ mean / np.linalg.norm(mean)),
                         float(e @ first / np.linalg.norm(first)), float(e @ embs[-1])))
        embs.append(e)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    if not (DATA / "videos").is_dir():
        print(f"benchmarks.continuity: the shared data is missing at {DATA}", file=sys.stderr)
        return 1
    from kiosk.config import Settings
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_pipeline
    from kiosk.vision.quality import QualityConfig

    settings = Settings()
    q = settings.quality
    quality = QualityConfig(q.min_face_px, q.min_sharpness, q.max_outside, q.max_yaw)
    pipeline, _ = build_pipeline()
    clips = find_videos(DATA / "videos")
    per_clip: dict[str, Any] = {}
    every: list[tuple[str, float, float, float]] = []
    bar = Progress(len(clips), "clips")
    t0 = time.perf_counter()
    for n, clip in enumerate(clips):
        rows = clip_rows(clip, pipeline, quality)
        every += rows
        name = str(clip).split("videos/")[-1]
        gates: dict[str, int] = {}
        for r in rows:
            gates[r[0]] = gates.get(r[0], 0) + 1
        per_clip[name] = {"frames": len(rows), "gates": gates,
                          "min_to_mean": round(min(r[1] for r in rows), 4) if rows else None,
                          "min_to_first3": round(min(r[2] for r in rows), 4) if rows else None,
                          "min_to_previous": round(min(r[3] for r in rows), 4) if rows else None}
        bar(n + 1)
    refs = {"mean of earlier frames (the kiosk's)": 1, "mean of the first three": 2, "previous frame": 3}
    overall = {}
    print(f"\n{len(every)} frames of {len(clips)} real clips (15 fps); face_change = {settings.decision.face_change}")
    for label, k in refs.items():
        v = np.array([r[k] for r in every])
        overall[label] = {"min": round(float(v.min()), 4), "p1": round(float(np.percentile(v, 1)), 4),
                          "below_face_change": int((v < settings.decision.face_change).sum())}
        print(f"  against the {label:38s} lowest {v.min():.3f}, 1st percentile {np.percentile(v, 1):.3f}, "
              f"frames below face_change {(v < settings.decision.face_change).sum()}")
    lowest = sorted(per_clip.items(), key=lambda kv: kv[1]["min_to_mean"] if kv[1]["min_to_mean"] is not None else 9)
    print("  lowest clips (to the mean): " + ", ".join(f"{k} {v['min_to_mean']}" for k, v in lowest[:3]))
    print(f"  {time.perf_counter() - t0:.0f} s")
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1]).stdout.strip() or "unknown"
        args.json.write_text(json.dumps({
            "command": " ".join(["python -m benchmarks.continuity", *(argv if argv is not None else sys.argv[1:])]),
            "commit": commit, "machine": machine(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "frames": len(every), "clips": len(clips), "face_change": settings.decision.face_change,
            "overall": overall, "per_clip": per_clip}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
