"""Home Assistant MQTT discovery (pure): the door as a state-only lock, its contact, the last access,
presentation attacks as an event entity, and problem sensors for an expired snapshot and an unsynchronised clock."""

from __future__ import annotations

from typing import Any

from kiosk.mqtt.topics import Topics
from kiosk.trustwatch import CLOCK_SYNCHRONISED, CLOCK_UNSYNCHRONISED, SNAPSHOT_EXPIRED, SNAPSHOT_VALID

DOOR_STATES = {"door_unlocked": "UNLOCKED", "door_locked": "LOCKED"}
CONTACT_STATES = {"door_opened": "ON", "door_closed": "OFF"}
# event type -> (problem, state): what turns each problem sensor on and off
# (the event names are TrustWatch's, so the sensors cannot miss the event that ends an alarm)
PROBLEMS = {SNAPSHOT_EXPIRED: ("snapshot_expired", "ON"), SNAPSHOT_VALID: ("snapshot_expired", "OFF"),
            CLOCK_UNSYNCHRONISED: ("clock_unsynchronised", "ON"), CLOCK_SYNCHRONISED: ("clock_unsynchronised", "OFF")}
PROBLEM_NAMES = {"snapshot_expired": "Site snapshot expired", "clock_unsynchronised": "Clock not synchronised"}
PRESENTATION_ATTACK = "presentation_attack"
_NOT_ATTRIBUTES = {"id", "device", "type"}


def problem_topic(topics: Topics, problem: str) -> str:
    return f"{topics.health}/{problem}"


def attack_topic(topics: Topics) -> str:
    return f"{topics.door_state}/{PRESENTATION_ATTACK}"


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
        f"{ha_prefix}/event/{uid}_{PRESENTATION_ATTACK}/config": {
            "name": "Presentation attack", "unique_id": f"{uid}_{PRESENTATION_ATTACK}",
            "state_topic": attack_topic(topics), "event_types": [PRESENTATION_ATTACK], "device": device, **avail},
    }
    for problem, name in PROBLEM_NAMES.items():
        out[f"{ha_prefix}/binary_sensor/{uid}_{problem}/config"] = {
            "name": name, "unique_id": f"{uid}_{problem}", "device_class": "problem",
            "entity_category": "diagnostic", "state_topic": problem_topic(topics, problem), "payload_on": "ON",
            "payload_off": "OFF", "device": device, **avail}
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
    if kind in PROBLEMS:
        problem, state = PROBLEMS[kind]
        return [(problem_topic(topics, problem), state)]
    if kind == "sync" and event.get("status") == "snapshot_applied":  # as the alarm stands with it (the held
        # snapshot delivered again at a reconnection, expired, leaves the alarm on)
        return [(problem_topic(topics, "snapshot_expired"), "ON" if event.get("snapshot_expired") else "OFF")]
    return []


def is_presentation_attack(event: dict[str, Any]) -> bool:
    kind = event.get("type", "")
    return kind == PRESENTATION_ATTACK or (kind == "access_denied" and event.get("reason") == PRESENTATION_ATTACK)


def event_updates(topics: Topics, event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Not-retained messages for Home Assistant event entities (a retained one would fire again on restart)."""
    if is_presentation_attack(event):
        attributes = {k: v for k, v in event.items() if k not in _NOT_ATTRIBUTES}
        return [(attack_topic(topics), {**attributes, "event_type": PRESENTATION_ATTACK})]
    return []
