"""A stored row's standing: admitted, set aside, quarantined or deleted, from its signed record alone.

Pure: no database. ``judge`` decides what one row read by ``schema.COLUMNS``
is worth once decrypted and verified against the site's trust now (the clear
columns are only compared with what was signed, never believed), and
``readmitted`` whether a change of keys or snapshot brings back a row that
policy had set aside (a record held for want of a snapshot, ``trust.HELD``,
comes back this way once a snapshot admits it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiosk.records import Enrollment
from kiosk.store.sealed import Sealer, open_verified
from kiosk.store.trust import POLICY, Verifier, policy_refusal

__all__ = ["Row", "judge", "readmitted"]


@dataclass
class Row:
    revision: int
    state: str  # active | inactive | quarantined | deleted
    reason: str = ""
    key_id: str | None = None


def judge(sealer: Sealer, verifier: Verifier | None, model_fingerprint: str, pid: str, revision: int,
          row: tuple[Any, ...]) -> Enrollment | Row:
    """The enrollment a stored row (``schema.COLUMNS``, its revision read as ``revision``) admits; else the row
    deleted, set aside (``inactive``, with the policy's reason: it may come back) or quarantined (an integrity
    failure: it is never used)."""
    deleted, nonce, blob, kid = bool(row[1]), row[2], row[3], row[4]
    if deleted:
        return Row(revision, "deleted")
    if blob is None:
        return Row(revision, "inactive", "unsigned", kid)
    if verifier is None:
        return Row(revision, "inactive", "no_trust", kid)
    record = open_verified(sealer, verifier, pid, revision, nonce, blob)
    if isinstance(record, str):  # why it does not open or verify
        if record in POLICY:
            return Row(revision, "inactive", record, kid)
        return Row(revision, "quarantined", record)
    if not isinstance(record, Enrollment) or record.revision != revision:
        return Row(revision, "quarantined", "revision_mismatch")
    if tuple(row[4:]) != (record.key_id, record.name, int(record.enabled), record.valid_from, record.valid_until,
                          record.model_fingerprint, len(record.embeddings)):
        return Row(revision, "quarantined", "edited")  # the clear columns disagree with what was signed
    if record.model_fingerprint != model_fingerprint:
        return Row(revision, "inactive", "model_mismatch", record.key_id)
    refusal = policy_refusal(verifier, pid, revision, record.key_id)
    if refusal is not None:
        return Row(revision, "inactive", refusal, record.key_id)
    return record


def readmitted(v: Verifier | None, pid: str, row: Row) -> bool:
    """Whether a row policy set aside is admitted under the trust now: never one that was not signed or was
    made with another model (no key or snapshot changes that), else once the policy no longer refuses it."""
    return row.state == "inactive" and row.reason not in ("unsigned", "model_mismatch") and v is not None \
        and policy_refusal(v, pid, row.revision, row.key_id) is None
