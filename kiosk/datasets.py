"""Labelled image sets on disk: identity folders and pair lists."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def identity_images(root: Path) -> Iterator[tuple[str, Path]]:
    """(person, photo) for every photo below ``root``; the person is the photo's folder name.

    Photos with identical content are listed once, so folders that hold the
    same images twice (train/val splits that overlap) do not inflate results.
    """
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    seen: set[str] = set()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        yield path.parent.name, path


def read_pairs(csv_path: Path, images: Path) -> list[tuple[Path, Path, bool]]:
    """Rows of a CSV with the header ``img1,img2,same``; same is 1/0 or true/false."""
    truth = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        with csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"img1", "img2", "same"} <= {f.strip() for f in reader.fieldnames}:
                raise DatasetError(f"{csv_path}: expected the header img1,img2,same, found {reader.fieldnames}")
            rows = []
            for n, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                same = truth.get(row["same"].lower())
                if same is None:
                    raise DatasetError(f"{csv_path}:{n}: same must be 1/0 or true/false, found {row['same']!r}")
                rows.append((images / row["img1"], images / row["img2"], same))
    except OSError as exc:
        raise DatasetError(f"cannot read {csv_path}: {exc}") from exc
    if not rows:
        raise DatasetError(f"{csv_path} has no pairs")
    return rows
