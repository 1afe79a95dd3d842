"""What the store shows of itself: ``kiosk doctor``'s health and the people listing, from the rows' standings.

Pure: the ``Store`` reads the database and the standings under its lock and
hands them over; nothing here touches SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiosk.store.schema import SCHEMA_VERSION
from kiosk.store.standing import Row

__all__ = ["LISTED", "health", "listing", "quarantined", "statuses"]

# the clear columns a listing shows (never an embedding), in the order ``listing`` reads them
LISTED = "id, name, enabled, valid_from, valid_until, revision, deleted, model_fp, n_embeddings, updated_at"
_KEYS = ("id", "name", "enabled", "valid_from", "valid_until", "revision", "deleted", "model_fingerprint",
         "embeddings", "updated_at")


def quarantined(rows: Mapping[str, Row]) -> dict[str, str]:
    """The quarantined rows and why."""
    return {p: r.reason for p, r in rows.items() if r.state == "quarantined"}


def health(path: Path, rows: Mapping[str, Row], pending: list[str], check: str, trusted: bool) -> dict[str, Any]:
    """How many rows are used, set aside (and why) or quarantined, the erasures still pending and SQLite's
    own check; ``ok`` when nothing needs an administrator."""
    inactive: dict[str, int] = {}
    for r in rows.values():
        if r.state == "inactive":
            inactive[r.reason] = inactive.get(r.reason, 0) + 1
    return {"path": str(path), "schema": SCHEMA_VERSION, "rows": len(rows),
            "admitted": sum(r.state == "active" for r in rows.values()),
            "deleted": sum(r.state == "deleted" for r in rows.values()),
            "set_aside": inactive, "quarantined": quarantined(rows),
            "pending_erasure": pending, "sqlite_check": check,
            "trust": trusted,
            "ok": check == "ok" and not quarantined(rows) and not pending}


def statuses(rows: Mapping[str, Row]) -> dict[str, str]:
    """Each row's verification status as listed: its state, and the reason when there is one."""
    return {p: (r.state if not r.reason else f"{r.state}:{r.reason}") for p, r in rows.items()}


def listing(rows: list[tuple[Any, ...]], status: Mapping[str, str]) -> list[dict[str, Any]]:
    """One entry per row read by ``LISTED``, with its status."""
    return [{**dict(zip(_KEYS, r)), "enabled": bool(r[2]), "deleted": bool(r[6]), "status": status.get(r[0], "")}
            for r in rows]
