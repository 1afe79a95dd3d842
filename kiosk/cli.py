"""Command line: parses arguments, sets up logging, hands over, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk import __version__
from kiosk.errors import KioskError

logger = logging.getLogger("kiosk")

Handler = Callable[[argparse.Namespace], int]


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="embedder .tflite (default: models/facenet_int8.tflite)")
    p.add_argument("--detector", choices=["short", "full"], default="short", help="BlazeFace range model")
    p.add_argument("--runtime", default=os.environ.get("KIOSK_TFLITE_RUNTIME", "auto"),
                   choices=["auto", "ai_edge_litert", "tflite_runtime"], help="TFLite runtime package")
    p.add_argument("--threads", type=int, default=2, help="interpreter threads")


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from kiosk.artifacts import fetch, models_dir

    root = args.dir or models_dir()
    written = fetch(root)
    print(f"{len(written)} artifacts written to {root}" if written else f"all artifacts present in {root}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from kiosk.artifacts import Manifest, models_dir

    manifest = Manifest.load()
    root = args.dir or models_dir()
    rows = []
    for art in manifest.artifacts.values():
        path = root / art.dest
        rows.append({"name": art.name, "path": str(path), "present": path.is_file(), "size": art.size,
                     "sha256": art.sha256, "license": art.license, "from": manifest.sources[art.source].requirement})
    for ds in manifest.datasets.values():
        path = root / ds.dest
        rows.append({"name": ds.name, "path": str(path), "present": path.is_dir(), "files": ds.files,
                     "license": ds.license, "from": manifest.sources[ds.source].requirement})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{'ok ' if r['present'] else '-- '} {r['name']:<24} {r['from']:<32} {r['license']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from kiosk.compare import run_compare

    return run_compare(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from kiosk.evalcmd import run_eval

    return run_eval(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.demo.run import run_demo

    summary = run_demo(args.out, video=not args.no_video)
    print(f"\n{summary['frames']} frames in {summary['wall_s']} s ({summary['fps']} frames/s through the real loop); "
          f"mean processing {summary['loop']['mean_frame_ms']} ms per frame")
    for person, r in summary["per_walk_up"].items():
        expected = "grant" if r["enrolled"] else "deny"
        got = "granted" if r["granted"] else "not granted"
        print(f"  {person:<15} enrolled={r['enrolled']!s:<5} expected {expected:<5} -> {got}")
    print(f"wrote {args.out}/demo.mp4, demo_decisions.jpg, demo_events.jsonl, demo_summary.json")
    ok = all(r["granted"] == r["enrolled"] for r in summary["per_walk_up"].values())
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Face-unlock access-control kiosk")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="fetch and list model artifacts")
    msub = models.add_subparsers(dest="models_command", required=True)
    f = msub.add_parser("fetch", help="download, verify and extract every artifact in models/manifest.toml")
    f.add_argument("--dir", type=Path, help="target folder (default: $KIOSK_MODELS_DIR or models/)")
    f.set_defaults(handler=cmd_models_fetch)
    ls = msub.add_parser("list", help="show the manifest and what is present")
    ls.add_argument("--dir", type=Path)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_models_list)

    c = sub.add_parser("compare", help="are the largest faces in two photos the same person?")
    c.add_argument("image_a", type=Path)
    c.add_argument("image_b", type=Path)
    c.add_argument("--out", type=Path, help="write the two photos side by side, annotated")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--threshold", type=float, help="override the model's recommended threshold")
    _add_runtime_args(c)
    c.set_defaults(handler=cmd_compare)

    e = sub.add_parser("eval", help="verification accuracy on labelled pairs or identity folders")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="CSV with header img1,img2,same (paths relative to --images)")
    src.add_argument("--identities", type=Path, help="folder with one sub-folder of photos per person")
    e.add_argument("--images", type=Path, help="base folder of the paths in --pairs")
    e.add_argument("--json", action="store_true")
    e.add_argument("--plot", type=Path, help="write the ROC and score histograms as a PNG")
    e.add_argument("--threshold", type=float, help="override the model's recommended threshold")
    _add_runtime_args(e)
    e.set_defaults(handler=cmd_eval)
    d = sub.add_parser("demo", help="the real loop on synthetic walk-ups: no camera, GPIO or broker")
    d.add_argument("--out", type=Path, default=Path("out"), help="folder for the video, pictures and logs")
    d.add_argument("--no-video", action="store_true", help="skip writing demo.mp4")
    d.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KioskError as exc:
        print(f"kiosk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
