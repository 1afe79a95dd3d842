"""``meta.json`` beside each rendered sequence: what it shows and how to enroll its subject."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import DatasetError

META = "meta.json"
VERSION = 1
# Presentation attack instrument (PAI) species, in ISO/IEC 30107-3's sense.
STATIC_SPECIES = ("print_still", "print_turned", "print_bent", "phone_photo", "print_folded")
SPECIES = (*STATIC_SPECIES, "tablet_video")
BONA_FIDE = "bona_fide"
BEND_WIDTHS = (0.6, 1.2)  # a bent print's cylinder radius, in widths of the print (smaller: bent harder)
TURN_DEG = {"print_turned": (20.0, 35.0), "phone_photo": (3.0, 25.0)}  # yaw amplitude in the hand, degrees


@dataclass(frozen=True)
class ClipRange:
    """Seconds ``start_s`` to ``end_s`` of a video file."""

    path: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SequenceMeta:
    species: str  # one of SPECIES, or BONA_FIDE
    subject: str
    source: str  # the photo or clip the artefact shows
    seed: int
    fps: float
    frames: int
    enroll_photos: list[str] = field(default_factory=list)
    enroll_clip: ClipRange | None = None
    source_clip: ClipRange | None = None  # the part of the clip shown (tablet_video)
    synthetic: bool = True  # rendered, not filmed
    params: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    @property
    def attack(self) -> bool:
        return self.species != BONA_FIDE

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str = "meta") -> SequenceMeta:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DatasetError(f"{origin}: unknown keys {sorted(unknown)}; expected only {sorted(known)}")
        missing = {"species", "subject", "source", "seed", "fps", "frames"} - set(d)
        if missing:
            raise DatasetError(f"{origin}: missing keys {sorted(missing)}; re-render the sequence with `kiosk pad render`")
        if d["species"] not in (*SPECIES, BONA_FIDE):
            raise DatasetError(f"{origin}: species {d['species']!r} is not one of {[*SPECIES, BONA_FIDE]}")
        if d.get("version", VERSION) != VERSION:
            raise DatasetError(f"{origin}: meta version {d.get('version')} is not {VERSION}; re-render the sequence")
        clips = {k: ClipRange(**d[k]) if isinstance(d.get(k), dict) else None for k in ("enroll_clip", "source_clip")}
        meta = cls(**{**d, **clips})
        if not meta.enroll_photos and meta.enroll_clip is None:
            raise DatasetError(f"{origin}: neither enroll_photos nor enroll_clip: the subject cannot be enrolled")
        return meta


def write_meta(folder: Path, meta: SequenceMeta) -> Path:
    path = folder / META
    path.write_text(meta.to_json())
    return path


def read_meta(folder: Path) -> SequenceMeta:
    path = folder / META
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{folder}: no {META}; attack folders are made by `kiosk pad render`") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object, found {type(data).__name__}")
    try:
        return SequenceMeta.from_dict(data, str(path))
    except TypeError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
