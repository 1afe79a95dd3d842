"""Administrator keys: files on disk, and the admin key list signed by the site's root key.

A site has one root key, generated and kept offline. Kiosks pin only the
root's public key; the root signs the list of administrator keys that are
valid now (and the ids of the ones it revoked). Rotating or revoking an
administrator key is publishing a new signed list, retained, on
``<prefix>/<site>/keys``; a list older than the one a kiosk holds is refused.

Public key files may be ``*.pub`` or ``*.pem``: a PEM SubjectPublicKeyInfo
(what ``kiosk admin keygen`` writes) or one line of base64 of the 32 raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from pydantic import Field

from kiosk.errors import ConfigError
from kiosk.mqtt.protocol import (
    KEY_ID,
    MAX_MS,
    SITE,
    ProtocolError,
    Signer,
    Strict,
    check_not_ahead,
    decode_json,
    key_id,
    validate,
    verify,
)

KEY_SUFFIXES = (".pub", ".pem")
MAX_KEY_LIST = 64 * 1024
MAX_KEYS = 64


def raw_public(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_from_raw(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise ProtocolError("schema", "public key is not 32 raw bytes in base64") from exc


def load_public_key(path: Path) -> Ed25519PublicKey:
    """One Ed25519 public key from a PEM file or a line of base64."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"public key {path} is not readable ({exc.strerror})") from exc
    try:
        key: Any = load_pem_public_key(data) if b"-----BEGIN" in data else public_from_raw(data.decode().strip())
    except (ValueError, UnicodeDecodeError, ProtocolError) as exc:
        raise ConfigError(f"{path} is neither a PEM public key nor base64 of 32 raw bytes: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}; expected an Ed25519 public key "
                          "(`kiosk admin keygen` makes one)")
    return key


def load_public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Keys from files and folders (every ``*.pub`` and ``*.pem`` in a folder), by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        files = sorted(f for f in path.iterdir() if f.suffix in KEY_SUFFIXES) if path.is_dir() else [path]
        for f in files:
            key = load_public_key(f)
            keys[key_id(key)] = key
    return keys


def write_private_key(path: Path, key: Ed25519PrivateKey) -> Path:
    """Private key (mode 600, never overwritten) at ``path``, public PEM at ``path.pub``; returns the latter."""
    if path.exists():
        raise ConfigError(f"{path} exists; refusing to overwrite a signing key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


class _KeyEntry(Strict):
    key_id: str = Field(pattern=KEY_ID)
    public_key: str = Field(max_length=64)
    name: str = Field(max_length=128)


class KeyListMsg(Strict):
    v: Literal[1]
    type: Literal["key_list"]
    site: str = Field(pattern=SITE)
    issued_at_ms: int = Field(ge=1, le=MAX_MS)
    keys: list[_KeyEntry] = Field(max_length=MAX_KEYS)
    revoked: list[str] = Field(max_length=4096)
    key_id: str = Field(pattern=KEY_ID)
    signature: str = Field(max_length=200)


@dataclass(frozen=True)
class KeyList:
    issued_at_ms: int
    keys: dict[str, Ed25519PublicKey]
    names: dict[str, str]
    revoked: frozenset[str]
    payload: bytes = field(repr=False, default=b"")


def sign_key_list(root: Signer, site: str, admins: dict[str, Ed25519PublicKey], issued_at_ms: int,
                  revoked: set[str] | frozenset[str] = frozenset(), names: dict[str, str] | None = None) -> bytes:
    names = names or {}
    if set(admins) & set(revoked):
        raise ConfigError(f"keys {sorted(set(admins) & set(revoked))} are both listed and revoked")
    entries = [{"key_id": kid, "public_key": raw_public(pub), "name": names.get(kid, "")}
               for kid, pub in sorted(admins.items())]
    return root.sign({"v": 1, "type": "key_list", "site": site, "issued_at_ms": issued_at_ms, "keys": entries,
                      "revoked": sorted(revoked)})


def parse_key_list(payload: bytes, root: Ed25519PublicKey, site: str, now_ms: int | None = None,
                   max_bytes: int = MAX_KEY_LIST) -> KeyList:
    """Verify a key list against the pinned root key; ``ProtocolError`` when refused. ``max_bytes``: the
    largest payload taken (``sync.max_snapshot_bytes``)."""
    data = decode_json(payload, max_bytes)
    msg: KeyListMsg = validate(KeyListMsg, data)
    if msg.key_id != key_id(root):
        raise ProtocolError("unknown_key", f"key list signed by {msg.key_id}, not by this site's root {key_id(root)}")
    verify(data, root)
    if msg.site != site:
        raise ProtocolError("wrong_site", f"key list for site {msg.site!r}, this kiosk is in {site!r}")
    check_not_ahead(msg.issued_at_ms, now_ms, "key list")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in msg.keys:
        public = public_from_raw(entry.public_key)
        if key_id(public) != entry.key_id:
            raise ProtocolError("schema", f"key {entry.key_id} does not match its public key")
        keys[entry.key_id] = public
    revoked = frozenset(msg.revoked)
    if revoked & set(keys):
        raise ProtocolError("schema", "a key is both listed and revoked")
    return KeyList(msg.issued_at_ms, keys, {e.key_id: e.name for e in msg.keys}, revoked, bytes(payload))
