"""The store's SQLite schema, the columns a row is read by, and the migration of an older database in place."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

__all__ = ["COLUMNS", "NEW_COLUMNS", "SCHEMA", "SCHEMA_VERSION", "migrate"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# the columns a row is loaded and verified by; from key_id on they must equal what was signed
COLUMNS = "revision, deleted, signed_nonce, signed_ct, key_id, name, enabled, valid_from, valid_until, model_fp, " \
          "n_embeddings"

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
CREATE TABLE IF NOT EXISTS trust_state (name TEXT PRIMARY KEY, payload BLOB NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending_erasure (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, since REAL NOT NULL);
"""
# pending_erasure (kiosk.store.erasure): deleted people whose old record the WAL may still hold. A table that
# a database of an earlier version lacks is simply created: no migration, the schema version stays.
# Added in schema 2: the signed payload (encrypted) and who signed it. Rows written by
# schema 1 have none and wait, unused, for the retained signed record from the broker.
NEW_COLUMNS = {"signed_nonce": "BLOB", "signed_ct": "BLOB", "key_id": "TEXT"}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables, add the columns an older schema lacks, and record the schema version."""
    have = {r[1] for r in db.execute("PRAGMA table_info(people)")}
    db.executescript(SCHEMA)
    for column, kind in NEW_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE people ADD COLUMN {column} {kind}")
    old = db.execute("PRAGMA user_version").fetchone()[0]
    if old < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if old == 0 and have:
            logger.warning("store %s migrated to schema %d: its unsigned rows stay unused until the signed "
                           "records arrive (retained on the broker, or `kiosk admin republish`)",
                           path, SCHEMA_VERSION)
