"""The store's SQLite connection: the file read before anything is written, and SQLite's errors as a
``StoreError`` that names the file and says what to do.

A file SQLite cannot read (damaged, or not a database), or a database that is
not a kiosk store, is refused as it is: the kiosk never deletes or rewrites it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiosk.store.schema import migrate
from kiosk.store.sealed import StoreError

__all__ = ["damaged", "open_store", "readable"]


def damaged(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """A store file SQLite cannot read: what it is, that it is left as it is, and what to do."""
    return StoreError(
        f"the store {path} is not a readable SQLite database ({exc}): it is damaged (an SD card fault, a power cut) "
        f"or is not the kiosk's store. The kiosk leaves it untouched. Stop the service, move it aside with its "
        f"-wal and -shm files (mv {path} {path}.damaged) and start again: an empty store refills from the "
        f"broker's retained records (or `kiosk admin republish`); local enrollments must be made again")


@contextmanager
def readable(path: Path) -> Iterator[None]:
    """SQLite's errors while opening or reading the store, as a ``StoreError`` naming the file and the fix."""
    try:
        yield
    except sqlite3.OperationalError as exc:  # locked, unreadable, a full disk: the file itself may be fine
        raise StoreError(f"cannot read the store {path}: {exc}; check its owner and mode, the disk, and that no "
                         "other program holds it locked") from exc
    except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
        raise damaged(path, exc) from exc


def open_store(path: Path) -> sqlite3.Connection:
    """The store's connection: read before anything is written, so a damaged or foreign file is refused as
    it is (a ``StoreError``), never changed; then WAL, full sync, secure delete and the schema."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        with readable(path):
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
