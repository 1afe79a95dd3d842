"""An audit log that cannot be written (a full disk) never holds an event back and never raises into the door.

The failures are the operating system's own: the log is a symlink to
``/dev/full`` (every write fails with ENOSPC) until the test puts a regular
file in its place, and a write cut short part-way is made by a file-size
limit (RLIMIT_FSIZE) in a child process.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from tests.clock import FakeClock

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")

RELAY, EXIT = 17, 22


def full_disk_log(tmp_path: Path) -> Path:
    log = tmp_path / "audit.jsonl"
    log.symlink_to("/dev/full")
    return log


def free_the_disk(log: Path) -> None:
    """A regular file where /dev/full was: the next line the sink writes goes in."""
    fresh = log.with_name("fresh")
    fresh.write_bytes(b"")
    os.replace(fresh, log)


def logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_full_disk_never_raises_into_the_door_and_every_event_still_reaches_mqtt(
        tmp_path: Path, factory: MockFactory) -> None:
    sink = EventSink(full_disk_log(tmp_path), "door1")
    published: list[dict[str, Any]] = []
    sink.publishers.append(published.append)
    door = build_door(RELAY, active_high=True, timing=DoorTiming(5.0, 30.0), clock=FakeClock(), emit=sink,
                      exit_pin=EXIT, pin_factory=factory, bounce_s=None)
    relay = factory.pin(RELAY)

    assert door.unlock("granted", "ann") is True
    assert relay.state is True
    door.lock("error")
    assert relay.state is False
    factory.pin(EXIT).drive_low()  # the exit button's callback runs through the same sink
    assert relay.state is True
    door.close()
    assert relay.state is False

    kinds = [e["type"] for e in published]
    assert kinds[:2] == ["door_unlocked", "audit_log_failed"]
    assert kinds.count("door_unlocked") == 2 and kinds.count("door_locked") == 2
    alarm = published[1]
    assert alarm["errno"] == errno.ENOSPC and "No space left" in alarm["error"] and alarm["lost"] == 1
    assert sink.lost == 4


def test_the_failure_is_logged_once_alarmed_at_most_once_per_interval_and_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = full_disk_log(tmp_path)
    clock = FakeClock()
    sink = EventSink(log, "door1", clock, monotonic=clock, alarm_interval_s=600.0)
    published: list[dict[str, Any]] = []
    sink.publishers.append(published.append)
    caplog.set_level(logging.INFO, logger="kiosk.events")

    for i in range(5):
        sink.emit("access_denied", {"seq": i})
        clock.advance(10)
    assert [e["type"] for e in published] == ["access_denied", "audit_log_failed"] + ["access_denied"] * 4
    clock.advance(600)
    sink.emit("access_denied", {"seq": 5})
    assert published[-1]["type"] == "audit_log_failed" and published[-1]["lost"] == 6
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 1  # once per streak, not per line

    free_the_disk(log)
    sink.emit("access_granted", {"person": "ann"})
    sink.emit("door_unlocked", {"person": "ann"})
    restored = [e for e in published if e["type"] == "audit_log_restored"]
    assert len(restored) == 1 and restored[0]["lost"] == 6 and restored[0]["after_s"] == 650.0
    assert [e["type"] for e in logged(log)] == ["access_granted", "audit_log_restored", "door_unlocked"]
    assert sink.counts["audit_log_failed"] == 2 and sink.lost == 6
    assert sum(r.levelno == logging.WARNING and "written again" in r.getMessage() for r in caplog.records) == 1


CUT_SHORT = """
import json, resource, signal, sys
from pathlib import Path
from kiosk.events import EventSink

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit a write fails with EFBIG instead of killing
log = Path(sys.argv[1])
sink = EventSink(log, "door1")
published = []
sink.publishers.append(published.append)
sink.emit("started", {})
size = log.stat().st_size
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, hard))  # room for part of the next line only
sink.emit("access_granted", {"person": "ann", "pad": "x" * 200})
cut = log.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
sink.emit("door_unlocked", {"person": "ann"})
resource.setrlimit(resource.RLIMIT_FSIZE, (log.stat().st_size, hard))  # full again: a new streak, reported at once
sink.emit("door_locked", {"reason": "timeout"})
print(json.dumps({"size": size, "cut": cut, "published": [e["type"] for e in published]}))
"""


def test_a_write_cut_short_part_way_leaves_no_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(CUT_SHORT), str(log)], capture_output=True,
                         text=True, timeout=120, check=True, cwd=Path(__file__).resolve().parents[1])
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["cut"] == result["size"]  # the 40 bytes that went in were cut back off
    assert result["published"] == ["started", "access_granted", "audit_log_failed", "door_unlocked",
                                   "audit_log_restored", "door_locked", "audit_log_failed"]
    assert [e["type"] for e in logged(log)] == ["started", "door_unlocked", "audit_log_restored"]
