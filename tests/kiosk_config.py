"""A `kiosk run` configuration for tests: one replayed photo on a loop, mock relay, files under tmp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.artifacts import dataset_path
from kiosk.mqtt.keys import write_private_key
from kiosk.store import generate_key


def enroll_signed(config: Path, person: str, name: str, rows: np.ndarray, fingerprint: str) -> None:
    """Enroll into the store of a config written by ``write_replay_config``, signed by its site administrator key."""
    from kiosk.config import load_settings
    from kiosk.localenroll import enroll_signed as apply_signed

    result = apply_signed(load_settings(config), config.parent / "admin.key", person, name, rows, fingerprint)
    assert result.applied, result


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
    admin_pub = (tmp / "admin.key.pub") if (tmp / "admin.key").exists() else \
        write_private_key(tmp / "admin.key", Ed25519PrivateKey.generate())
    if "[mqtt]" not in extra:  # a test with its own [mqtt] section names its administrator keys there
        extra += f"""
[mqtt]
admin_keys = ["{admin_pub}"]
"""
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
