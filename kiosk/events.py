"""Events: every one appended as a JSON line to the audit log, then handed to publishers.

The audit log rotates by size: ``audit.jsonl`` is the newest file, then
``audit.jsonl.1`` and so on; at most ``files`` files of about ``max_bytes``
each are kept and the oldest is removed, so the log never outgrows
``files * max_bytes`` (a single event larger than ``max_bytes`` gets a file
of its own).

The audit log is a record, never a gate: a line it cannot take (a full disk,
an I/O error) is reported and the event still goes to every publisher, so it
reaches MQTT (through the outbox, or, when the outbox's disk is full too,
directly while connected: ``KioskMqtt.publish_event``) and the caller (the
door, the loop) never sees the error. A line is written whole or not at all (a write that fails part-way is
cut back off the file). The first failure of a streak is logged once and
published as ``audit_log_failed`` (``error``, ``errno``, ``lost``: lines not
written so far in this streak), again at most every ``alarm_interval_s``
while it lasts; the first line written after it gives ``audit_log_restored``
(``lost``, ``after_s``), in the log too, so the gap is on record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

Publisher = Callable[[dict[str, Any]], None]

ALARM_INTERVAL_S = 600.0  # while the audit log keeps failing, audit_log_failed again at most this often


class AuditRotation(BaseModel):
    """Size-based rotation of the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(10 * 2**20, ge=4096, le=2**30,
                           description="the audit log moves to audit.jsonl.1 once it would grow beyond this size")
    files: int = Field(5, ge=1, le=1000, description="audit log files kept, the current one included; oldest removed")


@dataclass
class _Streak:
    """Consecutive audit lines that could not be written."""

    since: float  # monotonic
    lost: int = 0
    reported_at: float | None = None


class EventSink:
    """``emit(kind, fields)``; the audit log is written first, so a run can be
    inspected with no broker at all."""

    def __init__(self, audit_log: Path | None, device: str = "kiosk", wall_clock: Callable[[], float] = time.time,
                 rotation: AuditRotation | None = None, *, monotonic: Callable[[], float] = time.monotonic,
                 alarm_interval_s: float = ALARM_INTERVAL_S) -> None:
        self.audit_log = audit_log
        self.device = device
        self.wall_clock = wall_clock
        self.rotation = rotation or AuditRotation()
        self.monotonic = monotonic
        self.alarm_interval_s = alarm_interval_s
        self.publishers: list[Publisher] = []
        self.counts: dict[str, int] = {}
        self.rotations = 0
        self.lost = 0  # audit lines that could not be written, over the sink's life
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = None
        self._size = 0
        self._closed = audit_log is None
        self._torn = False  # a failed write left part of a line that could not be cut off
        self._streak: _Streak | None = None
        if audit_log is not None:
            audit_log.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        assert self.audit_log is not None
        self._fh = self.audit_log.open("ab", buffering=0)
        self._size = self._fh.tell()

    def _rotate(self) -> None:
        """audit.jsonl.(k) -> .(k+1) from the oldest down; the one beyond ``files - 1`` is removed."""
        assert self.audit_log is not None and self._fh is not None
        self._fh.close()
        self._fh = None
        keep = self.rotation.files - 1
        base = str(self.audit_log)
        if keep == 0:
            os.remove(base)
        else:
            for k in range(keep, 0, -1):
                src = base if k == 1 else f"{base}.{k - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{base}.{k}")
        self.rotations += 1
        self._open()

    def files(self) -> list[Path]:
        """The audit log's files, newest first."""
        if self.audit_log is None:
            return []
        names = [self.audit_log] + [Path(f"{self.audit_log}.{k}") for k in range(1, self.rotation.files)]
        return [p for p in names if p.exists()]

    def _append(self, line: str) -> None:
        """One whole line, or an ``OSError`` and nothing (the file is reopened at the next line)."""
        if self._fh is None:
            self._open()
        data = line.encode("utf-8")
        if self._size and self._size + len(data) > self.rotation.max_bytes:
            try:
                self._rotate()
            except OSError as exc:  # keep writing to the current file rather than lose the event
                logger.error("audit log rotation failed: %s", exc)
                if self._fh is None:
                    self._open()
        fh = self._fh
        assert fh is not None
        if self._torn:
            data = b"\n" + data  # the torn piece stays a line of its own
        view = memoryview(data)
        try:
            while view:
                n = fh.write(view)
                if not n:
                    raise OSError("short write to the audit log")
                view = view[n:]
        except OSError:
            self._drop(len(data) - len(view))
            raise
        self._size += len(data)
        self._torn = False

    def _drop(self, written: int) -> None:
        """After a failed write: cut what it wrote back off, and let go of the file."""
        fh, self._fh = self._fh, None
        assert fh is not None
        if written:
            try:
                os.ftruncate(fh.fileno(), self._size)
            except OSError:
                self._torn = True
        with contextlib.suppress(OSError):
            fh.close()

    def _event(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return {"id": uuid.uuid4().hex, "ts": round(self.wall_clock(), 3), "device": self.device, "type": kind,
                **fields}

    def _record(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Write one event's line; the alarm events that writing it calls for."""
        if self._closed:
            return []
        try:
            self._append(json.dumps(event, default=str) + "\n")
        except OSError as exc:
            return self._failed(exc)
        return self._restored()

    def _failed(self, exc: OSError) -> list[dict[str, Any]]:
        now = self.monotonic()
        self.lost += 1
        streak = self._streak
        if streak is None:
            streak = self._streak = _Streak(now)
            logger.error("the audit log %s cannot be written (%s): events are still published; audit_log_failed "
                         "repeats every %.0f s until a line is written again", self.audit_log, exc,
                         self.alarm_interval_s)
        streak.lost += 1
        if streak.reported_at is not None and now - streak.reported_at < self.alarm_interval_s:
            return []
        streak.reported_at = now
        return [self._event("audit_log_failed", {"path": str(self.audit_log), "error": str(exc), "errno": exc.errno,
                                                 "lost": streak.lost})]

    def _restored(self) -> list[dict[str, Any]]:
        streak, self._streak = self._streak, None
        if streak is None:
            return []
        after_s = round(self.monotonic() - streak.since, 3)
        logger.warning("the audit log %s is written again after %.1f s; %d events are missing from it (they "
                       "were published)", self.audit_log, after_s, streak.lost)
        event = self._event("audit_log_restored", {"path": str(self.audit_log), "lost": streak.lost,
                                                   "after_s": after_s})
        return [event, *self._record(event)]

    def _publish(self, event: dict[str, Any]) -> None:
        for publish in self.publishers:
            try:
                publish(event)
            except Exception:  # a broken publisher must never stop the door loop
                logger.exception("event publisher failed for %s", event["type"])

    def emit(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            event = self._event(kind, fields)
            alarms = self._record(event)
        for e in (event, *alarms):
            self._publish(e)
        return event

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.emit(kind, fields)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fh is not None:
                self._fh.close()
                self._fh = None
