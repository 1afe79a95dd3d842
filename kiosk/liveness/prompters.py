"""How the kiosk asks for a head turn: the log, a GPIO LED pair (and buzzer), or an MQTT topic."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from .challenge import DIRECTIONS
from .settings import GpioPrompterSettings, LivenessSettings, MqttPrompterSettings

logger = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]


class Prompter(Protocol):
    def prompt(self, direction: str) -> None:
        """Ask the person to turn their head to their ``direction`` ("left" | "right")."""

    def clear(self) -> None:
        """Withdraw the prompt."""

    def close(self) -> None:
        """Release the hardware or client."""


def _check(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction


class LogPrompter:
    """Writes the prompt to the log (a door without a display, and tests)."""

    def prompt(self, direction: str) -> None:
        logger.info("liveness prompt: turn your head to your %s", _check(direction))

    def clear(self) -> None:
        logger.info("liveness prompt cleared")

    def close(self) -> None:
        pass


class GpioPrompter:
    """An LED on each side of the camera (the person's left and right) and an optional buzzer.

    The LED on the side to turn to lights and the buzzer sounds until the prompt is cleared (the
    judge clears it at the verdict or when the face leaves).
    """

    def __init__(self, left_pin: int | str, right_pin: int | str, buzzer_pin: int | str | None = None, *,
                 active_high: bool = True, buzzer_active_high: bool | None = None, pin_factory: Any = None) -> None:
        from gpiozero import LED, Buzzer

        self.leds = {"left": LED(left_pin, active_high=active_high, initial_value=False, pin_factory=pin_factory),
                     "right": LED(right_pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)}
        buzzer_high = active_high if buzzer_active_high is None else buzzer_active_high
        self.buzzer = (Buzzer(buzzer_pin, active_high=buzzer_high, initial_value=False, pin_factory=pin_factory)
                       if buzzer_pin is not None else None)

    def prompt(self, direction: str) -> None:
        _check(direction)
        for name, led in self.leds.items():
            if name == direction:
                led.on()
            else:
                led.off()
        if self.buzzer is not None:
            self.buzzer.on()

    def clear(self) -> None:
        for led in self.leds.values():
            led.off()
        if self.buzzer is not None:
            self.buzzer.off()

    def close(self) -> None:
        devices: list[Any] = [*self.leds.values(), self.buzzer]
        for device in devices:
            if device is not None:
                device.close()


class MqttPrompter:
    """Publishes ``{"prompt": "left"|"right"|null, "ts": ...}`` on ``<prefix>/<site>/<device>/prompt``
    (not retained: a stale prompt must not reappear) for a display or Home Assistant."""

    def __init__(self, publish: Publish, topic: str, clock: Callable[[], float] = time.time) -> None:
        self.publish = publish
        self.topic = topic
        self.clock = clock

    def _send(self, direction: str | None) -> None:
        payload = json.dumps({"prompt": direction, "ts": round(self.clock(), 3)}).encode()
        try:
            self.publish(self.topic, payload)
        except Exception as exc:  # the broker is optional: the prompt is also logged
            logger.warning("could not publish the liveness prompt on %s: %s", self.topic, exc)

    def prompt(self, direction: str) -> None:
        self._send(_check(direction))

    def clear(self) -> None:
        self._send(None)

    def close(self) -> None:
        pass


def active_low_warning(p: GpioPrompterSettings) -> str | None:
    """What to tell the installer about active-low prompt devices, which light or sound undriven; None if none."""
    low = [name for name, high, pin in (("LEDs", p.active_high, p.left_pin), ("buzzer", p.buzzer_high(), p.buzzer_pin))
           if not high and pin is not None]
    if not low:
        return None
    return (f"liveness prompter {' and '.join(low)}: active low, so lit or sounding whenever the kiosk does not "
            "drive the pin (boot, start, after a stop, and always while liveness is off) unless pulled up: "
            "docs/deploy-pi.md, Wiring")


def build_prompter(settings: LivenessSettings, *, publish: Publish | None = None, topic: str | None = None,
                   pin_factory: Any = None) -> Prompter:
    """The prompter the ``[liveness.prompter]`` section names; MQTT needs ``publish`` and ``topic``."""
    p = settings.prompter
    if isinstance(p, GpioPrompterSettings):
        if (warning := active_low_warning(p)) is not None:
            logger.warning(warning)
        return GpioPrompter(p.left_pin, p.right_pin, p.buzzer_pin, active_high=p.active_high,
                            buzzer_active_high=p.buzzer_high(), pin_factory=pin_factory)
    if isinstance(p, MqttPrompterSettings):
        if publish is None or topic is None:
            from kiosk.errors import ConfigError

            raise ConfigError("liveness.prompter.type = \"mqtt\" needs MQTT: set [mqtt] enabled = true, "
                              "or choose the log or gpio prompter")
        return MqttPrompter(publish, topic)
    return LogPrompter()
