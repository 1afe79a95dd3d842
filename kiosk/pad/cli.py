"""``kiosk pad render`` and ``kiosk pad eval``: the presentation-attack self-test's command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, DatasetError
from kiosk.pad.meta import BEND_WIDTHS, SPECIES, STATIC_SPECIES, TURN_DEG
from kiosk.pad.rate import slower_fps

logger = logging.getLogger(__name__)


def _species(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SPECIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown species {bad or text!r}; choose from {', '.join(SPECIES)}")
    return names


def _range(low: float, high: float, unit: str) -> Any:
    """An argparse type for ``MIN,MAX`` with ``low <= MIN <= MAX <= high`` (NaN fails the comparison)."""

    def parse(text: str) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected MIN,MAX ({unit}), got {text!r}") from exc
        if not low <= lo <= hi <= high:
            raise argparse.ArgumentTypeError(f"need {low:g} <= MIN <= MAX <= {high:g} ({unit}), got {text!r}")
        return lo, hi

    return parse


def _whole(least: int) -> Any:
    """An argparse type for a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
        if value < least:
            raise argparse.ArgumentTypeError(f"expected {least} or more, got {value}")
        return value

    return parse


_positive, _seed = _whole(1), _whole(0)


def _seconds(text: str) -> float:
    """A presentation's length: a finite number of seconds, long enough for the prompt and its timeout."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from exc
    if not 1.0 <= value <= 600.0:
        raise argparse.ArgumentTypeError(f"expected 1 to 600 seconds, got {text!r}")
    return value


def cmd_render(args: argparse.Namespace) -> int:
    import numpy as np

    from kiosk.pad.outdir import check_photos, claim_out, render_options
    from kiosk.pad.render import RenderSettings, lfw_people, photos_of, render_batch, render_clip, render_photo
    from kiosk.pad.video import find_videos
    from kiosk.progress import Progress
    from kiosk.vision.pipeline import build_detector

    for name in ("photo", "lfw", "video"):  # recorded in meta.json: the eval may run from another folder
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).absolute())
    if args.enroll:
        args.enroll = [p.absolute() for p in args.enroll]
    species: list[str] = args.species or ([*STATIC_SPECIES, "tablet_video"] if args.video else list(STATIC_SPECIES))
    if "tablet_video" in species and not args.video:
        raise ConfigError("tablet_video needs --video DIR (real clips to replay on the tablet)")
    if args.bend is not None and "print_bent" not in species:
        raise ConfigError("--bend shapes print_bent only, which is not among the species rendered")
    if args.turn is not None and not set(TURN_DEG) & set(species):
        raise ConfigError(f"--turn moves {' and '.join(TURN_DEG)} only, neither of which is among the species rendered")
    static = [s for s in species if s in STATIC_SPECIES]
    if static and not (args.photo or args.lfw):
        raise ConfigError(f"{', '.join(static)} need --photo P or --lfw DIR")
    if args.photo and args.lfw:
        raise ConfigError("give --photo or --lfw, not both")
    if args.photo and not args.photo.is_file():
        raise DatasetError(f"--photo {args.photo} is not a file")
    enroll: list[Path] = []
    if static and args.photo:
        enroll = args.enroll or [p for p in photos_of(args.photo.parent) if p.resolve() != args.photo.resolve()]
        if not enroll:
            raise ConfigError(f"no other photo of the subject beside {args.photo}: give --enroll PHOTO... "
                              "(the subject is enrolled from photos other than the one attacked with)")
    if "tablet_video" in species and not find_videos(args.video):
        raise DatasetError(f"--video {args.video}: no video files found")
    settings = RenderSettings(frames=args.frames, bend_widths=args.bend or BEND_WIDTHS, turn_deg=args.turn)
    detect = build_detector(args.detector, runtime=args.runtime, threads=args.threads).detect
    if static and args.photo:
        enroll = check_photos(args.photo, enroll, detect, given=bool(args.enroll))
    people = lfw_people(args.lfw, args.people, np.random.default_rng(args.seed)) if static and args.lfw else []
    claim_out(args.out, render_options(args, enroll), species)  # after every check: a failed start claims nothing
    written: list[Path] = []
    try:
        if static and args.photo:
            subject = args.subject or args.photo.parent.name
            bar = Progress(len(static) * args.count, "rendering")
            for si, sp in enumerate(static):
                for i in range(args.count):
                    written.append(render_photo(sp, args.photo, enroll, subject, args.out / sp / f"{i:03d}_{subject}",
                                                args.seed + 1000 * si + i, detect, settings))
                    bar(len(written))
        elif static:
            bar = Progress(len(static) * args.per_species, "rendering")
            render_batch(people, static, args.per_species, args.out, args.seed, detect, settings, bar, written)
        if "tablet_video" in species:
            clips = find_videos(args.video)
            per_clip = args.count if args.photo or not args.lfw else -(-args.per_species // len(clips))
            bar = Progress(len(clips) * per_clip, "rendering tablet_video")
            done = 0
            for ci, clip in enumerate(clips):
                subject = clip.stem
                for i in range(per_clip):
                    written.append(render_clip(clip, subject, args.out / "tablet_video" / f"{ci:02d}{i:02d}_{subject}",
                                               args.seed + 50_000 + 100 * ci + i, detect, settings))
                    done += 1
                    bar(done)
    except KeyboardInterrupt:  # the sequence being written has no meta.json: no sequence, made again next run
        print(f"\nkiosk: interrupted: {len(written)} sequences written under {args.out}; run the same command "
              "again to finish", file=sys.stderr)
        return 130
    print(f"wrote {len(written)} sequences under {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from kiosk.pad.eval import run_pad_eval

    return run_pad_eval(args)


def _runtime_args(p: argparse.ArgumentParser, detector_default: str) -> None:
    p.add_argument("--detector", choices=["auto", "short", "full"], default=None,
                   help=f"BlazeFace model (default: {detector_default})")
    p.add_argument("--runtime", default=os.environ.get("KIOSK_TFLITE_RUNTIME", "auto"),
                   choices=["auto", "ai_edge_litert", "tflite_runtime"], help="TFLite runtime package")
    p.add_argument("--threads", type=_positive, default=2, help="interpreter threads")


def add_pad_parser(subparsers: Any) -> None:
    """Register ``pad render`` and ``pad eval`` under the kiosk command line's sub-commands."""
    pad = subparsers.add_parser("pad", help="presentation-attack self-test (ISO/IEC 30107-3 terms)")
    psub = pad.add_subparsers(dest="pad_command", required=True)

    r = psub.add_parser("render", help="render attack sequences (prints, bent prints, phone, tablet) from photos")
    r.add_argument("--photo", type=Path, help="the photo an attacker would use")
    r.add_argument("--enroll", type=Path, nargs="+", help="other photos of the same person, for enrollment "
                   "(default: the other photos in --photo's folder)")
    r.add_argument("--subject", help="subject id (default: --photo's folder name)")
    r.add_argument("--lfw", type=Path, help="batch mode: an LFW folder (images/<Name>/<Name>_NNNN.jpg)")
    r.add_argument("--people", type=_positive, default=10, help="batch mode: people with two or more photos")
    r.add_argument("--per-species", type=_positive, default=50, help="batch mode: sequences per species")
    r.add_argument("--video", type=Path, help="folder of real clips for tablet_video (searched recursively)")
    r.add_argument("--out", type=Path, required=True, help="output folder (one sub-folder per species)")
    r.add_argument("--species", type=_species, help=f"comma-separated, from {', '.join(SPECIES)} (default: all "
                   "static species, and tablet_video when --video is given)")
    r.add_argument("--count", type=_positive, default=1, help="single mode: sequences per species (and per clip)")
    r.add_argument("--frames", type=_positive, default=150, help="frames per sequence (15 fps)")
    r.add_argument("--seed", type=_seed, default=0)
    # under 0.15 widths the sheet would wrap round more than once; beyond 80 degrees it is seen edge on
    r.add_argument("--bend", type=_range(0.15, 10.0, "radius in print widths"), metavar="MIN,MAX",
                   help="print_bent: the cylinder's radius range in widths of the print (default "
                   f"{BEND_WIDTHS[0]:g},{BEND_WIDTHS[1]:g}; smaller bends harder)")
    r.add_argument("--turn", type=_range(0.0, 80.0, "degrees"), metavar="MIN,MAX",
                   help="print_turned and phone_photo: the range of the yaw amplitude, degrees (default "
                   + ", ".join(f"{lo:g},{hi:g} for {sp}" for sp, (lo, hi) in TURN_DEG.items()) + ")")
    _runtime_args(r, "auto: full range, short range as its fallback")
    r.set_defaults(handler=cmd_render, detector="auto")

    e = psub.add_parser("eval", help="replay bona fide clips and attack sequences through the real loop")
    # action="extend": `--attacks A --attacks B` keeps both, as `--attacks A B` does
    e.add_argument("--bona-fide", type=Path, nargs="+", action="extend", default=[], help="folders of real video "
                   "clips (searched recursively) or of sequence folders; may be repeated")
    e.add_argument("--attacks", type=Path, nargs="+", action="extend", default=[],
                   help="folders made by `kiosk pad render`; may be repeated")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--plot", type=Path, help="write the flatness scores per species as a PNG")
    e.add_argument("--max-seconds", type=_seconds, default=12.0,
                   help="stop a presentation after this long (replay time)")
    e.add_argument("--limit", type=_positive, help="at most this many presentations per species")
    e.add_argument("--fps", type=slower_fps, default=15.0,
                   help="frames per second the door's loop handles (1-15, default 15): the replays run at 15 "
                        "and the loop gets the frame nearest each of its ticks, as a slower camera or a loop that "
                        "cannot keep up (a Raspberry Pi) would")
    e.add_argument("--config", type=Path, help="the door's TOML configuration (default: /etc/kiosk/kiosk.toml if present)")
    e.add_argument("--model", type=Path, help="embedder .tflite (default: the configuration's)")
    _runtime_args(e, "the configuration's, else auto")
    e.set_defaults(handler=cmd_eval)
