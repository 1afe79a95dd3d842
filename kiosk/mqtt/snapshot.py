"""The signed site snapshot: every person's current revision, against rollback.

Retained enrollments alone cannot stop a rollback: anyone who can publish
on the broker can put back an older, validly signed enrollment of a person
who was since deleted, and a kiosk starting from an empty store has no
tombstone to compare it with. So an administrator signs, retained on
``<prefix>/<site>/snapshot``, the site's state: each person's current
revision (deleted people included), the active administrator key ids, an
issue time and an expiry. It is re-signed on every change and on a timer.

A kiosk refuses any enrollment older than the snapshot's revision for that
person, erases people the snapshot marks deleted, refuses a snapshot older
than the one it holds, and raises an alarm when the one it holds expired.
A revision in a snapshot is a record's issue time: a synchronised kiosk
refuses a snapshot with one more than a day ahead, as it refuses the record.

    {"v":1,"type":"snapshot","site":"hq","issued_at_ms":...,"expires_at_ms":...,
     "people":{"ann":[1795375999000,false],"bob":[1795376999000,true]},
     "keys":["<admin key id>",...],"key_id":"<signer>","signature":"..."}
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field

from kiosk.mqtt.protocol import (
    KEY_ID,
    MAX_AHEAD_MS,
    MAX_MS,
    SITE,
    ProtocolError,
    Signer,
    Strict,
    check_not_ahead,
    validate,
    verify,
)
from kiosk.mqtt.strictjson import decode_json
from kiosk.records import PERSON_ID_PATTERN

MAX_SNAPSHOT = 8 * 1024 * 1024  # ~100,000 people
SIGNATURE_BYTES = 64  # Ed25519
PERSON = re.compile(PERSON_ID_PATTERN)


class SnapshotMsg(Strict):
    v: Literal[1]
    type: Literal["snapshot"]
    site: str = Field(pattern=SITE)
    issued_at_ms: int = Field(ge=1, le=MAX_MS)
    expires_at_ms: int = Field(ge=1, le=MAX_MS)
    people: dict[str, list[int | bool]]
    keys: list[str] = Field(max_length=64)
    key_id: str = Field(pattern=KEY_ID)
    signature: str = Field(max_length=200)


@dataclass(frozen=True)
class Snapshot:
    issued_at_ms: int
    expires_at_ms: int
    people: dict[str, tuple[int, bool]]  # person -> (revision, deleted)
    keys: frozenset[str]
    key_id: str
    payload: bytes = field(repr=False, default=b"")

    def refusal(self, person_id: str, revision: int) -> str | None:
        """Why a record of this person at this revision must not be used, or ``None``."""
        return entry_refusal(self.people.get(person_id), revision)

    @cached_property
    def latest_ms(self) -> int:
        """Its latest time: the issue time, or a person's revision (a record's issue time) after it."""
        return max([self.issued_at_ms, *(rev for rev, _ in self.people.values())])

    def dated_ahead(self, now_ms: int | None) -> bool:
        """Dated, or giving a person a revision, more than a day ahead of a synchronised clock."""
        return now_ms is not None and self.latest_ms > now_ms + MAX_AHEAD_MS

    def deleted(self) -> dict[str, int]:
        return {p: rev for p, (rev, gone) in self.people.items() if gone}

    def expired(self, now_ms: int | None) -> bool:
        """Past its expiry; an unknown clock (``None``) counts as expired (fail closed)."""
        return now_ms is None or now_ms >= self.expires_at_ms


def entry_refusal(entry: tuple[int, bool] | None, revision: int) -> str | None:
    """Why a record at ``revision`` must not be used, given a snapshot's (revision, deleted) of the person."""
    if entry is None:
        return None  # enrolled after the snapshot was signed
    held, deleted = entry
    if deleted and revision <= held:
        return "deleted_in_snapshot"
    if revision < held:
        return "older_than_snapshot"
    return None


def sign_snapshot(signer: Signer, site: str, people: dict[str, tuple[int, bool]], keys: set[str] | frozenset[str],
                  issued_at_ms: int, expires_at_ms: int) -> bytes:
    if expires_at_ms <= issued_at_ms:
        raise ValueError("a snapshot must expire after it is issued")
    return signer.sign({"v": 1, "type": "snapshot", "site": site, "issued_at_ms": issued_at_ms,
                        "expires_at_ms": expires_at_ms,
                        "people": {p: [int(r), bool(d)] for p, (r, d) in sorted(people.items())},
                        "keys": sorted(keys)})


def parse_snapshot(payload: bytes, keys: dict[str, Ed25519PublicKey] | None, site: str,
                   now_ms: int | None = None, max_bytes: int = MAX_SNAPSHOT) -> Snapshot:
    """Verify a snapshot against the administrator keys valid now; ``ProtocolError`` when refused, also
    (``from_the_future``) when its issue time or a person's revision is more than a day after ``now_ms``, a
    synchronised clock.
    ``max_bytes``: the largest payload taken (``sync.max_snapshot_bytes``). ``keys`` None: read a snapshot
    the kiosk verified when it came, whose signer has been dropped since, without its signature (only
    for what it refuses, never to admit anyone).
    Decoded once, strictly, then the signer and the signature are checked before the schema is: a payload no
    current key signed costs no more than its decoding, however many people it lists."""
    data = decode_json(payload, max_bytes)
    if not isinstance(data, dict):
        raise ProtocolError("schema", "payload is not a JSON object")
    if keys is not None:
        check_signed(data, keys)
    msg: SnapshotMsg = validate(SnapshotMsg, data)
    if msg.site != site:
        raise ProtocolError("wrong_site", f"snapshot for site {msg.site!r}, this kiosk is in {site!r}")
    if msg.expires_at_ms <= msg.issued_at_ms:
        raise ProtocolError("schema", "snapshot expires before it is issued")
    check_not_ahead(msg.issued_at_ms, now_ms, "snapshot")
    people: dict[str, tuple[int, bool]] = {}
    for person, entry in msg.people.items():
        if not (PERSON.fullmatch(person) and len(entry) == 2 and type(entry[0]) is int and type(entry[1]) is bool
                and 1 <= entry[0] <= MAX_MS):
            raise ProtocolError("schema", f"snapshot entry {person[:64]!r}: expected [revision, deleted]")
        check_not_ahead(entry[0], now_ms, f"snapshot entry {person!r}")  # as the record itself would be
        people[person] = (entry[0], entry[1])
    return Snapshot(msg.issued_at_ms, msg.expires_at_ms, people, frozenset(msg.keys), msg.key_id, bytes(payload))


def check_signed(data: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    """``unknown_key`` or ``bad_signature`` unless a key of ``keys`` signed ``data`` (a decoded snapshot, its
    schema not checked yet: a signer that is not a key id is no current key; the signature is base64 of 64
    bytes before anything is hashed)."""
    kid = data.get("key_id")
    public = keys.get(kid) if isinstance(kid, str) else None
    if public is None:
        raise ProtocolError("unknown_key", f"snapshot signed by {str(kid)[:64]}, not a current administrator key")
    signature = data.get("signature")
    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise ProtocolError("bad_signature", "the signature is not base64 of an Ed25519 signature")
    verify(data, public)


def read_unverified(payload: bytes, site: str) -> Snapshot | None:
    """A stored snapshot whose signer was dropped since it was verified, read without its signature for
    what it refuses only; None when it is not ``site``'s or not readable."""
    try:
        return parse_snapshot(payload, None, site, max_bytes=len(payload))
    except ProtocolError:
        return None
