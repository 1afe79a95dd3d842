"""The trust alarms: one event when an alarm starts and one when it ends, and Home Assistant's problem
sensors follow both (an alarm whose end Home Assistant does not know stays ON for good)."""

from __future__ import annotations

from typing import Any

from kiosk.mqtt.homeassistant import state_updates
from kiosk.mqtt.topics import Topics
from kiosk.trustwatch import TrustWatch

TOPICS = Topics("kiosk", "hq", "door1")
SNAPSHOT = "kiosk/hq/door1/health/snapshot_expired"
CLOCK = "kiosk/hq/door1/health/clock_unsynchronised"


class Trust:
    """What ``SiteTrust`` tells the watch: whether the snapshot held has expired, whether the clock is synchronised."""

    def __init__(self) -> None:
        self.snapshot_expired = False
        self.synchronised = True

    def expired(self, now: float | None = None) -> bool:
        return self.snapshot_expired or not self.synchronised  # an unsynchronised clock counts as expired

    def status(self) -> dict[str, Any]:
        return {"clock_synchronised": self.synchronised, "snapshot_missing": False}


class Store:
    def __init__(self) -> None:
        self.quarantined: dict[str, str] = {}


class Watched:
    def __init__(self) -> None:
        self.trust = Trust()
        self.events: list[dict[str, Any]] = []
        self.watch = TrustWatch(self.trust, Store(), lambda kind, fields: self.events.append({"type": kind, **fields}))

    def check(self) -> list[tuple[str, str | dict[str, Any]]]:
        """Home Assistant's retained state updates from the events of one check."""
        before = len(self.events)
        self.watch.check()
        return [u for e in self.events[before:] for u in state_updates(TOPICS, e)]


def test_the_snapshot_sensor_goes_off_when_the_expired_snapshot_alarm_ends() -> None:
    w = Watched()
    assert w.check() == []
    w.trust.snapshot_expired = True
    assert w.check() == [(SNAPSHOT, "ON")]
    assert w.check() == []  # one event per transition, not one per check
    w.trust.snapshot_expired = False  # a wrong clock corrected, or a renewed snapshot
    assert w.check() == [(SNAPSHOT, "OFF")]
    assert [e["type"] for e in w.events] == ["snapshot_expired", "snapshot_valid"]


def test_the_clock_sensor_goes_on_and_off_with_the_clock() -> None:
    w = Watched()
    w.trust.synchronised = False
    assert w.check() == [(CLOCK, "ON")]
    w.trust.synchronised = True
    assert w.check() == [(CLOCK, "OFF")]
    assert [e["type"] for e in w.events] == ["clock_unsynchronised", "clock_synchronised"]


def test_every_event_the_watch_emits_moves_a_home_assistant_sensor() -> None:
    w = Watched()
    for expired, synchronised in [(True, True), (False, True), (False, False), (True, True), (True, False),
                                  (False, True)]:
        w.trust.snapshot_expired, w.trust.synchronised = expired, synchronised
        w.check()
    assert len(w.events) >= 6
    for event in w.events:
        assert state_updates(TOPICS, event), f"{event['type']} reaches no Home Assistant sensor"
