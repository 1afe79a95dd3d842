"""Command line: parses arguments, sets up logging, hands over, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.errors import KioskError

logger = logging.getLogger("kiosk")

Handler = Callable[[argparse.Namespace], int]


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from exc
    return value if value.tzinfo else value.astimezone()


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="embedder .tflite (default: models/facenet_int8.tflite)")
    p.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                   help="BlazeFace model: auto = full range, short range when it finds nothing")
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
        kind = r.get("kind", "walk-up") + (" (synthetic, rendered)" if r.get("synthetic") else "")
        reasons = ", ".join(r.get("reasons", []))
        print(f"  {person:<15} {kind:<32} enrolled={r['enrolled']!s:<5} expected {expected:<5} -> {got}"
              + (f" [{reasons}]" if reasons else ""))
    print(f"wrote {args.out}/demo.mp4, demo_decisions.jpg, demo_events.jsonl, demo_summary.json")
    ok = all(r["granted"] == r["enrolled"] for r in summary["per_walk_up"].values())
    return 0 if ok else 1


def _settings(args: argparse.Namespace) -> Any:
    from kiosk.config import load_settings

    return load_settings(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.service import run_service

    run_service(_settings(args), until_end=args.until_end)
    return 0


def cmd_door_lock(args: argparse.Namespace) -> int:
    """The relay driven locked: after any stop, even when the configuration no longer loads as a whole
    (edited with a mistake, then restarted), as long as the file parses and has a ``[door]`` section that
    loads on its own. Otherwise nothing is driven and the exit code says so."""
    from kiosk.config import load_door_settings
    from kiosk.errors import ConfigError
    from kiosk.service import lock_relay

    try:
        door = _settings(args).door
    except ConfigError as whole:
        try:
            door = load_door_settings(args.config)
        except ConfigError as alone:
            raise ConfigError(f"{whole}; and the [door] section alone does not give the relay either ({alone}): "
                              "nothing was driven") from alone
        logger.error("%s; locking the door with the [door] section alone", whole)
    lock_relay(door)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def cmd_store_keygen(args: argparse.Namespace) -> int:
    from kiosk.errors import ConfigError
    from kiosk.store import generate_key

    try:
        generate_key(args.key)
    except FileExistsError as exc:
        raise ConfigError(f"{args.key} exists; refusing to overwrite a key (the store would become unreadable)") from exc
    print(f"wrote a new 256-bit key to {args.key} (mode 600)")
    return 0


def cmd_gallery_list(args: argparse.Namespace) -> int:
    from kiosk.artifacts import models_dir
    from kiosk.service import open_store
    from kiosk.vision.modelcard import DEFAULT_MODEL, ModelCard

    settings = _settings(args)
    card = ModelCard.load(settings.vision.model or (settings.models_dir or models_dir()) / DEFAULT_MODEL)
    people = open_store(settings, card.fingerprint)[0].people()
    if args.json:
        print(json.dumps(people, indent=2))
    else:
        for p in people:
            state = "deleted" if p["deleted"] else ("enabled" if p["enabled"] else "disabled")
            until = f", until {p['valid_until']}" if p["valid_until"] else ""
            print(f"{p['id']:<20} {p['name']:<24} rev {p['revision']:<6} {state}, {p['embeddings']} embeddings{until}")
        print(f"{sum(not p['deleted'] for p in people)} people")
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    """Local enrollment, signed with an administrator key the kiosk trusts (the store keeps only signed records)."""
    from kiosk.artifacts import models_dir
    from kiosk.enrollment import duplicate_people, enroll_template
    from kiosk.localenroll import enroll_signed
    from kiosk.service import open_store
    from kiosk.vision.pipeline import build_pipeline

    settings = _settings(args)
    v = settings.vision
    pipeline, card = build_pipeline(v.model, detector=v.detector, runtime=v.runtime, threads=v.threads,
                                    root=settings.models_dir or models_dir())
    template = enroll_template(pipeline, args.photos)
    for c in template.checks:
        print(f"  {'ok ' if c.reason is None else 'REJECTED'} {c.path}" + (f": {c.reason}" if c.reason else ""))
    store, _trust = open_store(settings, card.fingerprint)
    try:
        for other, score in duplicate_people(store.gallery(), template.template, exclude=args.id):
            logger.warning("%s would be taken for enrolled person %s (similarity %.3f)", args.id, other, score)
    finally:
        store.close()
    result = enroll_signed(settings, args.signing_key, args.id, args.name, template.row(), card.fingerprint,
                           valid_until=args.valid_until.timestamp() if args.valid_until else None)
    print(f"enrolled {args.id} ({args.name}): one template fused from {template.photos} photos, "
          f"revision {result.revision}; a running kiosk picks it up within seconds")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Store health, keys, snapshot and clock; non-zero when the door cannot be trusted as configured."""
    from kiosk.artifacts import models_dir
    from kiosk.service import open_store
    from kiosk.vision.modelcard import DEFAULT_MODEL, ModelCard

    settings = _settings(args)
    card = ModelCard.load(settings.vision.model or (settings.models_dir or models_dir()) / DEFAULT_MODEL)
    store, trust = open_store(settings, card.fingerprint)
    try:
        store.gallery()  # verifies every row: edited or corrupt ones are quarantined
        report = {"store": store.store_health(), "trust": trust.status()}
    finally:
        store.close()
    ok = bool(report["store"].get("ok")) and not report["trust"].get("snapshot_expired")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for section, values in report.items():
            print(f"[{section}]")
            for k, val in values.items():
                print(f"  {k}: {val}")
        print("ok" if ok else "PROBLEMS: see above")
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
    from kiosk.evalcmd import add_open_set_args

    add_open_set_args(e)
    e.set_defaults(handler=cmd_eval)
    r = sub.add_parser("run", help="the door service (systemd runs this)")
    r.add_argument("--config", type=Path, help="TOML config (default /etc/kiosk/kiosk.toml)")
    r.add_argument("--until-end", action="store_true", help="stop when a file or replay source ends")
    r.set_defaults(handler=cmd_run)

    dr = sub.add_parser("door", help="the door relay")
    dsub = dr.add_subparsers(dest="door_command", required=True)
    dl = dsub.add_parser("lock", help="drive the relay to locked (run by systemd after the service stops)")
    dl.add_argument("--config", type=Path)
    dl.set_defaults(handler=cmd_door_lock)

    cfg = sub.add_parser("config", help="configuration")
    csub = cfg.add_subparsers(dest="config_command", required=True)
    cc = csub.add_parser("check", help="print the effective config, or the errors")
    cc.add_argument("--config", type=Path)
    cc.set_defaults(handler=cmd_config_check)

    st = sub.add_parser("store", help="the local enrollment store")
    ssub = st.add_subparsers(dest="store_command", required=True)
    kg = ssub.add_parser("keygen", help="write a new store encryption key")
    kg.add_argument("--key", type=Path, required=True)
    kg.set_defaults(handler=cmd_store_keygen)

    g = sub.add_parser("gallery", help="who this kiosk holds")
    gsub = g.add_subparsers(dest="gallery_command", required=True)
    gl = gsub.add_parser("list", help="people, revisions and validity (never embeddings)")
    gl.add_argument("--config", type=Path)
    gl.add_argument("--json", action="store_true")
    gl.set_defaults(handler=cmd_gallery_list)

    en = sub.add_parser("enroll", help="enroll a person locally, from 3-10 photos")
    en.add_argument("--id", required=True, help="person id (letters, digits, _ and -)")
    en.add_argument("--name", required=True)
    en.add_argument("--valid-until", type=_datetime, help="ISO date/time when access ends")
    en.add_argument("--config", type=Path)
    en.add_argument("--signing-key", type=Path, required=True,
                    help="an administrator's private key that this kiosk trusts (kiosk admin keygen)")
    en.add_argument("photos", type=Path, nargs="+")
    en.set_defaults(handler=cmd_enroll)

    doc = sub.add_parser("doctor", help="store health (quarantined rows, pending erasures), keys, snapshot, clock")
    doc.add_argument("--config", type=Path)
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(handler=cmd_doctor)

    from kiosk.pad.cli import add_pad_parser

    add_pad_parser(sub)

    from kiosk.admin import add_parser as add_admin_parser

    add_admin_parser(sub, _datetime)

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
    except KeyboardInterrupt:  # commands with work worth keeping say what was kept themselves
        print("kiosk: interrupted", file=sys.stderr)
        return 130
