"""GPIO pin names as gpiozero reads them, checked when the configuration is read.

gpiozero accepts several names for one pin: 17, "17", "GPIO17", "BCM17",
"BOARD11", "J8:11" and "WPI0" all drive the same wire. Two devices on one
pin, spelt two ways, would pass a comparison of the values as written and
fail only when gpiozero reserves the second (the kiosk would not start), or,
worse, two devices that do not reserve alike would share a wire. So every pin
of the configuration is read as gpiozero reads it, and compared by that name:
with the header of the Raspberry Pi it runs on (gpiozero's table for the
board's revision), and elsewhere (a workstation checking a configuration)
with the 40-pin header every Pi has had since the B+ (2, 3, 4, 5, 400, 500,
Zero, Zero 2: the same table). A Compute Module or a 26-pin Pi 1 reads some
names differently; on one, the check is right only on the board itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from kiosk.door.pins import pi_model

logger = logging.getLogger(__name__)

# A Raspberry Pi 4 B revision: gpiozero's table of its 40-pin header, which the other 40-pin boards share.
HEADER_REVISION = 0xC03111


@functools.cache
def board(model_path: Path | None = None) -> Any:
    """gpiozero's table of this Raspberry Pi's header, or off a Pi the 40-pin one. Read from the revision
    the device tree gives, without building a pin factory (which would open the GPIO chip)."""
    from gpiozero.pins.pi import PiBoardInfo

    if pi_model(model_path) is not None:
        try:
            from gpiozero.pins.local import get_pi_revision

            info = PiBoardInfo.from_revision(get_pi_revision())
            if "?" not in info.model:
                return info
            problem = f"gpiozero does not know revision {info.revision}"
        except Exception as exc:
            problem = str(exc)
        logger.warning("this Raspberry Pi's header is unknown (%s): pins are checked against the 40-pin one", problem)
    return PiBoardInfo.from_revision(HEADER_REVISION)


def gpio_name(spec: object, header: Any = None) -> str:
    """The BCM name ("GPIO17") of ``spec`` on ``header`` (default ``board()``); ValueError, saying what is
    accepted, otherwise."""
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise ValueError(f"a pin is a BCM number (17) or a gpiozero pin name (GPIO17, BOARD11), got {spec!r}")
    if spec == "":
        raise ValueError("a pin name is empty: give a BCM number (17) or a gpiozero pin name (GPIO17, BOARD11)")
    from gpiozero.exc import PinError

    info = board() if header is None else header
    try:
        return str(info.to_gpio(spec))
    except PinError as exc:
        raise ValueError(f"{spec!r} is not a GPIO of the Raspberry Pi {info.model}'s header ({exc}): give a BCM number "
                         "or a gpiozero pin name (GPIO17, BCM17, BOARD11, J8:11)") from exc


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


def refuse_shared(pins: Iterable[tuple[str, int | str | None]], what: str) -> None:
    """ValueError (``what``, then each shared pin and its settings) when two of ``pins`` are one GPIO."""
    shared = shared_pins(pins)
    if shared:
        raise ValueError(f"{what}: {'; '.join(shared)}")
