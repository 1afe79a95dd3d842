"""Events: every one appended as a JSON line to the audit log, then handed to publishers.

The audit log rotates by size: ``audit.jsonl`` is the newest file, then
``audit.jsonl.1`` and so on; at most ``files`` files of about ``max_bytes``
each are kept and the oldest is removed, so the log never outgrows
``files * max_bytes`` (a single event larger than ``max_bytes`` gets a file
of its own).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

Publisher = Callable[[dict[str, Any]], None]


class AuditRotation(BaseModel):
    """Size-based rotation of the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(10 * 2**20, ge=4096, le=2**30,
                           description="the audit log moves to audit.jsonl.1 once it would grow beyond this size")
    files: int = Field(5, ge=1, le=1000, description="audit log files kept, the current one included; oldest removed")


class EventSink:
    """``emit(kind, fields)``; the audit log is written first, so a run can be
    inspected with no broker at all."""

    def __init__(self, audit_log: Path | None, device: str = "kiosk", wall_clock: Callable[[], float] = time.time,
                 rotation: AuditRotation | None = None) -> None:
        self.audit_log = audit_log
        self.device = device
        self.wall_clock = wall_clock
        self.rotation = rotation or AuditRotation()
        self.publishers: list[Publisher] = []
        self.counts: dict[str, int] = {}
        self.rotations = 0
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._size = 0
        if audit_log is not None:
            audit_log.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        assert self.audit_log is not None
        self._fh = self.audit_log.open("a", buffering=1, encoding="utf-8")
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

    def _write(self, line: str) -> None:
        if self._fh is None:
            return
        size = len(line.encode("utf-8"))
        if self._size and self._size + size > self.rotation.max_bytes:
            try:
                self._rotate()
            except OSError as exc:  # keep writing to the current file rather than lose the event
                logger.error("audit log rotation failed: %s", exc)
                if self._fh is None:
                    self._open()
        assert self._fh is not None
        self._fh.write(line)
        self._size += size

    def emit(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        event = {"id": uuid.uuid4().hex, "ts": round(self.wall_clock(), 3), "device": self.device, "type": kind,
                 **fields}
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self._write(json.dumps(event, default=str) + "\n")
        for publish in self.publishers:
            try:
                publish(event)
            except Exception:  # a broken publisher must never stop the door loop
                logger.exception("event publisher failed for %s", kind)
        return event

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.emit(kind, fields)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
