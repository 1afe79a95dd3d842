"""Where ``kiosk pad render`` may write, and from which photos: the output folder's record of the options
it was rendered with (so that a second run neither overwrites nor passes off old sequences as new), and
the checks of the attack and enrollment photos made before anything is written."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, DatasetError, KioskError, NoFaceError
from kiosk.imageio import read_rgb

logger = logging.getLogger(__name__)

RENDER_RECORD = "render.json"  # the options an --out folder was rendered with


def render_options(args: argparse.Namespace, enroll: list[Path]) -> dict[str, Any]:
    """What decides the sequences' content (not which species: one folder may gather several runs). The
    detector is among it: its box places the cut-out, so another model renders other frames."""
    def text(p: Path | None) -> str | None:
        return None if p is None else str(p.resolve())

    subject = (args.subject or args.photo.parent.name) if args.photo else None
    return {"photo": text(args.photo), "enroll": sorted(str(text(p)) for p in enroll), "subject": subject,
            "lfw": text(args.lfw), "people": args.people if args.lfw else None,
            "per_species": args.per_species if args.lfw else None, "count": None if args.lfw else args.count,
            "video": text(args.video), "frames": args.frames, "seed": args.seed,
            "bend": None if args.bend is None else list(args.bend), "turn": None if args.turn is None else list(args.turn),
            "detector": args.detector}


def claim_out(out: Path, options: dict[str, Any], species: list[str]) -> None:
    """Make ``out`` this render's folder, or refuse: sequences rendered there with other options would
    be overwritten (the same names) or, in a batch, kept as if they had been made with these."""
    record = out / RENDER_RECORD
    try:
        if record.is_file():
            try:
                earlier = json.loads(record.read_text())
                before, done = earlier["options"], earlier.get("species", [])
                if not isinstance(before, dict) or not isinstance(done, list) or not all(
                        isinstance(x, str) for x in done):
                    raise TypeError("options is not a table or species not a list of names")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"--out {out}: {RENDER_RECORD} is unreadable ({exc}); use a new --out") from exc
            differ = sorted(k for k in set(before) | set(options) if before.get(k) != options.get(k))
            if differ and any(out.rglob("meta.json")):
                raise ConfigError(f"--out {out} holds sequences rendered with other options ({', '.join(differ)}): "
                                  "they would be overwritten or mixed with these; use a new --out")
            if not differ:
                species = sorted(set(done) | set(species))
        elif out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"--out {out} exists and is not an empty folder or one of `kiosk pad render`'s "
                              "(no render.json): use a new --out")
        out.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"options": options, "species": species}, indent=1) + "\n")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc


def check_photos(photo: Path, enroll: list[Path], detect: Any, given: bool) -> list[Path]:
    """The enrollment photos to record. The attack photo should show one face (the largest is used, and
    said so when there are more). Photos given with ``--enroll`` must be readable, show a face and not
    be the attack photo; of those found beside ``--photo`` (``given`` False) the unusable are left out."""
    faces = detect(read_rgb(photo))
    if not faces:
        raise NoFaceError(f"--photo {photo}: no face to render")
    if len(faces) > 1:
        logger.warning("--photo %s shows %d faces: the largest is rendered", photo, len(faces))
    kept = []
    for p in enroll:
        try:
            if p.resolve() == photo.resolve():
                raise ConfigError(f"--enroll {p} is the photo attacked with: enroll the subject from other photos")
            if not detect(read_rgb(p)):
                raise DatasetError(f"--enroll {p}: no face found")
        except KioskError as exc:
            if given:
                raise
            logger.warning("%s: left out of the enrollment", exc)
            continue
        kept.append(p)
    if not kept:
        raise DatasetError(f"no usable enrollment photo beside {photo}: give --enroll PHOTO...")
    return kept
