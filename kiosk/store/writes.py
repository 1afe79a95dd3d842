"""A row as it is written: one transaction each, the signed payload sealed, never a clear embedding.

An enrollment keeps the payload an administrator signed (``sealed``) and,
for listing only, its clear columns. A deletion keeps the signed tombstone
(when there is one) and, in the same transaction, puts the person on the
pending erasures (``erasure``), so a power cut leaves the old row or the
deletion with its erasure still to finish, never one without the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from kiosk.records import Enrollment, Tombstone
from kiosk.store.erasure import PendingErasure
from kiosk.store.sealed import Sealer

__all__ = ["write_enrollment", "write_tombstone"]


def write_enrollment(db: sqlite3.Connection, sealer: Sealer, e: Enrollment, wall_clock: Callable[[], float]) -> bytes:
    """Store a verified enrollment's signed payload; returns the nonce it was sealed with."""
    assert e.signed is not None
    nonce, blob = sealer.seal(e.person_id, e.revision, e.signed)
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO people (id, name, enabled, valid_from, valid_until, revision, deleted, model_fp, "
            "n_embeddings, nonce, ciphertext, updated_at, signed_nonce, signed_ct, key_id) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, enabled=excluded.enabled, "
            "valid_from=excluded.valid_from, valid_until=excluded.valid_until, revision=excluded.revision, "
            "deleted=0, model_fp=excluded.model_fp, n_embeddings=excluded.n_embeddings, nonce=NULL, "
            "ciphertext=NULL, updated_at=excluded.updated_at, signed_nonce=excluded.signed_nonce, "
            "signed_ct=excluded.signed_ct, key_id=excluded.key_id",
            (e.person_id, e.name, int(e.enabled), e.valid_from, e.valid_until, e.revision, e.model_fingerprint,
             len(e.embeddings), wall_clock(), nonce, blob, e.key_id))
    return nonce


def write_tombstone(db: sqlite3.Connection, sealer: Sealer, t: Tombstone, wall_clock: Callable[[], float],
                    pending: PendingErasure) -> bytes | None:
    """Replace a person's row by a deletion and put it on the pending erasures, in one transaction; returns
    the nonce the signed tombstone was sealed with (None for a deletion without one)."""
    signed = (None, None) if t.signed is None else sealer.seal(t.person_id, t.revision, t.signed)
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO people (id, name, enabled, revision, deleted, n_embeddings, updated_at, signed_nonce, "
            "signed_ct, key_id) VALUES (?, '', 0, ?, 1, 0, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name='', "
            "enabled=0, valid_from=NULL, valid_until=NULL, revision=excluded.revision, deleted=1, model_fp=NULL, "
            "n_embeddings=0, nonce=NULL, ciphertext=NULL, updated_at=excluded.updated_at, "
            "signed_nonce=excluded.signed_nonce, signed_ct=excluded.signed_ct, key_id=excluded.key_id",
            (t.person_id, t.revision, wall_clock(), *signed, t.key_id))
        pending.record(t.person_id, t.revision)
    return signed[0]
