"""The door: a relay that unlocks it, an optional contact and request-to-exit button.

Fail-secure: the relay is de-energised (locked) at start, after the unlock
time, on ``close()`` and whenever the owner calls ``lock()`` on an error.
GPIO devices are injected (gpiozero, with whatever pin factory the caller
chose), and time comes from an injected clock, so everything here is tested
with gpiozero's ``MockFactory`` and no sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]


class Relay(Protocol):
    def on(self) -> None: ...
    def off(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DoorTiming:
    unlock_s: float = 5.0
    held_open_s: float = 30.0


class Door:
    def __init__(self, relay: Relay, clock: Callable[[], float], emit: Emit, timing: DoorTiming = DoorTiming(),
                 contact: Any | None = None, contact_active_means_closed: bool = True,
                 exit_button: Any | None = None) -> None:
        self.relay = relay
        self.clock = clock
        self.emit = emit
        self.timing = timing
        self.contact = contact
        self.exit_button = exit_button
        self._closed_when_active = contact_active_means_closed
        self._lock = threading.RLock()
        self._relock_at: float | None = None
        self._opened_at: float | None = None
        self._held_alarm = False
        self.relay.off()
        if contact is not None:
            contact.when_activated = self._contact_changed
            contact.when_deactivated = self._contact_changed
            if self.is_open:
                self._opened_at = clock()
        if exit_button is not None:
            exit_button.when_activated = lambda *_: self.unlock("request_to_exit")

    @property
    def unlocked(self) -> bool:
        return self._relock_at is not None

    @property
    def is_open(self) -> bool:
        if self.contact is None:
            return False
        return bool(self.contact.is_active) != self._closed_when_active

    def unlock(self, reason: str, person: str | None = None) -> None:
        with self._lock:
            was = self.unlocked
            self._relock_at = self.clock() + self.timing.unlock_s
            self.relay.on()
        if not was:
            logger.info("door unlocked (%s)", reason)
            self.emit("door_unlocked", {"reason": reason, "person": person, "seconds": self.timing.unlock_s})

    def lock(self, reason: str) -> None:
        with self._lock:
            was = self.unlocked
            self._relock_at = None
            self.relay.off()
        if was:
            logger.info("door locked (%s)", reason)
            self.emit("door_locked", {"reason": reason})

    def tick(self) -> None:
        """Relock when the unlock time is over; raise the held-open alarm. Call often."""
        now = self.clock()
        with self._lock:
            expired = self._relock_at is not None and now >= self._relock_at
        if expired:
            self.lock("timeout")
        if (self._opened_at is not None and not self._held_alarm
                and now - self._opened_at >= self.timing.held_open_s):
            self._held_alarm = True
            logger.warning("door held open for %.0f s", now - self._opened_at)
            self.emit("door_held_open", {"seconds": round(now - self._opened_at, 1)})

    def _contact_changed(self, *_: object) -> None:
        now = self.clock()
        if self.is_open:
            if self._opened_at is not None:
                return
            self._opened_at = now
            self._held_alarm = False
            self.emit("door_opened", {})
            if not self.unlocked:
                logger.warning("door forced open")
                self.emit("door_forced_open", {})
        else:
            if self._opened_at is None:
                return
            self._opened_at = None
            self._held_alarm = False
            self.emit("door_closed", {})

    def close(self) -> None:
        """Lock and release the pins (the relay stays de-energised)."""
        self.lock("shutdown")
        for dev in (self.exit_button, self.contact, self.relay):
            if dev is not None:
                dev.close()


def build_door(relay_pin: int | str, *, active_high: bool, timing: DoorTiming, clock: Callable[[], float],
               emit: Emit, contact_pin: int | str | None = None, exit_pin: int | str | None = None,
               pin_factory: Any = None, bounce_s: float | None = 0.05) -> Door:
    """gpiozero devices on the given pins; ``pin_factory`` None means gpiozero's default."""
    from gpiozero import DigitalInputDevice, OutputDevice

    relay = OutputDevice(relay_pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
    contact = (DigitalInputDevice(contact_pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
               if contact_pin is not None else None)
    exit_button = (DigitalInputDevice(exit_pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
                   if exit_pin is not None else None)
    return Door(relay, clock, emit, timing, contact=contact, exit_button=exit_button)
