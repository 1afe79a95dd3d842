"""The store itself: signed records written in one transaction each, and read back only once they verify.

See ``kiosk.store`` for what it trusts and how erasure works. The ``Store``
holds the lock and the connection and keeps them consistent; what a row is
worth (``standing``), how it is written (``writes``), who is admitted
(``admitted``) and what ``kiosk doctor`` shows (``report``) are beside it.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.match import Gallery
from kiosk.records import PERSON_ID_PATTERN, Enrollment, Record, Tombstone, window_open
from kiosk.store.admitted import Admitted
from kiosk.store.connection import open_store, readable
from kiosk.store.erasure import PendingErasure
from kiosk.store.report import LISTED, health, listing, quarantined, statuses
from kiosk.store.schema import COLUMNS
from kiosk.store.sealed import Sealer, StoreError, verify_signed
from kiosk.store.standing import Row, judge, readmitted
from kiosk.store.trust import HELD, Verifier, policy_refusal
from kiosk.store.writes import write_enrollment, write_tombstone

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
        self._db = open_store(path)
        self._lock = threading.RLock()
        self._verifier = verifier
        self._version = 0
        self._data_version = self._db_version()
        self._polled_at = monotonic()
        self._admitted: Admitted | None = None  # None until every row is verified (again)
        self._rows: dict[str, Row] = {}
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
            self._admitted = None

    def trust_changed(self) -> None:
        """Keys or snapshot changed: re-apply policy to every row, reloading only those that change state."""
        with self._lock:
            if self._admitted is None:
                return
            v = self._verifier
            for pid, row in list(self._rows.items()):
                if row.state == "active":
                    reason = policy_refusal(v, pid, row.revision, row.key_id)
                    if reason is not None:
                        self._admitted.forget(pid)
                        self._rows[pid] = Row(row.revision, "inactive", reason, row.key_id)
                        logger.info("%s no longer admitted: %s", pid, reason)
                elif readmitted(v, pid, row):
                    self._load_one(pid)
            self._version += 1

    def save_state(self, name: str, payload: bytes) -> None:
        """Persist a signed trust document (key list, snapshot) so a restart works offline."""
        with self._lock:
            self._db.execute("INSERT INTO trust_state VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                             "payload=excluded.payload, updated_at=excluded.updated_at",
                             (name, payload, self.wall_clock()))

    def delete_state(self, name: str) -> None:
        """Drop a trust document the kiosk no longer stands by."""
        with self._lock:
            self._db.execute("DELETE FROM trust_state WHERE name = ?", (name,))

    def load_state(self, name: str) -> bytes | None:
        with self._lock, readable(self.path):
            row = self._db.execute("SELECT payload FROM trust_state WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):  # written by hand as text or a number: no document of this kiosk's
            logger.error("the stored %s is not the bytes this kiosk writes: ignored", name)
            return None
        return row[0]

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
                self._rows[verified.person_id] = Row(verified.revision, "inactive", reason, verified.key_id)
                self._version += 1
                return ApplyResult(True, reason, verified.revision)
            if self._admitted is not None:
                self._activate(verified)
            self._version += 1  # (own commits do not move data_version: only other connections' do)
            return ApplyResult(True, "applied", verified.revision)

    def _write(self, e: Enrollment) -> None:
        nonce = write_enrollment(self._db, self._sealer, e, self.wall_clock)
        self._seen[e.person_id] = (e.revision, 0, nonce)

    def erase(self, person_id: str, revision: int | None = None) -> ApplyResult:
        """Delete a person the snapshot marks deleted (its revision by default), whatever the store holds."""
        v = self._verifier
        rev = revision or (v.deleted_revision(person_id) if v is not None else None) or \
            (self.revision(person_id) or 0) + 1
        return self.apply(Tombstone(person_id, rev))

    def _delete(self, t: Tombstone) -> ApplyResult:
        nonce = write_tombstone(self._db, self._sealer, t, self.wall_clock, self._pending_erasure)
        self._seen[t.person_id] = (t.revision, 1, nonce)
        if self._admitted is not None:
            self._admitted.forget(t.person_id)
        self._rows[t.person_id] = Row(t.revision, "deleted")
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
            if self._admitted is not None:
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
            if self._admitted is None:
                with readable(self.path):
                    self._load_all()
            assert self._admitted is not None
            return self._admitted.gallery.snapshot()

    def _loaded(self) -> Admitted:
        """Who is admitted, every row verified first when trust or the file changed (as ``gallery()``)."""
        self.gallery()
        assert self._admitted is not None
        return self._admitted

    def _load_all(self) -> None:
        self._admitted = Admitted()
        self._rows.clear()
        self._seen.clear()
        try:
            rows = self._db.execute(f"SELECT id, {COLUMNS} FROM people ORDER BY id").fetchall()
        except sqlite3.DatabaseError:
            self._admitted = None  # nothing half-loaded is ever used
            raise
        for row in rows:
            self._load_one(row[0], row[1:])
        logger.info("gallery: %d people admitted, %d set aside, %d quarantined", self._admitted.gallery.people(),
                    sum(r.state == "inactive" for r in self._rows.values()), len(quarantined(self._rows)))

    def _load_one(self, pid: str, row: tuple[Any, ...] | None = None) -> None:
        """Decrypt and verify one row; admit it to the gallery, set it aside, or quarantine it."""
        assert self._admitted is not None
        if row is None:
            row = self._db.execute(f"SELECT {COLUMNS} FROM people WHERE id = ?", (pid,)).fetchone()
        self._seen.pop(pid, None)
        self._admitted.forget(pid)
        if row is None:
            self._rows.pop(pid, None)
            return
        revision = int(row[0])
        self._seen[pid] = (row[0], row[1], row[2])
        standing = judge(self._sealer, self._verifier, self.model_fingerprint, pid, revision, row)
        if isinstance(standing, Enrollment):
            self._activate(standing)
        elif standing.state == "quarantined":
            self._quarantine(pid, standing.revision, standing.reason)
        else:
            self._rows[pid] = standing

    def _activate(self, e: Enrollment) -> None:
        assert self._admitted is not None
        self._admitted.put(e)
        self._rows[e.person_id] = Row(e.revision, "active", "", e.key_id)

    def _quarantine(self, pid: str, revision: int, reason: str) -> None:
        self._rows[pid] = Row(revision, "quarantined", reason)
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
            entry = self._loaded().validity.get(person_id)
            v = self._verifier
        if entry is None or v is None:
            return False
        return window_open(*entry, v.now())

    def pin_verifiers(self, person_id: str) -> tuple[str, str | None] | None:
        """(PIN verifier, duress verifier or None) of an admitted person, from the verified record; None: no PIN."""
        with self._lock:
            return self._loaded().factor.verifiers(person_id)

    def person_for_card(self, card: str) -> str | None:
        """The admitted person a card is enrolled to; None when nobody (or, fail closed, more than one) holds it."""
        with self._lock:
            return self._loaded().factor.card(card)

    def person_for_code(self, code: str) -> str | None:
        """The admitted person a keypad user code names; None when nobody (or more than one) holds it."""
        with self._lock:
            return self._loaded().factor.code(code)

    def count(self) -> int:
        """People admitted right now (cheap: no gallery copy)."""
        with self._lock:
            return self._loaded().gallery.people()

    @property
    def quarantined(self) -> dict[str, str]:
        with self._lock:
            return quarantined(self._rows)

    def store_health(self) -> dict[str, Any]:
        """What ``kiosk doctor`` shows: how many rows are used, set aside (and why) or quarantined, and the
        erasures still pending (of every process: the list is in the database), after one more try."""
        with self._lock:
            self.gallery()
            self.retry_erasure()
            pending = list(self._pending_erasure)
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            return health(self.path, self._rows, pending, check, self._verifier is not None)

    def people(self) -> list[dict[str, Any]]:
        """Listing (clear columns, never embeddings) with each row's verification status."""
        with self._lock:
            self.gallery()
            with readable(self.path):
                rows = self._db.execute(f"SELECT {LISTED} FROM people ORDER BY id").fetchall()
            status = statuses(self._rows)
        return listing(rows, status)

    def close(self) -> None:
        with self._lock:
            self._db.close()
