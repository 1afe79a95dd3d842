"""The site's root-signed key list as an administrator reads it: on the broker, in a file, in the state file."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.errors import ConfigError
from kiosk.mqtt.keys import KeyList, parse_key_list
from kiosk.mqtt.protocol import ProtocolError, decode_json
from kiosk.mqtt.snapshot import MAX_SNAPSHOT

# The kiosks take a key list as large as a snapshot (sync.max_snapshot_bytes, MAX_SNAPSHOT by default): a
# long-lived site's revocations outgrow the 64 KiB of MAX_KEY_LIST, and a list the kiosks take must be one the
# administrators can sign over, publish and verify.
KEY_LIST_BYTES = MAX_SNAPSHOT


def read_key_list(payload: bytes, root: Ed25519PublicKey, site: str) -> KeyList:
    """A key list verified against the site's root key, up to the size kiosks take; ``ProtocolError`` if not."""
    return parse_key_list(payload, root, site, max_bytes=KEY_LIST_BYTES)


def check_replaces(held: bytes, issued_at_ms: int, root: Ed25519PublicKey | None, site: str, name: str) -> str | None:
    """Whether the key list ``name``, issued at ``issued_at_ms``, may replace ``held``, the one retained on the
    broker: ``ConfigError`` when kiosks holding ``held`` would refuse it, else a warning to print (or None).

    Only a retained list that verifies against the root key (``root``) can be what kiosks hold: anything else
    there (junk, a list another root signed) was refused by every kiosk and is overwritten, so that nobody who
    can write on the broker can stop a revocation. Without ``root`` nothing can be verified: a well-formed list
    claiming to be as new is refused, naming --root-pub, which tells the two apart."""
    if root is not None:
        try:
            got = read_key_list(held, root, site)
        except ProtocolError as exc:
            return (f"the broker holds a key list that does not verify against the root key ({exc}): kiosks refused "
                    "it; overwriting it")
        if got.issued_at_ms >= issued_at_ms:
            raise ConfigError(f"the broker holds a key list the root signed at {got.issued_at_ms}, not older than {name} "
                              f"({issued_at_ms}); kiosks would refuse it: sign a new one")
        return None
    try:
        held_ms = decode_json(held, KEY_LIST_BYTES).get("issued_at_ms")
    except ProtocolError as exc:
        return f"the broker holds something that is not a key list ({exc}): kiosks refused it; overwriting it"
    if not isinstance(held_ms, int) or isinstance(held_ms, bool):
        return "the broker holds something that is not a key list (no issue time): kiosks refused it; overwriting it"
    if held_ms >= issued_at_ms:
        raise ConfigError(f"the broker holds a key list claiming issue time {held_ms}, not older than {name} "
                          f"({issued_at_ms}); pass --root-pub to check it: one the root signed means kiosks would "
                          "refuse this one (sign a new one), one it did not is overwritten")
    return None
