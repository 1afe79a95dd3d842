"""The door: relay, contact, exit button, relock timer and the GPIO pin factory."""

from kiosk.door.pins import GpioUnavailableError, pin_factory
from kiosk.door.relay import Door, DoorTiming, Emit, Relay, build_door
from kiosk.door.timer import DoorTimerSettings, Ticker, door_timer

__all__ = ["Door", "DoorTimerSettings", "DoorTiming", "Emit", "GpioUnavailableError", "Relay", "Ticker",
           "build_door", "door_timer", "pin_factory"]
