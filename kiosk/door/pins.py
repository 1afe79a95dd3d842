"""Which gpiozero pin factory drives the door.

``"mock"`` is gpiozero's MockFactory, on request only. ``"auto"`` is
gpiozero's default (lgpio first). Where that fails, the answer depends on
the machine: off a Raspberry Pi (a laptop, CI) the kiosk runs on
MockFactory with a warning; on a machine whose device tree says it is a
Raspberry Pi, a missing or unusable GPIO library is an installation fault,
and the kiosk refuses to start rather than report a lock that no relay
follows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

logger = logging.getLogger(__name__)

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
SYSFS_DEVICE_TREE_MODEL = Path("/sys/firmware/devicetree/base/model")  # the same file, outside /proc

GPIO_FIX = ("install lgpio (`sudo apt install python3-lgpio`; the kiosk's venv must be created with "
            "--system-site-packages, as systemd/install.sh does) and make sure the service user can open "
            "/dev/gpiochip* (`sudo usermod -a -G gpio kiosk`, SupplementaryGroups=gpio in kiosk.service); "
            "set door.pin_factory = \"mock\" only to run deliberately without a door")


class GpioUnavailableError(KioskError, OSError):
    """A Raspberry Pi whose GPIO cannot be driven: the kiosk must not pretend to hold a lock."""

    exit_code = 20


def pi_model(model_path: Path | None = None) -> str | None:
    """The device-tree model string when it names a Raspberry Pi, else None.

    By default read in /proc, and in /sys when /proc does not show it: a service whose /proc shows its
    processes only (systemd's ProcSubset=pid) still sees /sys/firmware/devicetree, and must still know
    it runs on a Pi rather than take itself for a workstation and simulate the relay."""
    for path in [DEVICE_TREE_MODEL, SYSFS_DEVICE_TREE_MODEL] if model_path is None else [model_path]:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        model = raw.replace(b"\x00", b"").decode("utf-8", "replace").strip()
        return model if "Raspberry Pi" in model else None
    return None


def _gpiozero_default() -> Any:
    from gpiozero import Device

    return Device._default_pin_factory()


def pin_factory(kind: str, *, model_path: Path | None = None,
                default: Callable[[], Any] | None = None) -> Any:
    """The pin factory for ``door.pin_factory`` = ``kind`` ("auto" or "mock").

    ``default`` builds gpiozero's default factory (injected by tests);
    ``model_path`` is where the device tree names the board.
    Raises ``GpioUnavailableError`` on a Raspberry Pi without usable GPIO.
    """
    from gpiozero.exc import BadPinFactory
    from gpiozero.pins.mock import MockFactory

    if kind == "mock":
        logger.warning("door.pin_factory = mock: the relay is simulated, no door will open")
        return MockFactory()
    if kind != "auto":
        raise ValueError(f"door.pin_factory must be 'auto' or 'mock', got {kind!r}")
    model = pi_model(model_path)
    try:
        factory = (default or _gpiozero_default)()
    except BadPinFactory as exc:
        if model is not None:
            raise GpioUnavailableError(
                f"door.pin_factory = auto on a {model}, but no GPIO library could drive its pins ({exc}; "
                "gpiozero's warnings above say why each one failed): " + GPIO_FIX) from exc
        logger.warning("no GPIO on this machine (not a Raspberry Pi): using gpiozero's MockFactory; "
                       "no door will open")
        return MockFactory()
    if isinstance(factory, MockFactory):
        # gpiozero hands out MockFactory by default only when GPIOZERO_PIN_FACTORY asks for it
        env = os.environ.get("GPIOZERO_PIN_FACTORY", "")
        if model is not None:
            raise GpioUnavailableError(
                f"door.pin_factory = auto on a {model} resolved to gpiozero's MockFactory "
                f"(GPIOZERO_PIN_FACTORY={env!r}): no relay would follow the lock. Unset GPIOZERO_PIN_FACTORY, "
                "or set door.pin_factory = \"mock\" to simulate the door on purpose")
        logger.warning("gpiozero's default pin factory is MockFactory (GPIOZERO_PIN_FACTORY=%r): "
                       "the relay is simulated, no door will open", env)
    return factory
