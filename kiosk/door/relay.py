"""The door: a relay that unlocks it, an optional contact and request-to-exit button.

Fail-secure: the relay is de-energised (locked) at start, after the unlock
time, on ``close()`` and whenever the owner calls ``lock()`` on an error.
Every state change (relay, relock deadline, door-open time, alarms) happens
under one lock, because three threads touch it: the frame loop (grants),
gpiozero's callback thread (contact, exit button) and the relock timer
(``kiosk.door.timer``), which relocks on time even when frame processing
stalls. Events are emitted after the lock is released, so a slow event sink
never delays the relay.

GPIO devices are injected (gpiozero, with whatever pin factory the caller
chose), and time comes from an injected clock, so everything here is tested
with gpiozero's ``MockFactory`` and no sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]

# Unlock reasons a hold (e.g. ``camera_lost``) does not block: egress must always work.
HOLD_EXEMPT = frozenset({"request_to_exit"})

# Immediate tries to de-energise the relay in close(); if all fail, the relay pin is kept for the relock timer.
CLOSE_LOCK_ATTEMPTS = 3


class Relay(Protocol):
    def on(self) -> None: ...
    def off(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DoorTiming:
    unlock_s: float = 5.0
    held_open_s: float = 30.0


class Door:
    """The lock relay and the door's sensors, with every state change under one lock.

    ``contact_active_means_closed``: with the contact wired to ground through
    a pull-up, an active (low) input means the switch is closed. For a
    normally-open reed switch that closes when the door shuts this is True;
    for a normally-closed contact (or one wired the other way) set it False.
    """

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
        self._holds: set[str] = set()
        self._closing = False  # no unlock is accepted once close() has begun
        self._released = False  # the relay was de-energised and its pin released: nothing drives it again
        self.relay.off()
        if contact is not None:
            with self._lock:
                if self._contact_open():
                    self._opened_at = clock()
            contact.when_activated = self._contact_changed
            contact.when_deactivated = self._contact_changed
        if exit_button is not None:
            exit_button.when_activated = self._exit_pressed

    # -- state, read under the lock -------------------------------------------------------------

    @property
    def unlocked(self) -> bool:
        with self._lock:
            return self._relock_at is not None

    @property
    def is_open(self) -> bool:
        """The contact says the door leaf is open (False without a contact)."""
        with self._lock:
            return self._contact_open()

    @property
    def holds(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._holds)

    def next_deadline(self) -> float | None:
        """Clock time of the next relock or held-open alarm, None when nothing is due."""
        with self._lock:
            return self._next_deadline_locked()

    # -- commands ---------------------------------------------------------------------------------

    def unlock(self, reason: str, person: str | None = None) -> bool:
        """Energise the relay for ``unlock_s`` (extending a running unlock). False when refused:
        the door is closing, or a hold is active and ``reason`` is not exempt from holds."""
        with self._lock:
            if self._closing:
                refused: dict[str, Any] | None = {"reason": reason, "person": person, "why": "shutting_down"}
            elif self._holds and reason not in HOLD_EXEMPT:
                refused = {"reason": reason, "person": person, "why": ",".join(sorted(self._holds))}
            else:
                refused = None
                was = self._relock_at is not None
                self.relay.on()
                self._relock_at = self.clock() + self.timing.unlock_s
        if refused is not None:
            logger.warning("unlock (%s) refused: %s", reason, refused["why"])
            self.emit("door_unlock_refused", refused)
            return False
        if not was:
            logger.info("door unlocked (%s)", reason)
            self.emit("door_unlocked", {"reason": reason, "person": person, "seconds": self.timing.unlock_s})
        return True

    def lock(self, reason: str) -> None:
        """De-energise the relay now. A no-op once ``close()`` has released the relay's pin."""
        with self._lock:
            if self._released:
                return
            was = self._relock_at is not None
            self.relay.off()  # before the state: if this raises, the door still reads unlocked and is retried
            self._relock_at = None
        if was:
            logger.info("door locked (%s)", reason)
            self.emit("door_locked", {"reason": reason})

    def hold(self, name: str) -> None:
        """Lock now and refuse unlocks (except request-to-exit) until ``release(name)``."""
        with self._lock:
            new = name not in self._holds
            self._holds.add(name)
        if new:
            logger.warning("door held locked: %s", name)
        self.lock(name)

    def release(self, name: str) -> None:
        with self._lock:
            had = name in self._holds
            self._holds.discard(name)
        if had:
            logger.info("door hold released: %s", name)

    def tick(self) -> float | None:
        """Relock when the unlock time is over; raise the held-open alarm.

        Called by the relock timer's thread (and harmlessly by anyone else).
        Returns the seconds until the next deadline, None when nothing is due.
        Once ``close()`` has begun only a relock is left to do, and it is due
        at once: ``close()`` could not de-energise the relay, so it kept the pin.
        """
        now = self.clock()
        events: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            if self._released:
                return None
            if self._relock_at is not None and (now >= self._relock_at or self._closing):
                self.relay.off()
                self._relock_at = None
                events.append(("door_locked", {"reason": "shutdown" if self._closing else "timeout"}))
            if (not self._closing and self._opened_at is not None and not self._held_alarm
                    and now - self._opened_at >= self.timing.held_open_s):
                self._held_alarm = True
                events.append(("door_held_open", {"seconds": round(now - self._opened_at, 1)}))
            deadline = self._next_deadline_locked()
        for kind, fields in events:
            if kind == "door_locked":
                logger.info("door locked (%s)", fields.get("reason", "timeout"))
            else:
                logger.warning("door held open for %.0f s", fields["seconds"])
            self.emit(kind, fields)
        return None if deadline is None else max(0.0, deadline - now)

    def close(self) -> None:
        """Lock, detach the contact and exit button, and release the pins, the relay's once it is de-energised.

        ``_closing`` refuses every unlock from the start (an exit-button press in flight included), so
        the relay is de-energised first: nothing that fails afterwards can leave it energised. It is
        tried ``CLOSE_LOCK_ATTEMPTS`` times at once. If it still cannot be de-energised, its pin is kept
        (released, nothing would drive the line) and the relock stays due: ``tick()`` (the relock timer)
        retries it until the timer is stopped, and calling ``close()`` again tries it again and releases
        the pin once it drops. The inputs are detached and closed on the first call whatever failed
        before; the first error is raised once that is done, any further one is logged. Once the relay's
        pin is released, calling it again does nothing.
        """
        with self._lock:
            if self._released:
                return
            first = not self._closing
            self._closing = True
        errors: list[Exception] = []

        def attempt(step: Callable[[], None]) -> None:
            try:
                step()
            except Exception as exc:  # raised (the first) or logged once every step is done
                errors.append(exc)

        dropped = self._lock_at_close(errors)
        if first:
            inputs = [device for device in (self.exit_button, self.contact) if device is not None]
            for device in inputs:
                attempt(partial(self._detach, device))
            # devices are closed outside the lock: a GPIO callback in flight may be waiting for it
            for device in inputs:
                attempt(device.close)
        if dropped:
            with self._lock:
                self._released = True  # from here on lock() and tick() leave the relay alone
            attempt(self.relay.close)
        for later in errors[1:]:
            logger.error("closing the door also failed (the first fault is raised): %s", later, exc_info=later)
        if errors:
            raise errors[0]

    def _lock_at_close(self, errors: list[Exception]) -> bool:
        """Lock for shutdown, up to ``CLOSE_LOCK_ATTEMPTS`` times at once; True when the relay dropped.

        When every try fails the relock is made due now (whether the relay is energised is not known,
        so the door reads unlocked until it drops), the failure is logged as an error, and the last
        fault goes into ``errors`` to be raised.
        """
        failed: list[Exception] = []
        for _ in range(CLOSE_LOCK_ATTEMPTS):
            try:
                self.lock("shutdown")
            except Exception as exc:
                failed.append(exc)
                continue
            if failed:
                logger.warning("the relay dropped at shutdown on try %d of %d, after: %s", len(failed) + 1,
                               CLOSE_LOCK_ATTEMPTS, failed[-1])
            return True
        with self._lock:
            now = self.clock()
            if self._relock_at is None or self._relock_at > now:
                self._relock_at = now
        logger.error("the relay could not be de-energised at shutdown (%d tries; the fault is raised): its pin is "
                     "kept and the relock timer retries, then the next close() and ExecStopPost's `kiosk door lock`",
                     CLOSE_LOCK_ATTEMPTS)
        errors.append(failed[-1])
        return False

    # -- callbacks and helpers --------------------------------------------------------------------

    @staticmethod
    def _detach(device: Any) -> None:
        for callback in ("when_activated", "when_deactivated"):
            if getattr(device, callback) is not None:  # gpiozero warns about clearing one never set
                setattr(device, callback, None)

    def _exit_pressed(self, *_: object) -> None:
        self.unlock("request_to_exit")

    def _contact_open(self) -> bool:
        if self.contact is None:
            return False
        return bool(self.contact.is_active) != self._closed_when_active

    def _next_deadline_locked(self) -> float | None:
        due = [] if self._relock_at is None else [self._relock_at]
        if not self._closing and self._opened_at is not None and not self._held_alarm:  # no alarms at shutdown
            due.append(self._opened_at + self.timing.held_open_s)
        return min(due) if due else None

    def _contact_changed(self, *_: object) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            if self._closing:
                return
            now = self.clock()
            if self._contact_open():
                if self._opened_at is None:
                    self._opened_at = now
                    self._held_alarm = False
                    events.append(("door_opened", {}))
                    if self._relock_at is None:
                        events.append(("door_forced_open", {}))
            elif self._opened_at is not None:
                self._opened_at = None
                self._held_alarm = False
                events.append(("door_closed", {}))
        for kind, fields in events:
            if kind == "door_forced_open":
                logger.warning("door forced open")
            self.emit(kind, fields)


def build_door(relay_pin: int | str, *, active_high: bool, timing: DoorTiming, clock: Callable[[], float],
               emit: Emit, contact_pin: int | str | None = None, contact_active_means_closed: bool = True,
               exit_pin: int | str | None = None, pin_factory: Any = None, bounce_s: float | None = 0.05) -> Door:
    """gpiozero devices on the given pins; ``pin_factory`` None means gpiozero's default.

    Inputs use the internal pull-up: a contact or button wired to ground reads
    active when its switch is closed.
    """
    from gpiozero import DigitalInputDevice, OutputDevice

    relay = OutputDevice(relay_pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
    contact = (DigitalInputDevice(contact_pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
               if contact_pin is not None else None)
    exit_button = (DigitalInputDevice(exit_pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
                   if exit_pin is not None else None)
    return Door(relay, clock, emit, timing, contact=contact, contact_active_means_closed=contact_active_means_closed,
                exit_button=exit_button)
