"""Home Assistant MQTT discovery: the door as a state-only lock, its contact, the last access (pure)."""

from __future__ import annotations

from typing import Any

from kiosk.mqtt.topics import Topics

DOOR_STATES = {"door_unlocked": "UNLOCKED", "door_locked": "LOCKED"}
CONTACT_STATES = {"door_opened": "ON", "door_closed": "OFF"}


def discovery(topics: Topics, ha_prefix: str = "homeassistant", contact: bool = True) -> dict[str, dict[str, Any]]:
    """Topic -> retained config payload. The lock has no command topic: remote unlock is off."""
    uid = f"kiosk_{topics.site}_{topics.device}"
    device = {"identifiers": [uid], "name": f"Door kiosk {topics.device}", "manufacturer": "face-kiosk",
              "model": "face-unlock kiosk"}
    avail = {"availability_topic": topics.availability, "payload_available": "online",
             "payload_not_available": "offline"}
    out: dict[str, dict[str, Any]] = {
        f"{ha_prefix}/lock/{uid}/config": {
            "name": "Door", "unique_id": f"{uid}_lock", "state_topic": f"{topics.door_state}/lock",
            "value_template": "{{ value }}", "state_locked": "LOCKED", "state_unlocked": "UNLOCKED",
            "optimistic": False, "device": device, **avail},
        f"{ha_prefix}/sensor/{uid}_last_access/config": {
            "name": "Last access", "unique_id": f"{uid}_last_access", "state_topic": f"{topics.door_state}/last_access",
            "value_template": "{{ value_json.person }}", "json_attributes_topic": f"{topics.door_state}/last_access",
            "device": device, **avail},
    }
    if contact:
        out[f"{ha_prefix}/binary_sensor/{uid}_contact/config"] = {
            "name": "Door contact", "unique_id": f"{uid}_contact", "device_class": "door",
            "state_topic": f"{topics.door_state}/contact", "payload_on": "ON", "payload_off": "OFF",
            "device": device, **avail}
    return out


def state_updates(topics: Topics, event: dict[str, Any]) -> list[tuple[str, str | dict[str, Any]]]:
    """Retained state topics to refresh after an event."""
    kind = event.get("type", "")
    if kind in DOOR_STATES:
        return [(f"{topics.door_state}/lock", DOOR_STATES[kind])]
    if kind in CONTACT_STATES:
        return [(f"{topics.door_state}/contact", CONTACT_STATES[kind])]
    if kind in ("access_granted", "access_denied"):
        return [(f"{topics.door_state}/last_access", {"person": event.get("person"), "granted": kind == "access_granted",
                                                      "score": event.get("score"), "ts": event.get("ts")})]
    return []
