"""What Home Assistant sees of a kiosk (pure): discovery, events and problem sensors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kiosk.mqtt.actions import Action, Emit
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.homeassistant import discovery, event_updates, problem_topic, state_updates
from kiosk.mqtt.topics import Topics
from kiosk.trustwatch import TrustWatch
from tests.mqtt_kiosk import SITE
from tests.site import DAY_MS, Kiosk, Site
from tests.trust_kiosk import TOPICS


def test_home_assistant_sees_presentation_attacks_as_events_and_problems_as_binary_sensors() -> None:
    t = Topics("kiosk", SITE, "door1")
    d = discovery(t)
    attack = next(v for k, v in d.items() if k.startswith("homeassistant/event/"))
    assert attack["event_types"] == ["presentation_attack"] and "command_topic" not in attack
    problems = {v["state_topic"]: v for k, v in d.items() if v.get("device_class") == "problem"}
    assert set(problems) == {"kiosk/hq/door1/health/snapshot_expired", "kiosk/hq/door1/health/clock_unsynchronised"}
    denied = {"id": "x", "device": "door1", "type": "access_denied", "reason": "presentation_attack",
              "cues": {"moire": 0.9}, "ts": 5.0}
    ((topic, payload),) = event_updates(t, denied)
    assert topic == attack["state_topic"] and payload == {"reason": "presentation_attack", "cues": {"moire": 0.9},
                                                          "ts": 5.0, "event_type": "presentation_attack"}
    assert event_updates(t, {"type": "presentation_attack"})[0][1]["event_type"] == "presentation_attack"
    assert event_updates(t, {"type": "access_denied", "reason": "unknown_face"}) == []
    on = state_updates(t, {"type": "snapshot_expired"})
    assert on == [("kiosk/hq/door1/health/snapshot_expired", "ON")]
    assert state_updates(t, {"type": "sync", "status": "snapshot_applied"}) == [(on[0][0], "OFF")]
    assert state_updates(t, {"type": "sync", "status": "snapshot_applied", "snapshot_expired": True}) == on
    assert state_updates(t, {"type": "snapshot_valid"}) == [(on[0][0], "OFF")]
    assert state_updates(t, {"type": "clock_unsynchronised"}) == [("kiosk/hq/door1/health/clock_unsynchronised", "ON")]
    assert state_updates(t, {"type": "clock_synchronised"})[0][1] == "OFF"


def test_the_expired_snapshot_delivered_again_leaves_the_snapshot_expired_sensor_on(tmp_path: Path) -> None:
    """A reconnection delivers the retained snapshot again: the one held, expired, applies without error, and
    the trust watch tells only changes; the sensor follows the alarm, not the delivery."""
    site = Site()
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    ha: dict[str, Any] = {}

    def emit(kind: str, fields: dict[str, Any]) -> None:
        ha.update(state_updates(TOPICS, {"type": kind, **fields}))

    def run(actions: list[Action]) -> list[Emit]:
        emits = [a for a in actions if isinstance(a, Emit)]
        for a in emits:
            emit(a.kind, a.fields)
        return emits

    now = k.now_ms()
    run(core.handle(TOPICS.keys, site.key_list(now - 10 * DAY_MS), 0.0))
    snap = site.snapshot({"ann": (now - 5 * DAY_MS, False)}, now - DAY_MS, expires_ms=now + DAY_MS)
    run(core.handle(TOPICS.snapshot, snap, 0.0))
    watch = TrustWatch(k.trust, k.store, emit)
    watch.check()
    sensor = problem_topic(TOPICS, "snapshot_expired")
    assert ha[sensor] == "OFF"

    k.wall.advance(3 * 86400)  # nobody re-signs it (or someone withholds the new one)
    watch.check()
    assert k.trust.expired() and ha[sensor] == "ON"
    (applied,) = run(core.handle(TOPICS.snapshot, snap, 1.0))  # the reconnection's copy
    watch.check()
    assert applied.fields["status"] == "snapshot_applied" and applied.fields["snapshot_expired"] is True
    assert ha[sensor] == "ON"

    fresh = site.snapshot({"ann": (now - 5 * DAY_MS, False)}, k.now_ms() - 1000, expires_ms=k.now_ms() + DAY_MS)
    (applied,) = run(core.handle(TOPICS.snapshot, fresh, 2.0))  # the administrators sign again
    assert applied.fields["snapshot_expired"] is False and ha[sensor] == "OFF"
    watch.check()
    assert ha[sensor] == "OFF"
