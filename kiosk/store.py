"""The kiosk's enrollment store: SQLite (WAL), embeddings encrypted at rest, no photos.

Every change is one transaction, so a power cut leaves the old or the new
state. Revisions only grow: an older revision never overwrites a newer one
and never resurrects a deleted person (tombstones keep their revision).
Deleting a person overwrites its ciphertext (``secure_delete``) and
checkpoints the WAL, so the embedding is gone from the disk, not just hidden.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import ConfigError, KioskError
from kiosk.match import Gallery

logger = logging.getLogger(__name__)

KEY_BYTES = 32
EMBEDDING_SIZE = 128
MAX_EMBEDDINGS = 10
PERSON_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class StoreError(KioskError, RuntimeError):
    exit_code = 13


@dataclass(frozen=True)
class Enrollment:
    person_id: str
    name: str
    revision: int
    model_fingerprint: str
    embeddings: npt.NDArray[np.float32]  # (n, 128), unit rows
    enabled: bool = True
    valid_from: float | None = None  # unix seconds
    valid_until: float | None = None


@dataclass(frozen=True)
class Tombstone:
    person_id: str
    revision: int


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    reason: str  # applied | deleted | stale_revision | model_mismatch
    revision: int  # the revision the store holds afterwards
    erased: bool = False


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


SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    valid_from REAL,
    valid_until REAL,
    revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    model_fp TEXT,
    n_embeddings INTEGER NOT NULL DEFAULT 0,
    nonce BLOB,
    ciphertext BLOB,
    updated_at REAL NOT NULL
);
"""


class Store:
    def __init__(self, path: Path, key: bytes, model_fingerprint: str,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.model_fingerprint = model_fingerprint
        self.wall_clock = wall_clock
        self._aead = AESGCM(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._version = 0
        self._cached: tuple[int, Gallery] | None = None
        self._validity: dict[str, tuple[bool, float | None, float | None]] = {}

    def _aad(self, person_id: str, revision: int, model_fp: str) -> bytes:
        return f"{person_id}\x00{revision}\x00{model_fp}".encode()

    def revision(self, person_id: str) -> int | None:
        row = self._db.execute("SELECT revision FROM people WHERE id = ?", (person_id,)).fetchone()
        return None if row is None else int(row[0])

    def apply(self, record: Enrollment | Tombstone) -> ApplyResult:
        """Apply one enrollment or deletion in a single transaction."""
        if not PERSON_ID.fullmatch(record.person_id):
            raise StoreError(f"person id {record.person_id!r} must be 1-64 letters, digits, '_' or '-'")
        with self._lock:
            current = self.revision(record.person_id)
            if current is not None and record.revision <= current:
                return ApplyResult(False, "stale_revision", current)
            if isinstance(record, Tombstone):
                return self._delete(record)
            if record.model_fingerprint != self.model_fingerprint:
                return ApplyResult(False, "model_mismatch", current or 0)
            emb = np.ascontiguousarray(record.embeddings, dtype="<f4")
            if emb.ndim != 2 or emb.shape[1] != EMBEDDING_SIZE or not 1 <= emb.shape[0] <= MAX_EMBEDDINGS:
                raise StoreError(f"expected 1-{MAX_EMBEDDINGS} embeddings of {EMBEDDING_SIZE} values, got {emb.shape}")
            nonce = os.urandom(12)
            blob = self._aead.encrypt(nonce, emb.tobytes(), self._aad(record.person_id, record.revision,
                                                                       record.model_fingerprint))
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO people (id, name, enabled, valid_from, valid_until, revision, deleted, model_fp, "
                    "n_embeddings, nonce, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET name=excluded.name, enabled=excluded.enabled, "
                    "valid_from=excluded.valid_from, valid_until=excluded.valid_until, revision=excluded.revision, "
                    "deleted=0, model_fp=excluded.model_fp, n_embeddings=excluded.n_embeddings, nonce=excluded.nonce, "
                    "ciphertext=excluded.ciphertext, updated_at=excluded.updated_at",
                    (record.person_id, record.name, int(record.enabled), record.valid_from, record.valid_until,
                     record.revision, record.model_fingerprint, emb.shape[0], nonce, blob, self.wall_clock()))
            self._version += 1
            return ApplyResult(True, "applied", record.revision)

    def _delete(self, t: Tombstone) -> ApplyResult:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO people (id, name, enabled, revision, deleted, n_embeddings, updated_at) "
                "VALUES (?, '', 0, ?, 1, 0, ?) ON CONFLICT(id) DO UPDATE SET name='', enabled=0, valid_from=NULL, "
                "valid_until=NULL, revision=excluded.revision, deleted=1, model_fp=NULL, n_embeddings=0, nonce=NULL, "
                "ciphertext=NULL, updated_at=excluded.updated_at",
                (t.person_id, t.revision, self.wall_clock()))
        # secure_delete zeroes freed pages in the main file; the WAL still holds
        # the old page until it is checkpointed and truncated.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._version += 1
        return ApplyResult(True, "deleted", t.revision, erased=True)

    def gallery(self) -> Gallery:
        """Decrypted embeddings of everyone enabled, for this model; cached until the next change."""
        with self._lock:
            if self._cached is not None and self._cached[0] == self._version:
                return self._cached[1]
            rows = self._db.execute(
                "SELECT id, revision, model_fp, n_embeddings, nonce, ciphertext, enabled, valid_from, valid_until "
                "FROM people WHERE deleted = 0 AND model_fp = ?", (self.model_fingerprint,)).fetchall()
            mats, labels = [], []
            validity = {}
            for pid, rev, fp, n, nonce, blob, enabled, vf, vu in rows:
                raw = self._aead.decrypt(nonce, blob, self._aad(pid, rev, fp))
                mats.append(np.frombuffer(raw, dtype="<f4").reshape(n, EMBEDDING_SIZE))
                labels += [pid] * n
                validity[pid] = (bool(enabled), vf, vu)
            matrix = np.concatenate(mats).astype(np.float32) if mats else np.zeros((0, EMBEDDING_SIZE), np.float32)
            g = Gallery(matrix, labels)
            self._cached = (self._version, g)
            self._validity = validity
            return g

    def is_valid(self, person_id: str, _now: float | None = None) -> bool:
        """Enabled and inside its validity window right now (wall clock)."""
        self.gallery()
        enabled, vf, vu = self._validity.get(person_id, (False, None, None))
        now = self.wall_clock()
        return enabled and (vf is None or now >= vf) and (vu is None or now < vu)

    def people(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT id, name, enabled, valid_from, valid_until, revision, deleted, model_fp, "
                                "n_embeddings, updated_at FROM people ORDER BY id").fetchall()
        keys = ("id", "name", "enabled", "valid_from", "valid_until", "revision", "deleted", "model_fingerprint",
                "embeddings", "updated_at")
        return [{**dict(zip(keys, r)), "enabled": bool(r[2]), "deleted": bool(r[6])} for r in rows]

    def close(self) -> None:
        self._db.close()
