"""The door on gpiozero's MockFactory: pin state histories, injected clock, no sleeping."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from gpiozero import DigitalInputDevice, OutputDevice
from gpiozero.pins.mock import MockFactory

from kiosk.door import Door, DoorTiming, Ticker, build_door
from kiosk.door.relay import CLOSE_LOCK_ATTEMPTS
from tests.clock import FakeClock
from tests.pins import assert_pin_history

RELAY, CONTACT, EXIT = 17, 27, 22


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.hooks: dict[str, Any] = {}

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.items.append((kind, fields))
        if kind in self.hooks:
            self.hooks[kind](fields)

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]


def _shut_level(active_means_closed: bool) -> bool:
    """Pin level of a shut door: inputs are pulled up, so an active (closed) switch reads low."""
    return not active_means_closed


def _door(factory: MockFactory, clock: FakeClock, events: Events, active_high: bool = True,
          active_means_closed: bool = True) -> Door:
    door = build_door(RELAY, active_high=active_high, timing=DoorTiming(unlock_s=5, held_open_s=30), clock=clock,
                      emit=events, contact_pin=CONTACT, contact_active_means_closed=active_means_closed,
                      exit_pin=EXIT, pin_factory=factory, bounce_s=None)
    contact = factory.pin(CONTACT)
    contact.drive_high() if _shut_level(active_means_closed) else contact.drive_low()  # door shut
    events.items.clear()
    return door


def _open(factory: MockFactory, active_means_closed: bool = True) -> None:
    pin = factory.pin(CONTACT)
    pin.drive_low() if _shut_level(active_means_closed) else pin.drive_high()


def _shut(factory: MockFactory, active_means_closed: bool = True) -> None:
    pin = factory.pin(CONTACT)
    pin.drive_high() if _shut_level(active_means_closed) else pin.drive_low()


def test_relay_starts_locked_unlocks_for_the_configured_time_then_relocks(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    relay = factory.pin(RELAY)
    assert door.unlock("granted", "ann") is True
    clock.advance(4.9)
    assert door.tick() == pytest.approx(0.1)  # seconds until the relock
    assert door.unlocked
    clock.advance(0.2)
    assert door.tick() is None
    assert not door.unlocked
    assert_pin_history(relay, [False, True, False])
    assert events.kinds == ["door_unlocked", "door_locked"]
    assert events.items[1] == ("door_locked", {"reason": "timeout"})


def test_active_low_relay_is_driven_high_when_locked(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_high=False)
    door.unlock("granted")
    door.lock("test")
    # the first state is the bare pin before the relay claimed it
    assert_pin_history(factory.pin(RELAY), [False, True, False, True])


def test_close_leaves_the_relay_locked(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted")
    door.close()
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    assert events.items[-1] == ("door_locked", {"reason": "shutdown"})


@pytest.mark.parametrize("active_means_closed", [True, False], ids=["NO-contact", "NC-contact"])
def test_door_opened_without_a_grant_raises_forced_open_for_either_contact_polarity(
        factory: MockFactory, active_means_closed: bool) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_means_closed=active_means_closed)
    assert not door.is_open and events.kinds == []
    _open(factory, active_means_closed)
    assert door.is_open
    assert events.kinds == ["door_opened", "door_forced_open"]
    _shut(factory, active_means_closed)
    assert not door.is_open
    assert events.kinds == ["door_opened", "door_forced_open", "door_closed"]


@pytest.mark.parametrize("active_means_closed", [True, False], ids=["NO-contact", "NC-contact"])
def test_door_opened_after_a_grant_is_not_forced_for_either_contact_polarity(
        factory: MockFactory, active_means_closed: bool) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_means_closed=active_means_closed)
    door.unlock("granted", "ann")
    _open(factory, active_means_closed)
    _shut(factory, active_means_closed)
    assert events.kinds == ["door_unlocked", "door_opened", "door_closed"]


@pytest.mark.parametrize("active_means_closed", [True, False], ids=["NO-contact", "NC-contact"])
def test_held_open_alarm_after_the_configured_time_once_for_either_contact_polarity(
        factory: MockFactory, active_means_closed: bool) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_means_closed=active_means_closed)
    door.unlock("granted")
    _open(factory, active_means_closed)
    clock.advance(29)
    door.tick()
    assert "door_held_open" not in events.kinds
    clock.advance(2)
    door.tick()
    door.tick()
    assert events.kinds.count("door_held_open") == 1
    assert events.kinds == ["door_unlocked", "door_opened", "door_locked", "door_held_open"]


def test_a_shut_door_never_raises_held_open_whatever_the_polarity_setting(factory: MockFactory) -> None:
    # the polarity that the old code ignored: an NC contact reading "active" on a shut door
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events, active_means_closed=False)
    clock.advance(3600)
    door.tick()
    assert events.kinds == [] and not door.is_open


def test_door_already_open_at_start_counts_held_open_from_start(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    factory.pin(CONTACT).drive_high()  # NO contact, pulled up: open
    door = build_door(RELAY, active_high=True, timing=DoorTiming(unlock_s=5, held_open_s=30), clock=clock,
                      emit=events, contact_pin=CONTACT, pin_factory=factory, bounce_s=None)
    assert door.is_open
    assert door.next_deadline() == pytest.approx(clock() + 30)
    clock.advance(30)
    door.tick()
    assert events.kinds == ["door_held_open"]


def test_request_to_exit_button_unlocks(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    factory.pin(EXIT).drive_low()  # pressed (pull-up, active low)
    assert door.unlocked
    assert events.items[0] == ("door_unlocked", {"reason": "request_to_exit", "person": None, "seconds": 5})
    assert_pin_history(factory.pin(RELAY), [False, True])


def test_exit_button_pressed_after_close_never_energises_the_relay(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.close()
    factory.pin(EXIT).drive_low()
    factory.pin(EXIT).drive_high()
    factory.pin(EXIT).drive_low()
    assert door.unlock("request_to_exit") is False  # a callback already in flight is refused too
    assert_pin_history(factory.pin(RELAY), [False])
    assert not door.unlocked
    assert events.kinds == ["door_unlock_refused"]


def test_close_locks_first_and_an_exit_press_at_the_final_lock_is_refused(factory: MockFactory) -> None:
    """The relay drops before any input is touched (a fault closing one cannot skip it); a press arriving
    while the inputs are still attached is refused because the door is closing."""
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted")
    seen: dict[str, Any] = {}

    def at_final_lock(fields: dict[str, Any]) -> None:
        assert door.exit_button is not None
        seen["relay"], seen["button_closed"] = factory.pin(RELAY).state, door.exit_button.closed
        factory.pin(EXIT).drive_low()  # pressed through the still-attached callback
        seen["unlock"] = door.unlock("request_to_exit")

    events.hooks["door_locked"] = at_final_lock
    door.close()
    assert seen == {"relay": False, "button_closed": False, "unlock": False}
    assert door.exit_button is not None and door.exit_button.closed
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    assert events.kinds == ["door_unlocked", "door_locked", "door_unlock_refused", "door_unlock_refused"]


def test_the_pin_history_check_is_exact_where_assert_states_compares_a_prefix(factory: MockFactory) -> None:
    """gpiozero's assert_states zips the history with the expectation: "never moved" and "opened once"
    both pass on a door opened twice. The suite's relay claims use assert_pin_history."""
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    for _ in range(2):
        door.unlock("granted")
        clock.advance(6)
        door.tick()
    relay = factory.pin(RELAY)
    relay.assert_states([False])  # the prefix check passes ...
    relay.assert_states([False, True, False])
    for claim in ([False], [False, True, False], [False, True, False, True]):
        with pytest.raises(AssertionError, match="went through"):  # ... the exact one does not
            assert_pin_history(relay, claim)
    assert_pin_history(relay, [False, True, False, True, False])


def test_lock_tick_and_close_again_after_close_are_harmless_no_ops(factory: MockFactory) -> None:
    # the SIGABRT handler may lock a door that shutdown already closed: it must not raise
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.close()
    door.lock("watchdog")
    assert door.tick() is None
    door.close()  # the service's shutdown path and its exit stack may both close it
    assert_pin_history(factory.pin(RELAY), [False])
    assert events.kinds == []


def test_a_hold_locks_now_refuses_grants_but_lets_people_out(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    door.unlock("granted", "ann")
    door.hold("camera_lost")
    assert not door.unlocked
    assert door.unlock("granted", "bob") is False
    assert door.unlock("request_to_exit") is True
    door.lock("test")
    door.release("camera_lost")
    assert door.unlock("granted", "bob") is True
    assert_pin_history(factory.pin(RELAY), [False, True, False, True, False, True])
    assert events.kinds == ["door_unlocked", "door_locked", "door_unlock_refused", "door_unlocked", "door_locked",
                            "door_unlocked"]
    assert events.items[1] == ("door_locked", {"reason": "camera_lost"})
    assert events.items[2][1]["why"] == "camera_lost"


class FlakyRelay:
    """A relay whose ``off()`` fails a given number of times (a GPIO error)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.states: list[bool] = []
        self.closed = False

    def on(self) -> None:
        self.states.append(True)

    def off(self) -> None:
        if self.states and self.failures > 0:
            self.failures -= 1
            raise OSError("gpiochip: I/O error")
        self.states.append(False)

    def close(self) -> None:
        self.closed = True


def test_a_relock_that_fails_is_retried_on_the_next_tick() -> None:
    clock, events = FakeClock(), Events()
    relay = FlakyRelay(failures=1)
    door = Door(relay, clock, events, DoorTiming(unlock_s=5))
    door.unlock("granted")
    clock.advance(5)
    with pytest.raises(OSError):
        door.tick()
    assert door.unlocked  # it still says so: nothing pretends the relay dropped
    assert door.tick() is None
    assert not door.unlocked and relay.states == [False, True, False]


class FaultyInput:
    """An input device whose ``close()`` fails (a GPIO library error at shutdown)."""

    def __init__(self) -> None:
        self.when_activated: Any = None
        self.when_deactivated: Any = None
        self.is_active = False
        self.close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        raise OSError("GPIO: bad handle")


def test_a_fault_closing_the_exit_button_still_leaves_the_relay_locked_and_the_pins_released(
        factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    relay = OutputDevice(RELAY, initial_value=False, pin_factory=factory)
    contact = DigitalInputDevice(CONTACT, pull_up=True, pin_factory=factory)
    button = FaultyInput()
    door = Door(relay, clock, events, DoorTiming(unlock_s=5), contact=contact, exit_button=button)
    assert door.unlock("granted")  # somebody was just let in; SIGTERM arrives now
    with pytest.raises(OSError, match="bad handle"):
        door.close()  # the service's shutdown path
    door.close()  # and its exit stack: nothing left to do
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    assert not door.unlocked and relay.closed and contact.closed and button.close_calls == 1
    assert button.when_activated is None and contact.when_activated is None
    assert events.items[-1] == ("door_locked", {"reason": "shutdown"})


def test_a_one_off_relay_fault_at_close_is_retried_at_once_and_the_relay_ends_de_energised_and_released(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, events = FakeClock(), Events()
    relay = FlakyRelay(failures=1)  # the next off() fails once, then works
    door = Door(relay, clock, events, DoorTiming(unlock_s=5))
    assert door.unlock("granted")  # somebody was just let in; SIGTERM arrives now
    with caplog.at_level(logging.WARNING, logger="kiosk.door.relay"):
        door.close()  # the door is locked in the end: nothing to raise
    assert "dropped at shutdown on try 2 of 3" in caplog.text and "gpiochip" in caplog.text
    assert relay.states == [False, True, False] and relay.closed and not door.unlocked
    assert events.kinds == ["door_unlocked", "door_locked"] and events.items[-1][1] == {"reason": "shutdown"}
    clock.advance(10)
    assert door.tick() is None  # the pin is released: the timer and later locks leave it alone
    door.lock("error")
    assert relay.states == [False, True, False]


def test_a_relay_that_fails_every_try_at_close_keeps_its_pin_for_the_timer_while_the_inputs_are_released(
        factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    clock, events = FakeClock(), Events()
    relay, button = FlakyRelay(failures=CLOSE_LOCK_ATTEMPTS), FaultyInput()
    contact = DigitalInputDevice(CONTACT, pull_up=True, pin_factory=factory)  # undriven: reads open
    door = Door(relay, clock, events, DoorTiming(unlock_s=5, held_open_s=30), contact=contact, exit_button=button)
    door.unlock("granted")
    with caplog.at_level(logging.ERROR, logger="kiosk.door.relay"), pytest.raises(OSError, match="gpiochip"):
        door.close()  # the relay's own fault is the one raised ...
    assert "could not be de-energised at shutdown (3 tries" in caplog.text  # ... said once as an error ...
    assert "bad handle" in caplog.text and "gpiochip" not in caplog.text  # ... and the button's is logged
    assert contact.closed and button.close_calls == 1 and contact.when_activated is None
    assert not relay.closed and relay.states == [False, True]  # the pin is kept: released, nothing drives it
    assert door.unlocked  # it still says so: nothing pretends the relay dropped
    assert door.unlock("request_to_exit") is False
    clock.advance(1)  # long before the grant's relock deadline: at shutdown the relock is due at once
    assert door.tick() is None  # the relock timer's next tick drops it
    assert relay.states == [False, True, False] and not door.unlocked
    assert events.kinds == ["door_unlocked", "door_unlock_refused", "door_locked"]
    assert events.items[-1] == ("door_locked", {"reason": "shutdown"})
    clock.advance(60)
    assert door.tick() is None and "door_held_open" not in events.kinds  # the contact is detached: no alarms
    door.close()  # the service's exit stack, after the timer is stopped: drives it off once more, then releases it
    assert relay.closed and relay.states == [False, True, False, False]
    door.lock("watchdog")
    door.close()
    assert relay.states == [False, True, False, False] and button.close_calls == 1


def test_a_relay_still_stuck_after_the_timer_stopped_is_tried_again_by_the_next_close_and_never_released_energised(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, events = FakeClock(), Events()
    relay = FlakyRelay(failures=2 * CLOSE_LOCK_ATTEMPTS + 1)
    door = Door(relay, clock, events, DoorTiming(unlock_s=5))
    door.unlock("granted")
    with caplog.at_level(logging.ERROR, logger="kiosk.door.relay"):
        with pytest.raises(OSError, match="gpiochip"):
            door.close()  # the service's shutdown path: three tries
        with pytest.raises(OSError, match="gpiochip"):
            door.tick()  # one of the relock timer's retries, before the exit stack stops it
        with pytest.raises(OSError, match="gpiochip"):
            door.close()  # the exit stack's close: three more tries, the pin is still kept
    assert caplog.text.count("could not be de-energised at shutdown") == 2
    assert not relay.closed and door.unlocked and relay.states == [False, True]
    door.close()  # the GPIO works again
    assert relay.closed and not door.unlocked and relay.states == [False, True, False]
    assert events.kinds == ["door_unlocked", "door_locked"]


def test_contact_chatter_against_a_running_timer_keeps_the_event_sequence_consistent(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    ticker = Ticker(door.tick, 0.05, name="door-timer", wait=lambda _t: None)  # tick as fast as it can
    ticker.start()
    stop = threading.Event()

    def advance() -> None:
        while not stop.is_set():
            clock.advance(1.0)

    mover = threading.Thread(target=advance)
    mover.start()
    try:
        for _ in range(300):
            _open(factory)
            _shut(factory)
    finally:
        stop.set()
        mover.join(5)
        ticker.stop(5)
    assert ticker.errors == 0 and ticker.ticks > 0
    door_events = [k for k in events.kinds if k in ("door_opened", "door_closed")]
    assert door_events == ["door_opened", "door_closed"] * 300
    assert events.kinds.count("door_forced_open") == 300


def test_the_timers_relock_of_a_relay_stuck_at_shutdown_is_logged_as_shutdown(
        caplog: pytest.LogCaptureFixture) -> None:
    """The journal says why the relay dropped, as the event does: not a routine timeout."""
    clock, events = FakeClock(), list[tuple[str, dict[str, Any]]]()
    relay = FlakyRelay(failures=0)
    door = Door(relay, clock, lambda k, f: events.append((k, f)), DoorTiming(unlock_s=5))
    door.unlock("granted")
    relay.failures = CLOSE_LOCK_ATTEMPTS
    with pytest.raises(OSError):
        door.close()
    with caplog.at_level(logging.INFO, logger="kiosk.door.relay"):
        door.tick()
    assert events[-1] == ("door_locked", {"reason": "shutdown"})
    assert "door locked (shutdown)" in caplog.text
