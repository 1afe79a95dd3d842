"""The store key file: 32 random bytes, readable by its owner only, that encrypt every signed record at rest."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import ConfigError

__all__ = ["KEY_BYTES", "generate_key", "load_key"]

KEY_BYTES = 32


def generate_key(path: Path) -> None:
    """Write a new random key, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(AESGCM.generate_key(bit_length=256))


def load_key(path: Path) -> bytes:
    """32 raw bytes from a file that only its owner can read (systemd credentials are exempt)."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"store key {path} is not readable ({exc.strerror}); create one with "
                          "`kiosk store keygen --key PATH`") from exc
    in_credentials = "CREDENTIALS_DIRECTORY" in os.environ and str(path).startswith(os.environ["CREDENTIALS_DIRECTORY"])
    if not in_credentials and stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(f"store key {path} has mode {stat.S_IMODE(st.st_mode):o}; it must be 600 (chmod 600 {path})")
    if len(data) != KEY_BYTES:
        raise ConfigError(f"store key {path} holds {len(data)} bytes; expected {KEY_BYTES} raw bytes")
    return data
