"""What Home Assistant sees of a kiosk (pure): discovery, events and problem sensors."""

from __future__ import annotations

from kiosk.mqtt.homeassistant import discovery, event_updates, state_updates
from kiosk.mqtt.topics import Topics
from tests.mqtt_kiosk import SITE


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
    assert state_updates(t, {"type": "snapshot_valid"}) == [(on[0][0], "OFF")]
    assert state_updates(t, {"type": "clock_unsynchronised"}) == [("kiosk/hq/door1/health/clock_unsynchronised", "ON")]
    assert state_updates(t, {"type": "clock_synchronised"})[0][1] == "OFF"
