"""Signed enrollment and tombstone messages: building, signing and strict parsing (pure).

Payloads are canonical JSON signed with Ed25519 by an administrator's key;
kiosks hold only public keys. Embeddings travel as base64 of little-endian
float32 rows. The revision of a record is its own issue time in milliseconds
(``issued_at_ms``), so two administrators cannot mint the same revision by
accident and nobody can mint a revision far in the future without a kiosk
with a synchronised clock noticing. Everything a parser can refuse is a
``ProtocolError`` with a short machine-readable ``reason``.

An enrollment may carry the person's second factor (``kiosk.factor``), all
of it under the signature: ``pin_verifier`` and ``duress_verifier`` (slow,
keyed KDF verifiers, never a PIN), ``user_code`` (digits that claim the
person at the keypad) and ``cards`` (``h10301:F:N`` / ``w34:F:N``). A payload
without them is valid as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kiosk.errors import KioskError
from kiosk.factor.pin import parse_verifier
from kiosk.records import EMBEDDING_SIZE, MAX_EMBEDDINGS, Enrollment, Tombstone

VERSION = 2
MAX_PAYLOAD = 16 * 1024  # 10 embeddings take ~7 KiB in base64
PERSON_ID = r"^[A-Za-z0-9_-]{1,64}$"
SITE = r"^[A-Za-z0-9_-]{1,64}$"
KEY_ID = r"^[0-9a-f]{16}$"
MAX_AHEAD_MS = 86_400_000  # a record issued more than a day after a synchronised kiosk's clock is refused
MAX_MS = 2**53
USER_CODE = r"^[0-9]{1,12}$"  # the keypad takes at most 12 digits per field
CARD = r"^(h10301|w34):(0|[1-9][0-9]{0,4}):(0|[1-9][0-9]{0,4})$"
CARD_LIMITS = {"h10301": (0xFF, 0xFFFF), "w34": (0xFFFF, 0xFFFF)}  # facility, number
MAX_CARDS = 8
MAX_VERIFIER = 200
FACTOR_FIELDS = ("pin_verifier", "duress_verifier", "user_code", "cards")


class ProtocolError(KioskError, ValueError):
    exit_code = 15

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def decode_json(payload: bytes, limit: int) -> dict[str, Any]:
    """A JSON object, strictly: any decoder failure (nesting, huge numbers, bad UTF-8...) is ``malformed_json``."""
    if not isinstance(payload, bytes | bytearray):
        raise ProtocolError("malformed_json", f"payload is {type(payload).__name__}, not bytes")
    if len(payload) > limit:
        raise ProtocolError("oversized", f"{len(payload)} bytes; at most {limit}")
    try:
        data = json.loads(payload, parse_constant=_constant, parse_float=_finite, object_pairs_hook=_no_duplicates)
    except (ValueError, TypeError, RecursionError, MemoryError, OverflowError) as exc:
        raise ProtocolError("malformed_json", (str(exc) or type(exc).__name__)[:200]) from exc
    if not isinstance(data, dict):
        raise ProtocolError("schema", "payload is not a JSON object")
    return data


def validate(model: type[Any], data: dict[str, Any]) -> Any:
    """``model.model_validate`` with the first error as a ``schema`` refusal."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProtocolError("schema", f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    except (RecursionError, ValueError, TypeError) as exc:
        raise ProtocolError("schema", str(exc)[:200]) from exc


def verify(data: dict[str, Any], public: Ed25519PublicKey) -> None:
    """Check ``data['signature']`` over the canonical form of every other field."""
    body = {k: v for k, v in data.items() if k != "signature"}
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
        public.verify(signature, canonical(body))
    except (InvalidSignature, ValueError) as exc:
        raise ProtocolError("bad_signature", "signature does not verify") from exc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EnrollmentMsg(Strict):
    v: Literal[2]
    type: Literal["enrollment"]
    site: str = Field(pattern=SITE)
    person_id: str = Field(pattern=PERSON_ID)
    name: str = Field(min_length=1, max_length=128)
    enabled: bool
    valid_from: float | None
    valid_until: float | None
    model_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    embeddings: list[str] = Field(min_length=1, max_length=MAX_EMBEDDINGS)
    issued_at_ms: int = Field(ge=1, le=MAX_MS)
    key_id: str = Field(pattern=KEY_ID)
    signature: str = Field(max_length=200)
    # the second factor: optional, but never null when present
    pin_verifier: str | None = Field(None, max_length=MAX_VERIFIER)
    duress_verifier: str | None = Field(None, max_length=MAX_VERIFIER)
    user_code: str | None = Field(None, pattern=USER_CODE)
    cards: list[str] | None = Field(None, min_length=1, max_length=MAX_CARDS)
    # how the rows were made: "fused-mean-v1" = one template per person; absent = one row per photo (older)
    template: Literal["fused-mean-v1"] | None = None

    @field_validator("pin_verifier", "duress_verifier")
    @classmethod
    def _verifier(cls, value: str | None) -> str | None:
        if value is not None:
            parse_verifier(value)  # a VerifierError is a ValueError: a schema refusal with its reason
        return value

    @field_validator("cards")
    @classmethod
    def _cards(cls, value: list[str] | None) -> list[str] | None:
        for card in value or ():
            check_card(card)
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a card is listed twice")
        return value

    @model_validator(mode="after")
    def _factor(self) -> EnrollmentMsg:
        nulls = [f for f in FACTOR_FIELDS if f in self.model_fields_set and getattr(self, f) is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} is null: leave the field out instead")
        if self.duress_verifier is not None and self.pin_verifier is None:
            raise ValueError("a duress_verifier needs a pin_verifier")
        if self.duress_verifier is not None and self.duress_verifier == self.pin_verifier:
            raise ValueError("duress_verifier repeats pin_verifier")
        return self


def check_card(card: str) -> str:
    """``card`` if it is a card number as the Wiegand decoder writes it (``h10301:12:3456``); else ValueError."""
    m = re.match(CARD, card)
    if m is None:
        raise ValueError(f"card {card[:40]!r} is not 'h10301:<facility>:<number>' or 'w34:<facility>:<number>'")
    facility_max, number_max = CARD_LIMITS[m[1]]
    if int(m[2]) > facility_max or int(m[3]) > number_max:
        raise ValueError(f"card {card!r}: {m[1]} has facility 0-{facility_max} and number 0-{number_max}")
    return card


class TombstoneMsg(Strict):
    v: Literal[2]
    type: Literal["tombstone"]
    site: str = Field(pattern=SITE)
    person_id: str = Field(pattern=PERSON_ID)
    issued_at_ms: int = Field(ge=1, le=MAX_MS)
    key_id: str = Field(pattern=KEY_ID)
    signature: str = Field(max_length=200)


def encode_embedding(row: npt.NDArray[np.float32]) -> str:
    return base64.b64encode(np.asarray(row, "<f4").tobytes()).decode()


def decode_embedding(text: str) -> npt.NDArray[np.float32]:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProtocolError("bad_embedding", "embedding is not base64") from exc
    if len(raw) != 4 * EMBEDDING_SIZE:
        raise ProtocolError("bad_embedding", f"embedding has {len(raw) // 4} values, expected {EMBEDDING_SIZE}")
    row = np.frombuffer(raw, "<f4").astype(np.float32)
    if not np.all(np.isfinite(row)):
        raise ProtocolError("bad_embedding", "embedding holds NaN or infinity")
    if not math.isclose(float(np.linalg.norm(row)), 1.0, abs_tol=1e-3):
        raise ProtocolError("bad_embedding", "embedding is not unit length")
    return row


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, body: dict[str, Any]) -> bytes:
        """The canonical payload of ``body`` with this key's id and signature added."""
        body = {**body, "key_id": self.key_id}
        body["signature"] = base64.b64encode(self.private.sign(canonical(body))).decode()
        return canonical(body)

    def enrollment(self, site: str, e: Enrollment) -> bytes:
        """Signed enrollment; ``e.revision`` is its issue time in ms. Second-factor fields only when set."""
        body: dict[str, Any] = {
            "v": VERSION, "type": "enrollment", "site": site, "person_id": e.person_id, "name": e.name,
            "enabled": e.enabled, "valid_from": e.valid_from, "valid_until": e.valid_until,
            "model_fingerprint": e.model_fingerprint, "embeddings": [encode_embedding(r) for r in e.embeddings],
            "issued_at_ms": e.revision}
        factor: dict[str, Any] = {"pin_verifier": e.pin_verifier, "duress_verifier": e.duress_verifier,
                                  "user_code": e.user_code, "cards": list(e.cards) or None, "template": e.template}
        body.update({k: v for k, v in factor.items() if v is not None})
        return self.sign(body)

    def tombstone(self, site: str, t: Tombstone) -> bytes:
        return self.sign({"v": VERSION, "type": "tombstone", "site": site, "person_id": t.person_id,
                          "issued_at_ms": t.revision})


def check_not_ahead(issued_ms: int, now_ms: int | None, what: str) -> None:
    """Refuse a time more than a day ahead of a synchronised clock; an unknown clock (``None``) refuses nothing."""
    if now_ms is not None and issued_ms > now_ms + MAX_AHEAD_MS:
        raise ProtocolError("from_the_future", f"{what} issued at {issued_ms} ms, more than a day after this kiosk's "
                                               f"synchronised clock ({now_ms} ms); check the administrator's clock")


def same_signed(payload: bytes, other: bytes) -> bool:
    """Two verified documents are one when what their signatures cover is: a copy re-encoded (spacing, key
    order, escapes), which verifies as well, is the same document, never another one."""
    if payload == other:
        return True

    def body(p: bytes) -> bytes:
        return canonical({k: v for k, v in decode_json(p, len(p)).items() if k != "signature"})

    return body(payload) == body(other)


def same_or_older(issued: int, payload: bytes, held_issued: int, held_payload: bytes, what: str) -> bool:
    """True for the key list or snapshot held (seen again after a reconnect, however re-encoded); raises for
    an older or a conflicting one (``stale_key_list``, ``stale_snapshot``)."""
    if issued == held_issued and same_signed(payload, held_payload):
        return True
    if issued <= held_issued:
        raise ProtocolError(f"stale_{what}", f"{what} issued at {issued} ms; this kiosk holds one issued at "
                                             f"{held_issued} ms")
    return False


def parse(payload: bytes, keys: dict[str, Ed25519PublicKey], site: str, topic_person: str | None = None, *,
          revoked: Collection[str] = (), now_ms: int | None = None) -> Enrollment | Tombstone:
    """Verify and decode one message; raises ``ProtocolError`` with the reason it was refused.

    ``revoked`` names key ids that once were valid (refused as ``revoked_key``
    rather than ``unknown_key``); ``now_ms`` is the wall clock when it is
    synchronised, ``None`` when it is not known.
    """
    data = decode_json(payload, MAX_PAYLOAD)
    models: dict[str, type[EnrollmentMsg] | type[TombstoneMsg]] = {"enrollment": EnrollmentMsg,
                                                                   "tombstone": TombstoneMsg}
    kind = data.get("type")
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError("schema", f"unknown message type {str(kind)[:40]!r}")
    msg: EnrollmentMsg | TombstoneMsg = validate(model, data)
    public = keys.get(msg.key_id)
    if public is None:
        if msg.key_id in revoked:
            raise ProtocolError("revoked_key", f"administrator key {msg.key_id} was revoked; re-sign with a current key")
        raise ProtocolError("unknown_key", f"no administrator key {msg.key_id} is trusted")
    verify(data, public)
    if msg.site != site:
        raise ProtocolError("wrong_site", f"message for site {msg.site!r}, this kiosk is in {site!r}")
    if topic_person is not None and topic_person != msg.person_id:
        raise ProtocolError("topic_mismatch", f"topic names {topic_person[:64]!r}, payload {msg.person_id!r}")
    check_not_ahead(msg.issued_at_ms, now_ms, msg.type)
    if isinstance(msg, TombstoneMsg):
        return Tombstone(msg.person_id, msg.issued_at_ms, signed=bytes(payload), key_id=msg.key_id)
    rows = np.stack([decode_embedding(t) for t in msg.embeddings])
    return Enrollment(msg.person_id, msg.name, msg.issued_at_ms, msg.model_fingerprint, rows, msg.enabled,
                      msg.valid_from, msg.valid_until, signed=bytes(payload), key_id=msg.key_id,
                      pin_verifier=msg.pin_verifier, duress_verifier=msg.duress_verifier, user_code=msg.user_code,
                      cards=tuple(msg.cards or ()), template=msg.template)
