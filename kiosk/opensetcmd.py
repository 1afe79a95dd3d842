"""``kiosk eval --open-set``: enroll N people, present enrolled people and strangers, through the door's rule.

    kiosk eval --open-set --identities DIR [--enroll-photos 3] [--sizes 10,100,1000] [--target-far 1e-4]
               [--margin 0.05] [--repeats 1] [--videos DIR] [--json] [--plot PNG]

Photos are embedded once with the kiosk's int8 pipeline and cached outside
the project (``kiosk.embedcache``). For each N the threshold is derived from
the score table for N templates (``kiosk.policy.threshold``); strangers are
every photo of every person not drawn for enrollment.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.datasets import identity_images
from kiosk.embedcache import embed_clip, embed_set
from kiosk.errors import DatasetError
from kiosk.policy.openset import SAME_PERSON, open_set
from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.stats import format_rate
from kiosk.policy.templates import fuse
from kiosk.policy.threshold import DEFAULT_TARGET
from kiosk.policy.videos import Clip, video_open_set
from kiosk.vision.pipeline import FacePipeline, build_pipeline
from kiosk.vision.quality import QualityConfig

logger = logging.getLogger(__name__)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected sizes like 10,100,1000, got {text!r}") from exc
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return sizes


def add_open_set_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("open set (--open-set)")
    g.add_argument("--open-set", action="store_true",
                   help="enroll N people from --identities and present enrolled people and strangers")
    g.add_argument("--enroll-photos", type=int, default=3, metavar="K", help="photos fused per template (3)")
    g.add_argument("--sizes", type=_sizes, default=[10, 100, 1000], help="gallery sizes N (10,100,1000)")
    g.add_argument("--target-far", type=float, default=DEFAULT_TARGET,
                   help="tolerated stranger acceptance per approach (1e-4)")
    g.add_argument("--margin", type=float, default=0.05, help="top-2 margin (0.05)")
    g.add_argument("--repeats", type=int, default=1, help="random galleries per N, pooled (1)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--people", type=Path, help="LFW-style people list: use only these people of --identities")
    g.add_argument("--videos", type=Path, help="folder of clips (*.mp4): multi-frame approaches, one person per clip")
    g.add_argument("--score-table", type=Path, help="score table to derive thresholds from (the shipped one)")


def _people(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {ln.split("\t")[0].strip() for ln in lines[1:] if ln.strip()}


def _clips(pipeline: FacePipeline, sha: str, folder: Path) -> list[Clip]:
    q = QualityConfig()
    clips = []
    for path in sorted(folder.rglob("*.mp4")):
        c = embed_clip(pipeline, sha, path, every=2)
        keep = (c.face_px >= q.min_face_px) & (c.sharpness >= q.min_sharpness)
        if keep.sum() < 3:
            logger.warning("%s: fewer than 3 frames pass the quality gates; left out", path)
            continue
        weights = np.clip(c.sharpness[keep] / (4.0 * q.min_sharpness), 0.25, 1.0)
        clips.append(Clip(path.stem, SAME_PERSON.get(path.stem, path.stem), c.embeddings[keep], weights))
    # clips of a person who has several enroll from the first listed; keep that deterministic
    clips.sort(key=lambda c: (c.identity, c.name != c.identity, c.name))
    return clips


def run_open_set(args: argparse.Namespace) -> int:
    if not args.identities:
        raise DatasetError("--open-set needs --identities DIR (one folder of photos per person)")
    if not 1 <= args.enroll_photos <= 10:
        raise DatasetError(f"--enroll-photos must be 1 to 10, got {args.enroll_photos}")
    model = ScoreModel.load(args.score_table)
    pipeline, card = build_pipeline(args.model, detector=args.detector, runtime=args.runtime, threads=args.threads)
    people = _people(args.people) if args.people else None
    items = [(lbl, p) for lbl, p in identity_images(args.identities) if people is None or lbl in people]
    es = embed_set(pipeline, card.sha256, items, args.identities.name)
    labels, emb = es.kept()
    labels = [SAME_PERSON.get(x, x) for x in labels]
    try:
        photos = open_set(model, labels, emb, args.sizes, args.enroll_photos, args.target_far, args.margin,
                          args.repeats, args.seed)
    except ValueError as exc:
        raise DatasetError(f"{args.identities}: {exc}") from exc
    report: dict[str, Any] = {
        "identities": str(args.identities), "photos": [r.as_dict() for r in photos], "target": args.target_far,
        "margin": args.margin, "enroll_photos": args.enroll_photos, "repeats": args.repeats,
        "photos_with_face": len(labels), "photos_listed": len(items), "people": len(set(labels)),
        "score_table": model.provenance.get("sets") and [s["name"] for s in model.provenance["sets"]],
        "model_sha256": card.sha256,
    }
    if args.videos:
        clips = _clips(pipeline, card.sha256, args.videos)
        fill = _fillers(labels, emb, args.enroll_photos)
        vids = video_open_set(model, clips, fill, args.sizes, args.enroll_photos, args.target_far, args.margin)
        report["videos"] = [v.as_dict() for v in vids]
        report["video_clips"] = len(clips)
        report["video_people"] = len({c.identity for c in clips})
    if args.plot:
        from kiosk.policy.plot import plot_open_set

        plot_open_set(report, args.plot)
    print(json.dumps(report) if args.json else summary(report) + (f"\nwrote {args.plot}" if args.plot else ""))
    return 0


def _fillers(labels: list[str], emb: np.ndarray, k: int) -> np.ndarray:
    """Templates of the identity set's people (most photos first) to fill a gallery to size."""
    by: dict[str, list[int]] = {}
    for i, lbl in enumerate(labels):
        by.setdefault(lbl, []).append(i)
    order = sorted(by, key=lambda p: (-len(by[p]), p))
    return np.stack([fuse(emb[by[p][:k]]) for p in order])


def summary(r: dict[str, Any]) -> str:
    lines = [f"{r['identities']}: {r['photos_with_face']} photos with a face ({r['photos_listed']} listed) of "
             f"{r['people']} people; tolerated stranger acceptance {r['target']:g} per approach, margin {r['margin']}, "
             f"{r['enroll_photos']} photos per template, {r['repeats']} random gallery(ies) per N pooled",
             f"{'N':>5} {'threshold':>9}  {'strangers accepted (95% CI)':<40} {'enrolled accepted (95% CI)':<40} "
             "misid. ambig."]
    for x in r["photos"]:
        lines.append(f"{x['n']:>5} {x['threshold']:>9.4f}{'*' if x['threshold_extrapolated'] else ' '} "
                     f"{format_rate(x['stranger_accepted'], x['stranger_n']):<40} "
                     f"{format_rate(x['enrolled_accepted'], x['enrolled_n']):<40} "
                     f"{x['misidentified']:>6} {x['ambiguous']:>6}")
        if x["note"]:
            lines.append(f"      note: {x['note']}")
    for x in r.get("videos") or []:
        if x == r["videos"][0]:
            lines.append(f"multi-frame approaches from {r['video_clips']} clips of {r['video_people']} people "
                         "(enrolled from 3 frames of the first 40% of a clip, probed with fused 15-frame windows of its last "
                         "40%; strangers: those windows with their person left out, and every window of people not "
                         "enrolled), gallery filled to N with people of --identities")
        star = "*" if x["threshold"] > r["photos"][0]["threshold"] and any(
            p["n"] == x["n"] and p["threshold_extrapolated"] for p in r["photos"]) else " "
        lines.append(f"{x['n']:>5} {x['threshold']:>9.4f}{star} "
                     f"{format_rate(x['stranger_accepted'], x['stranger_n']):<40} "
                     f"{format_rate(x['enrolled_accepted'], x['enrolled_n']):<40} "
                     f"{x['misidentified']:>6} {x['ambiguous']:>6}")
    lines.append("* threshold in the extrapolated tail of the score model")
    return "\n".join(lines)
