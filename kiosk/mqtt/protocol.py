"""Signed enrollment and tombstone messages: building, signing and strict parsing (pure).

Payloads are canonical JSON signed with Ed25519 by an administrator's key;
kiosks hold only public keys. Embeddings travel as base64 of little-endian
float32 rows. Everything a parser can refuse is a ``ProtocolError`` with a
short machine-readable ``reason``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosk.errors import KioskError
from kiosk.store import EMBEDDING_SIZE, MAX_EMBEDDINGS, Enrollment, Tombstone

VERSION = 1
MAX_PAYLOAD = 16 * 1024  # 10 embeddings take ~7 KiB in base64
PERSON_ID = r"^[A-Za-z0-9_-]{1,64}$"


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EnrollmentMsg(_Strict):
    v: Literal[1]
    type: Literal["enrollment"]
    site: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    person_id: str = Field(pattern=PERSON_ID)
    name: str = Field(min_length=1, max_length=128)
    enabled: bool
    valid_from: float | None
    valid_until: float | None
    revision: int = Field(ge=1, le=2**53)
    model_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    embeddings: list[str] = Field(min_length=1, max_length=MAX_EMBEDDINGS)
    issued_at: float
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str


class TombstoneMsg(_Strict):
    v: Literal[1]
    type: Literal["tombstone"]
    site: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    person_id: str = Field(pattern=PERSON_ID)
    revision: int = Field(ge=1, le=2**53)
    issued_at: float
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str


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

    def _sign(self, body: dict[str, Any]) -> bytes:
        body = {**body, "key_id": self.key_id}
        body["signature"] = base64.b64encode(self.private.sign(canonical(body))).decode()
        return canonical(body)

    def enrollment(self, site: str, e: Enrollment, issued_at: float) -> bytes:
        return self._sign({"v": VERSION, "type": "enrollment", "site": site, "person_id": e.person_id, "name": e.name,
                           "enabled": e.enabled, "valid_from": e.valid_from, "valid_until": e.valid_until,
                           "revision": e.revision, "model_fingerprint": e.model_fingerprint,
                           "embeddings": [encode_embedding(r) for r in e.embeddings], "issued_at": issued_at})

    def tombstone(self, site: str, t: Tombstone, issued_at: float) -> bytes:
        return self._sign({"v": VERSION, "type": "tombstone", "site": site, "person_id": t.person_id,
                           "revision": t.revision, "issued_at": issued_at})


def parse(payload: bytes, keys: dict[str, Ed25519PublicKey], site: str, topic_person: str | None = None
          ) -> Enrollment | Tombstone:
    """Verify and decode one message; raises ``ProtocolError`` with the reason it was refused."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("oversized", f"{len(payload)} bytes; at most {MAX_PAYLOAD}")
    try:
        data = json.loads(payload, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("malformed_json", str(exc)[:200]) from exc
    if not isinstance(data, dict):
        raise ProtocolError("schema", "payload is not a JSON object")
    models: dict[str, type[EnrollmentMsg] | type[TombstoneMsg]] = {"enrollment": EnrollmentMsg,
                                                                   "tombstone": TombstoneMsg}
    model = models.get(str(data.get("type")))
    if model is None:
        raise ProtocolError("schema", f"unknown message type {data.get('type')!r}")
    try:
        msg: EnrollmentMsg | TombstoneMsg = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProtocolError("schema", f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    public = keys.get(msg.key_id)
    if public is None:
        raise ProtocolError("unknown_key", f"no administrator key {msg.key_id} is configured")
    body = {k: v for k, v in data.items() if k != "signature"}
    try:
        public.verify(base64.b64decode(msg.signature, validate=True), canonical(body))
    except (InvalidSignature, ValueError) as exc:
        raise ProtocolError("bad_signature", "signature does not verify") from exc
    if msg.site != site:
        raise ProtocolError("wrong_site", f"message for site {msg.site!r}, this kiosk is in {site!r}")
    if topic_person is not None and topic_person != msg.person_id:
        raise ProtocolError("topic_mismatch", f"topic names {topic_person!r}, payload {msg.person_id!r}")
    if isinstance(msg, TombstoneMsg):
        return Tombstone(msg.person_id, msg.revision)
    rows = np.stack([decode_embedding(t) for t in msg.embeddings])
    return Enrollment(msg.person_id, msg.name, msg.revision, msg.model_fingerprint, rows, msg.enabled,
                      msg.valid_from, msg.valid_until)
