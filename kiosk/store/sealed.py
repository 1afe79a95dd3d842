"""The signed payload of a row: sealed at rest, and read back only through the site's trust.

Each row keeps the exact bytes an administrator signed, AES-GCM encrypted
with the store key and bound to the row's person and revision (a ciphertext
copied to another row, or kept across a revision, does not open). Reading a
row back decrypts it and verifies the signature against the administrator
keys valid now: what the store trusts is this, never its clear columns.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import KioskError
from kiosk.records import Enrollment, Tombstone
from kiosk.store.trust import Verifier

__all__ = ["Sealer", "StoreError", "open_verified", "verify_signed"]


class StoreError(KioskError, RuntimeError):
    exit_code = 13


class Sealer:
    """AES-GCM over one row's signed payload, its person and revision as associated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _bound(pid: str, revision: int) -> bytes:
        return f"signed\x00{pid}\x00{revision}".encode()

    def seal(self, pid: str, revision: int, payload: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) of ``payload`` for the row of ``pid`` at ``revision``."""
        nonce = os.urandom(12)
        return nonce, self._aead.encrypt(nonce, payload, self._bound(pid, revision))

    def open(self, pid: str, revision: int, nonce: bytes, blob: bytes) -> bytes:
        """The payload; raises ``InvalidTag`` when the row was edited, moved or sealed with another key."""
        return self._aead.decrypt(nonce, blob, self._bound(pid, revision))


def verify_signed(v: Verifier | None, pid: str, signed: bytes | None) -> Enrollment:
    """The enrollment an administrator signed for ``pid``, verified against the site's keys now; a
    ``StoreError`` saying why not."""
    from kiosk.mqtt.protocol import ProtocolError, parse

    if signed is None:
        raise StoreError(f"enrollment of {pid} is not signed: the kiosk stores only records an administrator "
                         "signed (`kiosk admin enroll`, or a signed local enrollment)")
    if v is None:
        raise StoreError("no administrator keys are configured (SiteTrust not attached): nothing can be verified")
    try:
        got = parse(signed, v.keys(), v.site, topic_person=pid, revoked=v.revoked())
    except ProtocolError as exc:
        raise StoreError(f"the signed record of {pid} does not verify: {exc}") from exc
    if not isinstance(got, Enrollment):
        raise StoreError(f"the signed record of {pid} is a {type(got).__name__}, not an enrollment")
    return got


def open_verified(sealer: Sealer, v: Verifier, pid: str, revision: int, nonce: bytes,
                  blob: bytes) -> Enrollment | Tombstone | str:
    """The record a row holds, decrypted and verified against the site's keys now; or why not: the
    protocol's refusal reason, or ``undecryptable``."""
    from kiosk.mqtt.protocol import ProtocolError, parse

    try:
        payload = sealer.open(pid, revision, nonce, blob)
        return parse(payload, v.keys(), v.site, topic_person=pid, revoked=v.revoked())
    except (InvalidTag, ValueError, TypeError) as exc:
        return exc.reason if isinstance(exc, ProtocolError) else "undecryptable"
