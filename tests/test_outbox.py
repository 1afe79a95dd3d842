"""The durable outbox: bounded, and sync noise always leaves before an access event does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.outbox import Outbox, Priority, priority_of

KEEP, NOISE = Priority.KEEP, Priority.NOISE


def test_sync_reports_are_noise_and_access_door_and_health_events_are_kept() -> None:
    assert {priority_of(k) for k in ("sync", "sync_error", "sync_refusals")} == {NOISE}
    assert {priority_of(k) for k in ("access_granted", "access_denied", "door_forced_open", "camera_lost",
                                     "snapshot_expired", "presentation_attack")} == {KEEP}


def test_a_noise_flood_never_drops_an_access_event(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=50)
    access = [box.add("ev", f"access {i}".encode(), KEEP) for i in range(30)]
    for i in range(2000):
        box.add("ev", f"noise {i}".encode(), NOISE)
        if i % 200 == 0:
            access.append(box.add("ev", f"access late {i}".encode(), KEEP))
    rows = box.pending(limit=100)
    assert len(box) == 50 == len(rows)
    kept = {i for i, _, p in rows if p.startswith(b"access")}
    assert kept == set(access)  # all 40 access events, in order, plus the newest noise
    assert [p for _, _, p in rows if p.startswith(b"noise")][-1] == b"noise 1999"
    assert box.dropped == 2040 - 50 and box.dropped_by_class == {"noise": 1990, "keep": 0}


def test_when_only_kept_rows_remain_the_oldest_of_them_goes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=10)
    for i in range(15):
        box.add("ev", str(i).encode(), KEEP)
    assert [p for _, _, p in box.pending()] == [str(i).encode() for i in range(5, 15)]
    assert box.dropped_by_class == {"noise": 0, "keep": 5}


def test_noise_beyond_the_limit_pushes_out_older_noise_not_newer_access(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=3)
    box.add("ev", b"n1", NOISE)
    box.add("ev", b"a1", KEEP)
    box.add("ev", b"a2", KEEP)
    box.add("ev", b"n2", NOISE)  # full: n1 goes
    box.add("ev", b"n3", NOISE)  # n2 goes: the newest noise replaces the older
    assert [p for _, _, p in box.pending()] == [b"a1", b"a2", b"n3"]


def test_rows_leave_on_remove_and_the_count_follows(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=10)
    ids = [box.add("t", b"x") for _ in range(4)]
    box.remove(ids[1])
    box.remove(ids[1])  # twice: no effect
    assert len(box) == 3 and [i for i, _, _ in box.pending(after=ids[0])] == [ids[2], ids[3]]


def test_an_outbox_from_before_row_classes_is_kept_whole_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                     "payload BLOB NOT NULL); INSERT INTO outbox (topic, payload) VALUES ('ev', X'6F6C64');")
    db.commit()
    db.close()
    box = Outbox(path, max_rows=2)
    assert len(box) == 1
    box.add("ev", b"noise", NOISE)
    box.add("ev", b"access", KEEP)
    assert [p for _, _, p in box.pending()] == [b"old", b"access"]
    box.close()
    assert len(Outbox(path, max_rows=2)) == 2  # survives a restart


def test_an_outbox_needs_room_for_a_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        Outbox(tmp_path / "o.db", max_rows=0)
