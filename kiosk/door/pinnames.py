"""GPIO pin names as gpiozero reads them, checked when the configuration is read.

gpiozero accepts several names for one pin: 17, "17", "GPIO17", "BCM17",
"BOARD11", "J8:11" and "WPI0" all drive the same wire. Two devices on one
pin, spelt two ways, would pass a comparison of the values as written and
fail only when gpiozero reserves the second (the kiosk would not start), or,
worse, two devices that do not reserve alike would share a wire. So every pin
of the configuration is read as gpiozero would read it on the 40-pin header
every Raspberry Pi has had since the B+ (2, 3, 4, 5, Zero, Zero 2; the same
BCM numbers everywhere), and compared by that name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BeforeValidator

# A Raspberry Pi 4 B revision: gpiozero's table of its 40-pin header, which the other 40-pin boards share.
HEADER_REVISION = "c03111"


def gpio_name(spec: object) -> str:
    """The BCM name ("GPIO17") of ``spec`` on the 40-pin header; ValueError, saying what is accepted, otherwise."""
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise ValueError(f"a pin is a BCM number (17) or a gpiozero pin name (GPIO17, BOARD11), got {spec!r}")
    from gpiozero import pi_info
    from gpiozero.exc import PinError

    try:
        return str(pi_info(HEADER_REVISION).to_gpio(spec))
    except PinError as exc:
        raise ValueError(f"{spec!r} is not a GPIO of the Raspberry Pi's 40-pin header ({exc}): give a BCM number "
                         "(0-27) or a gpiozero pin name (GPIO17, BCM17, BOARD11, J8:11)") from exc


def _checked(spec: object) -> object:
    gpio_name(spec)  # before pydantic's coercion, which would read true as pin 1 and 17.0 as 17
    return spec  # kept as written: gpiozero reads it the same way


GpioPin = Annotated[int | str, BeforeValidator(_checked)]


def shared_pins(pins: Iterable[tuple[str, int | str | None]]) -> list[str]:
    """A sentence per pin that two or more of the named settings use (however each is spelt), or none."""
    users: dict[str, list[str]] = {}
    for key, spec in pins:
        if spec is not None:
            users.setdefault(gpio_name(spec), []).append(key)
    return [f"{' and '.join(keys)} are the same pin ({name})" for name, keys in users.items() if len(keys) > 1]
