"""The store itself: signed records written in one transaction each, and read back only once they verify.

See ``kiosk.store`` for what it trusts and how erasure works.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.factor.index import FactorIndex
from kiosk.gallery import IncrementalGallery
from kiosk.match import Gallery, fuse_rows
from kiosk.records import (
    EMBEDDING_SIZE,
    PERSON_ID_PATTERN,
    Enrollment,
    Record,
    Tombstone,
    window_open,
)
from kiosk.store.erasure import PendingErasure
from kiosk.store.schema import COLUMNS, SCHEMA_VERSION, migrate
from kiosk.store.sealed import Sealer, StoreError, open_verified, verify_signed
from kiosk.store.trust import HELD, POLICY, Verifier, policy_refusal

__all__ = ["ApplyResult", "EventHook", "Store", "StoreError"]

logger = logging.getLogger(__name__)

PERSON_ID = re.compile(PERSON_ID_PATTERN)
EventHook = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    reason: str  # applied | deleted | stale_revision | model_mismatch | a trust refusal
    revision: int  # the revision the store holds afterwards
    erased: bool = False  # the deleted embedding is gone from the WAL too (checkpoint succeeded)


@dataclass
class _Row:
    revision: int
    state: str  # active | inactive | quarantined | deleted
    reason: str = ""
    key_id: str | None = None


def damaged(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """A store file SQLite cannot read: what it is, that it is left as it is, and what to do."""
    return StoreError(
        f"the store {path} is not a readable SQLite database ({exc}): it is damaged (an SD card fault, a power cut) "
        f"or is not the kiosk's store. The kiosk leaves it untouched. Stop the service, move it aside with its "
        f"-wal and -shm files (mv {path} {path}.damaged) and start again: an empty store refills from the "
        f"broker's retained records (or `kiosk admin republish`); local enrollments must be made again")


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """SQLite's errors while opening or reading the store, as a ``StoreError`` naming the file and the fix."""
    try:
        yield
    except sqlite3.OperationalError as exc:  # locked, unreadable, a full disk: the file itself may be fine
        raise StoreError(f"cannot read the store {path}: {exc}; check its owner and mode, the disk, and that no "
                         "other program holds it locked") from exc
    except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
        raise damaged(path, exc) from exc


def _open(path: Path) -> sqlite3.Connection:
    """The store's connection: read before anything is written, so a damaged or foreign file is refused as
    it is (a ``StoreError``), never changed; then WAL, full sync, secure delete and the schema."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        with _readable(path):
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "people" not in tables:
                raise StoreError(f"{path} is an SQLite database but not a kiosk store (it holds the tables "
                                 f"{', '.join(sorted(tables))}): the kiosk leaves it untouched; set [store] path "
                                 "to the kiosk's own file, or to a new one")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db


class Store:
    def __init__(self, path: Path, key: bytes, model_fingerprint: str,
                 wall_clock: Callable[[], float] = time.time, *, verifier: Verifier | None = None,
                 on_event: EventHook | None = None, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, checkpoint_attempts: int = 5,
                 poll_s: float = 1.0) -> None:
        self.path = path
        self.model_fingerprint = model_fingerprint
        self.wall_clock = wall_clock
        self.on_event = on_event
        self._sealer = Sealer(key)
        self._monotonic = monotonic
        self._poll_s = poll_s
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = _open(path)
        self._lock = threading.RLock()
        self._verifier = verifier
        self._version = 0
        self._data_version = self._db_version()
        self._polled_at = monotonic()
        self._gallery: IncrementalGallery | None = None
        self._rows: dict[str, _Row] = {}
        self._validity: dict[str, tuple[bool, float | None, float | None]] = {}
        self._factor = FactorIndex()  # PIN verifiers, user codes, cards: from verified records only
        self._pending_erasure = PendingErasure(self._db, wall_clock, self._emit, sleep, checkpoint_attempts)
        self._reported: dict[str, tuple[int, str]] = {}  # quarantined rows already reported
        self._seen: dict[str, tuple[Any, ...]] = {}  # (revision, deleted, nonce) of each row as last verified

    def _db_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # trust
    def use_verifier(self, verifier: Verifier) -> None:
        """Attach the site's trust; the next gallery access verifies every row again."""
        with self._lock:
            self._verifier = verifier
            self._gallery = None

    def trust_changed(self) -> None:
        """Keys or snapshot changed: re-apply policy to every row, reloading only those that change state."""
        with self._lock:
            if self._gallery is None:
                return
            v = self._verifier
            for pid, row in list(self._rows.items()):
                if row.state == "active":
                    reason = policy_refusal(v, pid, row.revision, row.key_id)
                    if reason is not None:
                        self._gallery.remove(pid)
                        self._validity.pop(pid, None)
                        self._factor.forget(pid)
                        self._rows[pid] = _Row(row.revision, "inactive", reason, row.key_id)
                        logger.info("%s no longer admitted: %s", pid, reason)
                elif row.state == "inactive" and row.reason not in ("unsigned", "model_mismatch") and v is not None \
                        and policy_refusal(v, pid, row.revision, row.key_id) is None:
                    self._load_one(pid)
            self._version += 1

    def save_state(self, name: str, payload: bytes) -> None:
        """Persist a signed trust document (key list, snapshot) so a restart works offline."""
        with self._lock:
            self._db.execute("INSERT INTO trust_state VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                             "payload=excluded.payload, updated_at=excluded.updated_at",
                             (name, payload, self.wall_clock()))

    def load_state(self, name: str) -> bytes | None:
        with self._lock, _readable(self.path):
            row = self._db.execute("SELECT payload FROM trust_state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    # writes
    def revision(self, person_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT revision FROM people WHERE id = ?", (person_id,)).fetchone()
        return None if row is None else int(row[0])

    def apply(self, record: Record) -> ApplyResult:
        """Apply one signed enrollment, or a deletion, in a single transaction.

        An enrollment must carry its signed payload (``record.signed``, as
        ``kiosk.mqtt.protocol.parse`` returns it); the payload is verified
        again here and is what gets stored, whatever the other fields say.
        """
        if not PERSON_ID.fullmatch(record.person_id):
            raise StoreError(f"person id {record.person_id!r} must be 1-64 letters, digits, '_' or '-'")
        with self._lock:
            self._poll()
            self._pending_erasure.retry()  # the WAL is about to be written anyway: finish a blocked erasure first
            row = self._db.execute("SELECT revision, deleted = 0 AND signed_ct IS NULL FROM people WHERE id = ?",
                                   (record.person_id,)).fetchone()
            current = None if row is None else int(row[0])
            held = self._rows.get(record.person_id)
            # a row that never verified (written unsigned by schema 1, or quarantined) is replaced by any verified one
            repairable = row is not None and (bool(row[1]) or (held is not None and held.state == "quarantined"))
            stale = current is not None and not repairable
            if isinstance(record, Tombstone):
                if stale and current is not None and record.revision <= current:
                    return ApplyResult(False, "stale_revision", current)
                return self._delete(record)
            verified = verify_signed(self._verifier, record.person_id, record.signed)
            if stale and current is not None and verified.revision <= current:
                if verified.revision == current and held is not None and held.reason == HELD:
                    return ApplyResult(True, HELD, current)  # the record held, seen again: still held
                return ApplyResult(False, "stale_revision", current)
            if verified.model_fingerprint != self.model_fingerprint:
                return ApplyResult(False, "model_mismatch", current or 0)
            reason = policy_refusal(self._verifier, verified.person_id, verified.revision, verified.key_id)
            if reason is not None and reason != HELD:
                return ApplyResult(False, reason, current or 0)
            self._write(verified)
            if reason == HELD:  # kept, set aside until a snapshot admits it (``trust_changed``)
                self._rows[verified.person_id] = _Row(verified.revision, "inactive", reason, verified.key_id)
                self._version += 1
                return ApplyResult(True, reason, verified.revision)
            if self._gallery is not None:
                self._activate(verified)
            self._version += 1  # (own commits do not move data_version: only other connections' do)
            return ApplyResult(True, "applied", verified.revision)

    def _write(self, e: Enrollment) -> None:
        assert e.signed is not None
        nonce, blob = self._sealer.seal(e.person_id, e.revision, e.signed)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO people (id, name, enabled, valid_from, valid_until, revision, deleted, model_fp, "
                "n_embeddings, nonce, ciphertext, updated_at, signed_nonce, signed_ct, key_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, enabled=excluded.enabled, "
                "valid_from=excluded.valid_from, valid_until=excluded.valid_until, revision=excluded.revision, "
                "deleted=0, model_fp=excluded.model_fp, n_embeddings=excluded.n_embeddings, nonce=NULL, "
                "ciphertext=NULL, updated_at=excluded.updated_at, signed_nonce=excluded.signed_nonce, "
                "signed_ct=excluded.signed_ct, key_id=excluded.key_id",
                (e.person_id, e.name, int(e.enabled), e.valid_from, e.valid_until, e.revision, e.model_fingerprint,
                 len(e.embeddings), self.wall_clock(), nonce, blob, e.key_id))
        self._seen[e.person_id] = (e.revision, 0, nonce)

    def erase(self, person_id: str, revision: int | None = None) -> ApplyResult:
        """Delete a person the snapshot marks deleted (its revision by default), whatever the store holds."""
        v = self._verifier
        rev = revision or (v.deleted_revision(person_id) if v is not None else None) or \
            (self.revision(person_id) or 0) + 1
        return self.apply(Tombstone(person_id, rev))

    def _delete(self, t: Tombstone) -> ApplyResult:
        signed = (None, None) if t.signed is None else self._sealer.seal(t.person_id, t.revision, t.signed)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO people (id, name, enabled, revision, deleted, n_embeddings, updated_at, signed_nonce, "
                "signed_ct, key_id) VALUES (?, '', 0, ?, 1, 0, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name='', "
                "enabled=0, valid_from=NULL, valid_until=NULL, revision=excluded.revision, deleted=1, model_fp=NULL, "
                "n_embeddings=0, nonce=NULL, ciphertext=NULL, updated_at=excluded.updated_at, "
                "signed_nonce=excluded.signed_nonce, signed_ct=excluded.signed_ct, key_id=excluded.key_id",
                (t.person_id, t.revision, self.wall_clock(), *signed, t.key_id))
            self._pending_erasure.record(t.person_id, t.revision)
        self._seen[t.person_id] = (t.revision, 1, signed[0])
        if self._gallery is not None:
            self._gallery.remove(t.person_id)
        self._validity.pop(t.person_id, None)
        self._factor.forget(t.person_id)
        self._rows[t.person_id] = _Row(t.revision, "deleted")
        self._version += 1
        erased = self._pending_erasure.finish(t.person_id)
        return ApplyResult(True, "deleted", t.revision, erased=erased)

    def retry_erasure(self) -> bool:
        """One attempt, without waiting, to finish erasures a reader blocked (see ``kiosk.store.erasure``);
        True when nothing is pending."""
        with self._lock:
            return self._pending_erasure.retry()

    def tick(self) -> float | None:
        """The running service's periodic upkeep (a ``Ticker``, every ``ERASURE_RETRY_S``): blocked erasures."""
        self.retry_erasure()
        return None

    # reads
    def _poll(self) -> None:
        """Pick up changes another process committed (a local ``kiosk enroll``)."""
        dv = self._db_version()
        if dv != self._data_version:
            self._data_version = dv
            self._version += 1
            if self._gallery is not None:
                self._reload_changed()

    def _reload_changed(self) -> None:
        """Verify again only the rows another process wrote (the in-memory state only ever comes from
        verified records, so a row whose revision and ciphertext nonce did not change needs nothing)."""
        now = {r[0]: (r[1], r[2], r[3]) for r in
               self._db.execute("SELECT id, revision, deleted, signed_nonce FROM people").fetchall()}
        changed = [p for p, seen in now.items() if self._seen.get(p) != seen] + [p for p in self._seen if p not in now]
        if changed:
            logger.info("the store changed on disk: verifying %d changed rows", len(changed))
        for pid in changed:
            self._load_one(pid)

    def change_token(self) -> int:
        with self._lock:
            self._poll()
            return self._version

    def changed_since(self, token: int) -> bool:
        """Whether anything changed (here or in another process) since ``change_token()`` returned ``token``."""
        return self.change_token() != token

    def gallery(self) -> Gallery:
        """The verified, admitted embeddings for this model; O(1) between changes."""
        with self._lock:
            now = self._monotonic()
            if now - self._polled_at >= self._poll_s:
                self._polled_at = now
                self._poll()
            if self._gallery is None:
                with _readable(self.path):
                    self._load_all()
            assert self._gallery is not None
            return self._gallery.snapshot()

    def _load_all(self) -> None:
        self._gallery = IncrementalGallery(EMBEDDING_SIZE)
        self._rows.clear()
        self._validity.clear()
        self._factor = FactorIndex()
        self._seen.clear()
        try:
            rows = self._db.execute(f"SELECT id, {COLUMNS} FROM people ORDER BY id").fetchall()
        except sqlite3.DatabaseError:
            self._gallery = None  # nothing half-loaded is ever used
            raise
        for row in rows:
            self._load_one(row[0], row[1:])
        bad = {p: r.reason for p, r in self._rows.items() if r.state == "quarantined"}
        logger.info("gallery: %d people admitted, %d set aside, %d quarantined", self._gallery.people(),
                    sum(r.state == "inactive" for r in self._rows.values()), len(bad))

    def _load_one(self, pid: str, row: tuple[Any, ...] | None = None) -> None:
        """Decrypt and verify one row; admit it to the gallery, set it aside, or quarantine it."""
        assert self._gallery is not None
        if row is None:
            row = self._db.execute(f"SELECT {COLUMNS} FROM people WHERE id = ?", (pid,)).fetchone()
        self._seen.pop(pid, None)
        self._gallery.remove(pid)
        self._validity.pop(pid, None)
        self._factor.forget(pid)
        if row is None:
            self._rows.pop(pid, None)
            return
        revision, deleted, nonce, blob, kid = int(row[0]), bool(row[1]), row[2], row[3], row[4]
        self._seen[pid] = (row[0], row[1], nonce)
        if deleted:
            self._rows[pid] = _Row(revision, "deleted")
            return
        if blob is None:
            self._rows[pid] = _Row(revision, "inactive", "unsigned", kid)
            return
        if self._verifier is None:
            self._rows[pid] = _Row(revision, "inactive", "no_trust", kid)
            return
        record = open_verified(self._sealer, self._verifier, pid, revision, nonce, blob)
        if isinstance(record, str):  # why it does not open or verify
            if record in POLICY:
                self._rows[pid] = _Row(revision, "inactive", record, kid)
            else:
                self._quarantine(pid, revision, record)
            return
        if not isinstance(record, Enrollment) or record.revision != revision:
            self._quarantine(pid, revision, "revision_mismatch")
            return
        if tuple(row[4:]) != (record.key_id, record.name, int(record.enabled), record.valid_from, record.valid_until,
                              record.model_fingerprint, len(record.embeddings)):
            self._quarantine(pid, revision, "edited")  # the clear columns disagree with what was signed
            return
        if record.model_fingerprint != self.model_fingerprint:
            self._rows[pid] = _Row(revision, "inactive", "model_mismatch", record.key_id)
            return
        refusal = policy_refusal(self._verifier, pid, revision, record.key_id)
        if refusal is not None:
            self._rows[pid] = _Row(revision, "inactive", refusal, record.key_id)
            return
        self._activate(record)

    def _activate(self, e: Enrollment) -> None:
        assert self._gallery is not None
        # one template per person: a record carrying several photos' embeddings (older enrollments) is fused,
        # so the gallery holds one row per person and the security level counts people, not photos
        rows = e.embeddings if len(e.embeddings) == 1 else fuse_rows(e.embeddings)[None, :]
        self._gallery.put(e.person_id, rows)
        self._validity[e.person_id] = (e.enabled, e.valid_from, e.valid_until)
        self._factor.put(e)
        self._rows[e.person_id] = _Row(e.revision, "active", "", e.key_id)

    def _quarantine(self, pid: str, revision: int, reason: str) -> None:
        self._rows[pid] = _Row(revision, "quarantined", reason)
        if self._reported.get(pid) == (revision, reason):
            return  # reported at an earlier load: once is enough
        self._reported[pid] = (revision, reason)
        logger.error("store row %s quarantined (%s): it is never used; re-publish that person's record", pid, reason)
        self._emit("store_quarantine", {"person": pid, "reason": reason})

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, fields)
            except Exception:  # reporting must never stop the store
                logger.exception("store event hook failed for %s", kind)

    def is_valid(self, person_id: str, _now: float | None = None) -> bool:
        """Admitted, enabled and inside its validity window, all from the verified record.

        A validity window needs a synchronised wall clock: while the clock is
        not known to be right, only people without a window pass.
        """
        with self._lock:
            self.gallery()
            entry = self._validity.get(person_id)
            v = self._verifier
        if entry is None or v is None:
            return False
        return window_open(*entry, v.now())

    def pin_verifiers(self, person_id: str) -> tuple[str, str | None] | None:
        """(PIN verifier, duress verifier or None) of an admitted person, from the verified record; None: no PIN."""
        with self._lock:
            self.gallery()
            return self._factor.verifiers(person_id)

    def person_for_card(self, card: str) -> str | None:
        """The admitted person a card is enrolled to; None when nobody (or, fail closed, more than one) holds it."""
        with self._lock:
            self.gallery()
            return self._factor.card(card)

    def person_for_code(self, code: str) -> str | None:
        """The admitted person a keypad user code names; None when nobody (or more than one) holds it."""
        with self._lock:
            self.gallery()
            return self._factor.code(code)

    def count(self) -> int:
        """People admitted right now (cheap: no gallery copy)."""
        with self._lock:
            self.gallery()
            assert self._gallery is not None
            return self._gallery.people()

    @property
    def quarantined(self) -> dict[str, str]:
        with self._lock:
            return {p: r.reason for p, r in self._rows.items() if r.state == "quarantined"}

    def store_health(self) -> dict[str, Any]:
        """What ``kiosk doctor`` shows: how many rows are used, set aside (and why) or quarantined, and the
        erasures still pending (of every process: the list is in the database), after one more try."""
        with self._lock:
            self.gallery()
            self.retry_erasure()
            pending = list(self._pending_erasure)
            inactive: dict[str, int] = {}
            for r in self._rows.values():
                if r.state == "inactive":
                    inactive[r.reason] = inactive.get(r.reason, 0) + 1
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            return {"path": str(self.path), "schema": SCHEMA_VERSION, "rows": len(self._rows),
                    "admitted": sum(r.state == "active" for r in self._rows.values()),
                    "deleted": sum(r.state == "deleted" for r in self._rows.values()),
                    "set_aside": inactive, "quarantined": self.quarantined,
                    "pending_erasure": pending, "sqlite_check": check,
                    "trust": self._verifier is not None,
                    "ok": check == "ok" and not self.quarantined and not pending}

    def people(self) -> list[dict[str, Any]]:
        """Listing (clear columns, never embeddings) with each row's verification status."""
        with self._lock:
            self.gallery()
            with _readable(self.path):
                rows = self._db.execute("SELECT id, name, enabled, valid_from, valid_until, revision, deleted, "
                                        "model_fp, n_embeddings, updated_at FROM people ORDER BY id").fetchall()
            status = {p: (r.state if not r.reason else f"{r.state}:{r.reason}") for p, r in self._rows.items()}
        keys = ("id", "name", "enabled", "valid_from", "valid_until", "revision", "deleted", "model_fingerprint",
                "embeddings", "updated_at")
        return [{**dict(zip(keys, r)), "enabled": bool(r[2]), "deleted": bool(r[6]), "status": status.get(r[0], "")}
                for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
