"""Events: every one appended as a JSON line to the audit log, then handed to publishers."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Publisher = Callable[[dict[str, Any]], None]


class EventSink:
    """``emit(kind, fields)``; the audit log is written first, so a run can be
    inspected with no broker at all."""

    def __init__(self, audit_log: Path | None, device: str = "kiosk", wall_clock: Callable[[], float] = time.time) -> None:
        self.audit_log = audit_log
        self.device = device
        self.wall_clock = wall_clock
        self.publishers: list[Publisher] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fh = None
        if audit_log is not None:
            audit_log.parent.mkdir(parents=True, exist_ok=True)
            self._fh = audit_log.open("a", buffering=1)

    def emit(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        event = {"id": uuid.uuid4().hex, "ts": round(self.wall_clock(), 3), "device": self.device, "type": kind,
                 **fields}
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if self._fh is not None:
                self._fh.write(json.dumps(event, default=str) + "\n")
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
