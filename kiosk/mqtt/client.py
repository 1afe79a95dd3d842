"""The kiosk's MQTT side: building a paho client, loading administrator keys.

The sync logic is in ``kiosk.mqtt.core`` (pure) and the paho adapter in
``kiosk.mqtt.adapter``; ``KioskMqtt`` is re-exported here for callers that
import it from this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from kiosk.errors import ConfigError
from kiosk.mqtt.adapter import KioskMqtt
from kiosk.mqtt.protocol import key_id

__all__ = ["KioskMqtt", "load_admin_keys", "make_client"]

KEY_SUFFIXES = ("*.pem", "*.pub")


def load_admin_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Ed25519 public keys (PEM) from files, or from folders of ``*.pem`` and ``*.pub`` files."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        files = sorted({f for pattern in KEY_SUFFIXES for f in path.glob(pattern)}) if path.is_dir() else [path]
        for f in files:
            try:
                key = load_pem_public_key(f.read_bytes())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"administrator key {f} is not a PEM public key: {exc}") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"administrator key {f} is not an Ed25519 key")
            keys[key_id(key)] = key
    return keys


def make_client(client_id: str, *, tls: bool = False, ca_file: Path | None = None,
                cert_file: Path | None = None, key_file: Path | None = None, username: str | None = None,
                password_file: Path | None = None) -> Any:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.suppress_exceptions = True  # a failing callback is logged by paho, never ends the network thread
    if tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None, certfile=str(cert_file) if cert_file else None,
                       keyfile=str(key_file) if key_file else None)
    if username:
        password = None
        if password_file is not None:
            try:
                password = password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"MQTT password file {password_file} is not readable: {exc.strerror}") from exc
        client.username_pw_set(username, password)
    return client
