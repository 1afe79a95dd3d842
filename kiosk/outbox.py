"""A durable, bounded outbox: events are on disk before they are sent, and leave it only on PUBACK."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Outbox:
    """FIFO of (topic, payload) rows in SQLite (WAL). When full, the oldest rows are dropped and counted."""

    def __init__(self, path: Path, max_rows: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL);"
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);")

    def add(self, topic: str, payload: bytes) -> int:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
            row_id = int(cur.lastrowid or 0)
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            excess = count - self.max_rows
            if excess > 0:
                self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                self._db.execute("INSERT INTO counters VALUES ('dropped', ?) "
                                 "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (excess,))
            return row_id

    def pending(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str, bytes]]:
        """Rows with an id above ``after``, oldest first."""
        with self._lock:
            return [(int(i), str(t), bytes(p)) for i, t, p in self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]

    def remove(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    @property
    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
            return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
