"""The door: relay, contact, exit button, relock timer and the GPIO pin factory."""

from kiosk.door.relay import Door, DoorTiming, Emit, Relay, build_door

__all__ = ["Door", "DoorTiming", "Emit", "Relay", "build_door"]
