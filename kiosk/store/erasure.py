"""Erasure: a deleted person's record is gone only once the WAL no longer holds it.

``secure_delete`` zeroes the freed pages of the main file, but the WAL keeps
the old page until it is checkpointed and truncated, and a reader (another
process's open read transaction: ``kiosk gallery list`` at that moment)
blocks that. Every deletion therefore puts its person on the
``pending_erasure`` table in the deletion's own transaction, and the row goes
only after a TRUNCATE checkpoint succeeded. The list is the database's, not a
process's: it survives a restart, and ``kiosk doctor`` sees it from another
process (its checkpoint, which is the database's too, finishes it as well).

Right after a deletion the checkpoint is tried with back-off for a moment;
when a reader still blocks it, ``erase_incomplete`` is reported. From then
on ``retry()`` makes one attempt that never waits: the running service calls
it every ``ERASURE_RETRY_S`` from a timer thread and before every write.
``erase_completed`` (``people``, ``after_s`` since the deletion) reports the
people this process saw pending once they are erased, whoever's checkpoint
did it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ERASURE_RETRY_S", "PendingErasure"]

logger = logging.getLogger(__name__)

ERASURE_RETRY_S = 10.0  # how often the running service retries an erasure a reader blocked


class PendingErasure:
    """The people deleted whose old record the WAL may still hold, kept in the store's database.

    Not locked: the ``Store`` calls it under its own lock, on its own connection.
    """

    def __init__(self, db: sqlite3.Connection, wall_clock: Callable[[], float],
                 emit: Callable[[str, dict[str, Any]], None], sleep: Callable[[float], None], attempts: int) -> None:
        self._db = db
        self._wall_clock = wall_clock
        self._emit = emit
        self._sleep = sleep
        self._attempts = attempts
        self._seen: dict[str, float] = {}  # people this process saw pending -> wall time of their deletion

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._rows()))

    def __len__(self) -> int:
        return len(self._rows())

    def _rows(self) -> dict[str, tuple[int, float]]:
        rows = self._db.execute("SELECT id, revision, since FROM pending_erasure").fetchall()
        return {r[0]: (int(r[1]), float(r[2])) for r in rows}

    def record(self, person_id: str, revision: int) -> None:
        """Inside the deletion's transaction: ``person_id`` is pending until a checkpoint succeeds."""
        self._db.execute("INSERT INTO pending_erasure (id, revision, since) VALUES (?, ?, ?) "
                         "ON CONFLICT(id) DO UPDATE SET revision = excluded.revision",
                         (person_id, revision, self._wall_clock()))

    def finish(self, person_id: str) -> bool:
        """Right after ``person_id`` was deleted: checkpoint, with back-off while a reader holds the WAL;
        True when its erasure is complete, else ``erase_incomplete`` is reported."""
        if self._finish(self._attempts, fresh=person_id):
            return True
        pending = self._rows()
        if person_id not in pending:
            return True  # (another process's checkpoint finished it meanwhile)
        self._seen.setdefault(person_id, pending[person_id][1])
        logger.error("WAL checkpoint still blocked after %d attempts: erasure of %s not complete; retried every "
                     "%.0f s", self._attempts, sorted(pending), ERASURE_RETRY_S)
        self._emit("erase_incomplete", {"people": sorted(pending), "detail": "a reader holds the WAL; retried later"})
        return False

    def retry(self) -> bool:
        """One attempt that never waits; True when nothing is left pending."""
        return self._finish(1)

    def _finish(self, attempts: int, fresh: str | None = None) -> bool:
        pending = self._rows()
        for pid, (_, since) in pending.items():
            if pid != fresh:
                self._seen.setdefault(pid, since)
        if pending and self._checkpoint(attempts):
            self._forget(pending)
            pending = {}
        self._report(pending)
        return not pending

    def _checkpoint(self, attempts: int) -> bool:
        """A TRUNCATE checkpoint (the WAL emptied), tried ``attempts`` times with back-off; one attempt does
        not wait at all, so a timer or a write never stalls on a reader."""
        delay = 0.05
        for attempt in range(attempts):
            self._db.execute(f"PRAGMA busy_timeout = {100 if attempts > 1 else 0}")  # back off here, not in SQLite
            try:
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError as exc:  # locked by a writer: as blocked as by a reader
                logger.debug("WAL checkpoint: %s", exc)
                busy = 1
            finally:
                self._db.execute("PRAGMA busy_timeout = 5000")
            if busy == 0:
                return True
            if attempt + 1 < attempts:
                self._sleep(delay)
                delay *= 2
        return False

    def _forget(self, pending: dict[str, tuple[int, float]]) -> None:
        """After a checkpoint: those people are erased (a person deleted again since stays pending)."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM pending_erasure WHERE id = ? AND revision = ?",
                                     [(pid, revision) for pid, (revision, _) in pending.items()])
        except sqlite3.Error as exc:  # erased all the same: the next retry clears the list
            logger.warning("erasure of %s complete, but the pending list could not be updated: %s", sorted(pending), exc)

    def _report(self, pending: dict[str, tuple[int, float]]) -> None:
        done = sorted(p for p in self._seen if p not in pending)
        if not done:
            return
        after_s = round(self._wall_clock() - min(self._seen[p] for p in done), 3)
        for pid in done:
            del self._seen[pid]
        logger.info("erasure of %s complete (%.0f s after the deletion): the WAL no longer holds them", done, after_s)
        self._emit("erase_completed", {"people": done, "after_s": after_s})
