"""A durable, bounded outbox: events are on disk before they are sent, and leave it only on PUBACK.

Rows have a class: access and door events (and everything else the kiosk
reports about itself) are ``KEEP``; sync chatter (``sync``, ``sync_error``,
``sync_refusals``) is ``NOISE``. When the outbox is full, the oldest noise
goes first; a kept row is dropped only when no noise is left, so a flood of
refused sync messages can never push an access event out.
"""

from __future__ import annotations

import sqlite3
import threading
from enum import IntEnum
from pathlib import Path


class Priority(IntEnum):
    NOISE = 0
    KEEP = 1


NOISE_PREFIX = "sync"


def priority_of(event_type: str) -> Priority:
    """Sync reports are noise; access, door, camera and health events are kept."""
    return Priority.NOISE if event_type.startswith(NOISE_PREFIX) else Priority.KEEP


class Outbox:
    """FIFO of (topic, payload) rows in SQLite (WAL). At most ``max_rows``: beyond, the oldest of the lowest
    class are dropped and counted (``dropped``, and per class in ``dropped_by_class``)."""

    def __init__(self, path: Path, max_rows: int = 10_000) -> None:
        if max_rows < 1:
            raise ValueError(f"an outbox needs room for at least one row, got max_rows={max_rows}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._sync_full = True
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, priority INTEGER NOT NULL DEFAULT 1);"
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "priority" not in columns:  # an outbox written before rows had a class: all of it is kept
            self._db.execute("ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (priority, id)")
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def add(self, topic: str, payload: bytes, priority: Priority = Priority.KEEP) -> int:
        with self._lock:
            try:
                return self._add(topic, payload, priority)
            except sqlite3.Error:
                self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
                raise

    def _durability(self, priority: Priority) -> None:
        """Kept rows are fsynced on commit; noise is not (a power cut may lose the last noise rows, never a kept
        one: the next kept commit syncs the log with them), so a refusal flood does not cost a disk flush each."""
        full = priority >= Priority.KEEP
        if full != self._sync_full:
            self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._sync_full = full

    def _add(self, topic: str, payload: bytes, priority: Priority) -> int:
        self._durability(priority)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("INSERT INTO outbox (topic, payload, priority) VALUES (?, ?, ?)",
                                   (topic, payload, int(priority)))
            row_id = int(cur.lastrowid or 0)
            count = self._count + 1
            excess = count - self.max_rows
            for cls in Priority:  # lowest class first
                if excess <= 0:
                    break
                gone = self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE priority = ? ORDER BY id LIMIT ?)",
                    (int(cls), excess)).rowcount
                if gone:
                    self._bump("dropped", gone)
                    self._bump(f"dropped_{cls.name.lower()}", gone)
                    count -= gone
                    excess -= gone
        self._count = count
        return row_id

    def _bump(self, name: str, n: int) -> None:
        self._db.execute("INSERT INTO counters VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, n))

    def pending(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str, bytes]]:
        """Rows with an id above ``after``, oldest first."""
        with self._lock:
            return [(int(i), str(t), bytes(p)) for i, t, p in self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]

    def remove(self, row_id: int) -> None:
        """After the PUBACK. Not fsynced: a removal lost to a power cut only sends that event again (delivery is
        at least once; consumers de-duplicate by event id)."""
        with self._lock:
            self._durability(Priority.NOISE)
            self._count -= self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,)).rowcount

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._counter("dropped")

    @property
    def dropped_by_class(self) -> dict[str, int]:
        with self._lock:
            return {cls.name.lower(): self._counter(f"dropped_{cls.name.lower()}") for cls in Priority}

    def close(self) -> None:
        with self._lock:
            self._db.close()
