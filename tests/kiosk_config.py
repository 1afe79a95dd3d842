"""A `kiosk run` configuration for tests: one replayed photo on a loop, mock relay, files under tmp."""

from __future__ import annotations

from pathlib import Path

from kiosk.artifacts import dataset_path
from kiosk.store import generate_key


def write_replay_config(tmp: Path, *, device: str, unlock_s: float = 5.0, extra: str = "",
                        liveness: str = "off") -> Path:
    """Replays a 5-celebrity photo of Ben Affleck forever; returns the TOML's path (a store key is made too).

    A still photo is exactly what the liveness cues refuse, so service-plumbing tests run with liveness off
    unless they ask for it (``liveness="challenge"``: the photo must then never open the door).
    """
    photo = sorted((dataset_path("5-celebrity") / "val" / "ben_afflek").glob("*.jpg"))[0]
    replay = tmp / "replay"
    replay.mkdir()
    (replay / "0000.jpg").write_bytes(photo.read_bytes())
    generate_key(tmp / "store.key")
    config = tmp / "kiosk.toml"
    config.write_text(f"""
device = "{device}"
site = "hq"
[camera]
type = "replay"
path = "{replay}"
fps = 10
loop = true
[door]
pin_factory = "mock"
unlock_s = {unlock_s}
[quality]
min_face_px = 40
[store]
path = "{tmp / 'kiosk.db'}"
key_file = "{tmp / 'store.key'}"
[events]
audit_log = "{tmp / 'audit.jsonl'}"
[liveness]
mode = "{liveness}"
{extra}
""")
    return config
