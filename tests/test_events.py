"""The audit log: every event as a JSON line, rotated by size so it never outgrows its budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kiosk.events import AuditRotation, EventSink
from tests.clock import FakeClock


def lines(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for p in reversed(paths) for line in p.read_text().splitlines()]


def test_the_log_rotates_by_size_keeps_the_newest_files_and_stays_within_its_budget(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    sink = EventSink(log, "door1", FakeClock(), AuditRotation(max_bytes=4096, files=3))
    for i in range(2000):
        sink.emit("sync_error", {"seq": i, "detail": "x" * 40})
    files = sink.files()
    assert [p.name for p in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size <= 4096 for p in files)
    assert not (tmp_path / "audit.jsonl.3").exists()
    seqs = [e["seq"] for e in lines(files)]
    assert seqs == list(range(seqs[0], 2000))  # the newest, contiguous, in order
    assert sink.counts == {"sync_error": 2000} and sink.rotations > 0


def test_a_single_file_budget_starts_the_log_over(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    sink = EventSink(log, rotation=AuditRotation(max_bytes=4096, files=1))
    for i in range(500):
        sink.emit("e", {"seq": i})
    assert sink.files() == [log] and log.stat().st_size <= 4096
    assert lines([log])[-1]["seq"] == 499


def test_a_reopened_log_counts_what_it_already_holds(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text(json.dumps({"old": True}) + "\n" + "x" * 4000 + "\n")
    sink = EventSink(log, rotation=AuditRotation(max_bytes=4096, files=2))
    sink.emit("e", {"pad": "y" * 200})
    sink.close()
    assert (tmp_path / "audit.jsonl.1").read_text().startswith('{"old": true}')
    assert lines([log])[0]["type"] == "e"


def test_an_event_larger_than_a_file_gets_a_file_of_its_own(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    sink = EventSink(log, rotation=AuditRotation(max_bytes=4096, files=2))
    sink.emit("small", {})
    sink.emit("big", {"blob": "z" * 10_000})
    sink.emit("small", {})
    assert [e["type"] for e in lines(sink.files())] == ["big", "small"]


def test_a_failing_publisher_does_not_stop_the_others_or_the_log(tmp_path: Path) -> None:
    sink = EventSink(tmp_path / "audit.jsonl")
    seen: list[str] = []

    def broken(_e: dict[str, Any]) -> None:
        raise RuntimeError("broker gone")

    sink.publishers += [broken, lambda e: seen.append(e["type"])]
    sink.emit("access_granted", {"person": "ann"})
    assert seen == ["access_granted"] and lines([tmp_path / "audit.jsonl"])[0]["person"] == "ann"


def test_rotation_settings_have_bounds() -> None:
    with pytest.raises(ValidationError):
        AuditRotation(max_bytes=10)
    with pytest.raises(ValidationError):
        AuditRotation(files=0)
    with pytest.raises(ValidationError):
        AuditRotation(keep=3)  # type: ignore[call-arg]
