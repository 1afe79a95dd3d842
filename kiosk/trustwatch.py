"""Alarms on the kiosk's trust state: an expired site snapshot, a clock that is not synchronised, quarantined rows.

``check()`` runs on a timer; it emits one event per transition (not one per
check) and keeps the figures that the stats carry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# the events of each alarm, raised and ended (docs/mqtt.md; Home Assistant's problem sensors follow them)
CLOCK_UNSYNCHRONISED, CLOCK_SYNCHRONISED = "clock_unsynchronised", "clock_synchronised"
SNAPSHOT_EXPIRED, SNAPSHOT_VALID = "snapshot_expired", "snapshot_valid"


class _Trust(Protocol):
    def expired(self, now: float | None = None) -> bool: ...
    def status(self) -> dict[str, Any]: ...


class _Store(Protocol):
    @property
    def quarantined(self) -> Any: ...


class TrustWatch:
    def __init__(self, trust: _Trust, store: _Store, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self.trust = trust
        self.store = store
        self.emit = emit
        self._state: dict[str, bool] = {}

    def _transition(self, name: str, bad: bool, event: str, restored: str, fields: dict[str, Any]) -> None:
        was = self._state.get(name)
        self._state[name] = bad
        if bad and not was:
            logger.warning("%s", event.replace("_", " "))
            self.emit(event, fields)
        elif was and not bad:
            logger.info("%s", restored.replace("_", " "))
            self.emit(restored, fields)

    def check(self) -> float | None:
        refresh = getattr(self.trust, "refresh", None)
        if callable(refresh):
            try:
                refresh()  # a snapshot that became current (the clock synchronised since it came) lets people in
            except Exception:  # the store could not record it: tried again next time; the alarms go on
                logger.exception("could not count the site snapshot as current")
        status = self.trust.status()
        synced = bool(status.get("clock_synchronised"))
        self._transition("clock", not synced, CLOCK_UNSYNCHRONISED, CLOCK_SYNCHRONISED,
                         {"detail": "validity windows, schedules and snapshot expiry fail closed"})
        expired = self.trust.expired()
        self._transition("snapshot", expired and synced, SNAPSHOT_EXPIRED, SNAPSHOT_VALID,
                         {"snapshot_missing": bool(status.get("snapshot_missing"))})
        return None

    def stats(self) -> dict[str, Any]:
        return {"trust": self.trust.status(), "store": {"quarantined": len(self.store.quarantined)}}
