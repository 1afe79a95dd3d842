"""The door on gpiozero's MockFactory: pin state histories, injected clock, no sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.door import Door, DoorTiming, build_door
from tests.clock import FakeClock

RELAY, CONTACT, EXIT = 17, 27, 22


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.items.append((kind, fields))

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]


@pytest.fixture()
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def _door(factory: MockFactory, clock: FakeClock, events: Events, active_high: bool = True) -> Door:
    door = build_door(RELAY, active_high=active_high, timing=DoorTiming(unlock_s=5, held_open_s=30), clock=clock,
                      emit=events, contact_pin=CONTACT, exit_pin=EXIT, pin_factory=factory, bounce_s=None)
    factory.pin(CONTACT).drive_low()  # reed switch closed: door shut
    events.items.clear()
    return door


def test_relay_starts_locked_unlocks_for_the_configured_time_then_relocks(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    relay = factory.pin(RELAY)
    door.unlock("granted", "ann")
    clock.advance(4.9)
    door.tick()
    assert door.unlocked
    clock.advance(0.2)
    door.tick()
    assert not door.unlocked
    relay.assert_states([False, True, False])
    assert events.kinds == ["door_unlocked", "door_locked"]


def test_active_low_relay_is_driven_high_when_locked(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_high=False)
    door.unlock("granted")
    door.lock("test")
    # the first state is the bare pin before the relay claimed it
    factory.pin(RELAY).assert_states([False, True, False, True])


def test_close_leaves_the_relay_locked(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted")
    door.close()
    factory.pin(RELAY).assert_states([False, True, False])


def test_door_opened_without_a_grant_raises_forced_open(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    _door(factory, clock, events)
    factory.pin(CONTACT).drive_high()
    assert events.kinds == ["door_opened", "door_forced_open"]


def test_door_opened_after_a_grant_is_not_forced(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted", "ann")
    factory.pin(CONTACT).drive_high()
    factory.pin(CONTACT).drive_low()
    assert events.kinds == ["door_unlocked", "door_opened", "door_closed"]


def test_held_open_alarm_after_the_configured_time_once(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted")
    factory.pin(CONTACT).drive_high()
    clock.advance(29)
    door.tick()
    assert "door_held_open" not in events.kinds
    clock.advance(2)
    door.tick()
    door.tick()
    assert events.kinds.count("door_held_open") == 1


def test_request_to_exit_button_unlocks(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    factory.pin(EXIT).drive_low()  # pressed (pull-up, active low)
    assert door.unlocked
    assert events.items[0] == ("door_unlocked", {"reason": "request_to_exit", "person": None, "seconds": 5})
