"""The site's root-signed key list as an administrator reads it: on the broker, in a file, in the state file."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.mqtt.keys import KeyList, parse_key_list
from kiosk.mqtt.snapshot import MAX_SNAPSHOT

# The kiosks take a key list as large as a snapshot (sync.max_snapshot_bytes, MAX_SNAPSHOT by default): a
# long-lived site's revocations outgrow the 64 KiB of MAX_KEY_LIST, and a list the kiosks take must be one the
# administrators can sign over, publish and verify.
KEY_LIST_BYTES = MAX_SNAPSHOT


def read_key_list(payload: bytes, root: Ed25519PublicKey, site: str) -> KeyList:
    """A key list verified against the site's root key, up to the size kiosks take; ``ProtocolError`` if not."""
    return parse_key_list(payload, root, site, max_bytes=KEY_LIST_BYTES)
