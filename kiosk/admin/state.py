"""This administrator's record of what it published (a private SQLite file)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kiosk.mqtt.protocol import decode_embedding


def private_file(path: Path) -> None:
    """Create (or tighten) a state file and its folder so only the owner can read them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists():
            p.chmod(0o600)


class AdminState:
    """What this administrator published: the signed payload per person, and the last snapshot; the newest
    key list it verified and every key a verified list revoked; the unsigned evidence it overrode."""

    def __init__(self, path: Path) -> None:
        private_file(path)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS published (person_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
                         "name TEXT, deleted INTEGER NOT NULL, payload BLOB NOT NULL, published_at REAL NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), "
                         "issued_at_ms INTEGER NOT NULL, payload BLOB NOT NULL)")
        # the newest root-signed key list this administrator has verified: an older one put back on the broker
        # (still naming a key revoked since) does not decide whose snapshot is merged
        self._db.execute("CREATE TABLE IF NOT EXISTS key_list (id INTEGER PRIMARY KEY CHECK (id = 1), "
                         "issued_at_ms INTEGER NOT NULL, payload BLOB NOT NULL)")
        # every key a root-signed list this administrator verified revoked (also one dated ahead, never used):
        # none of them is trusted again for what is merged, whatever list names it later
        self._db.execute("CREATE TABLE IF NOT EXISTS revoked_keys (key_id TEXT PRIMARY KEY, "
                         "issued_at_ms INTEGER NOT NULL)")
        # unsigned evidence (a kiosk's ack, a retained record) that an administrator checked and overrode with
        # --force, exactly as it was: that same evidence does not hold the next run back, any other does. (The
        # table "overridden" kept one ceiling revision per person, which hid genuine later changes: dropped.)
        self._db.execute("CREATE TABLE IF NOT EXISTS overrides (person_id TEXT NOT NULL, source TEXT NOT NULL, "
                         "revision INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL, "
                         "PRIMARY KEY (person_id, source, revision, status))")
        self._db.execute("DROP TABLE IF EXISTS overridden")
        private_file(path)

    def revision(self, person_id: str) -> int | None:
        row = self._db.execute("SELECT revision FROM published WHERE person_id = ?", (person_id,)).fetchone()
        return None if row is None else int(row[0])

    def record(self, person_id: str, revision: int, name: str | None, deleted: bool, payload: bytes, now: float) -> None:
        self._db.execute("INSERT INTO published VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                         "revision=excluded.revision, name=excluded.name, deleted=excluded.deleted, "
                         "payload=excluded.payload, published_at=excluded.published_at",
                         (person_id, revision, name, int(deleted), payload, now))

    def record_snapshot(self, issued_at_ms: int, payload: bytes) -> None:
        self._db.execute("INSERT INTO snapshot VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                         "issued_at_ms=excluded.issued_at_ms, payload=excluded.payload", (issued_at_ms, payload))

    def record_key_list(self, issued_at_ms: int, payload: bytes) -> None:
        self._db.execute("INSERT INTO key_list VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                         "issued_at_ms=excluded.issued_at_ms, payload=excluded.payload", (issued_at_ms, payload))

    def key_list(self) -> bytes | None:
        """The newest key list this administrator verified against the root key (to verify again), if any."""
        row = self._db.execute("SELECT payload FROM key_list").fetchone()
        return None if row is None else bytes(row[0])

    def forget_key_list(self) -> None:
        self._db.execute("DELETE FROM key_list")

    def record_revoked(self, key_ids: Iterable[str], issued_at_ms: int) -> None:
        """Keys a root-signed list issued at ``issued_at_ms`` revokes (the first list seen revoking each is kept)."""
        self._db.executemany("INSERT OR IGNORE INTO revoked_keys VALUES (?, ?)", [(k, issued_at_ms) for k in key_ids])

    def revoked_keys(self) -> set[str]:
        """Every key a root-signed list this administrator verified revoked."""
        return {str(r[0]) for r in self._db.execute("SELECT key_id FROM revoked_keys")}

    def override(self, seen: list[tuple[str, str, int, str]], now: float) -> None:
        """Record evidence an administrator checked and overrode: (person, topic, revision, status) each."""
        self._db.executemany("INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?)",
                             [(*item, now) for item in seen])

    def overridden(self) -> set[tuple[str, str, int, str]]:
        return {(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in
                self._db.execute("SELECT person_id, source, revision, status FROM overrides")}

    def last_snapshot_ms(self) -> int:
        row = self._db.execute("SELECT issued_at_ms FROM snapshot").fetchone()
        return 0 if row is None else int(row[0])

    def last_snapshot_people(self) -> dict[str, tuple[int, bool]]:
        """The people of the last snapshot this administrator signed (person -> (revision, deleted))."""
        row = self._db.execute("SELECT payload FROM snapshot").fetchone()
        if row is None:
            return {}
        people = json.loads(row[0]).get("people", {})
        return {pid: (int(e[0]), bool(e[1])) for pid, e in people.items()}

    def rows(self) -> list[dict[str, Any]]:
        keys = ("person_id", "revision", "name", "deleted", "payload", "published_at")
        return [dict(zip(keys, r)) for r in
                self._db.execute("SELECT person_id, revision, name, deleted, payload, published_at FROM published "
                                 "ORDER BY person_id")]

    def people(self) -> dict[str, tuple[int, bool]]:
        return {r["person_id"]: (int(r["revision"]), bool(r["deleted"])) for r in self.rows()}

    def embeddings(self) -> tuple[list[str], list[Any]]:
        """Labels and embeddings of everyone currently enrolled (for duplicate warnings)."""
        labels, rows = [], []
        for r in self.rows():
            if r["deleted"]:
                continue
            for text in json.loads(r["payload"])["embeddings"]:
                labels.append(r["person_id"])
                rows.append(decode_embedding(text))
        return labels, rows
