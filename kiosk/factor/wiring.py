"""Build the second factor from its settings: devices on gpiozero pins, the secret, the lockout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kiosk.door.keypad import MatrixKeypad, build_keypad
from kiosk.door.wiegand import WiegandReader, build_wiegand
from kiosk.factor.lockout import PinLockout
from kiosk.factor.pin import read_secret
from kiosk.factor.policy import clock_synchronised
from kiosk.factor.second import PersonLookup, SecondFactor, VerifierLookup
from kiosk.factor.settings import SecondFactorSettings

logger = logging.getLogger(__name__)


class Devices:
    """The keypad and reader a :class:`SecondFactor` reads, started and closed together."""

    def __init__(self, keypad: MatrixKeypad | None, reader: WiegandReader | None) -> None:
        self.keypad, self.reader = keypad, reader

    def failures(self) -> dict[str, str]:
        """The readers that have failed for good (``"keypad"``, ``"wiegand"``) and what is wrong with each."""
        found = {name: dev.health() for name, dev in (("keypad", self.keypad), ("wiegand", self.reader))
                 if dev is not None}
        return {name: why for name, why in found.items() if why is not None}

    def start(self) -> None:
        for dev in (self.keypad, self.reader):
            if dev is not None:
                dev.start()

    def close(self) -> None:
        for dev in (self.reader, self.keypad):
            if dev is not None:
                dev.close()


def build_second_factor(settings: SecondFactorSettings, *, clock: Callable[[], float] = time.monotonic,
                        wall_clock: Callable[[], float] = time.time,
                        clock_synced: Callable[[], bool] = clock_synchronised, pin_factory: Any = None,
                        verifiers: VerifierLookup, person_for_card: PersonLookup,
                        person_for_code: PersonLookup) -> tuple[SecondFactor, Devices]:
    """The :class:`SecondFactor` and its devices (not started: call ``devices.start()``, and ``close()`` on the way out)."""
    keypad = (build_keypad(settings.keypad_rows, settings.keypad_cols, clock=clock, layout=settings.keypad_layout,
                           debounce_s=settings.keypad_debounce_s, scan_interval_s=settings.keypad_scan_interval_s,
                           pin_factory=pin_factory) if settings.keypad_rows else None)
    reader = None
    if settings.wiegand_d0 is not None and settings.wiegand_d1 is not None:
        reader = build_wiegand(settings.wiegand_d0, settings.wiegand_d1, clock=clock, gap_s=settings.wiegand_gap_s,
                               min_interval_s=settings.wiegand_min_interval_s, pin_factory=pin_factory)
    devices = Devices(keypad, reader)
    try:
        secret = read_secret(settings.pin_secret_file) if settings.mode in ("pin", "pin_or_card") else None
        factor = SecondFactor(settings.policy(), clock=clock, wall_clock=wall_clock, clock_synced=clock_synced,
                              tz=settings.zone(), keypad=keypad, wiegand=reader, secret=secret, verifiers=verifiers,
                              person_for_card=person_for_card, person_for_code=person_for_code,
                              lockout=PinLockout(settings.lockout(), clock), entry_timeout_s=settings.entry_timeout_s,
                              keypad_entry=settings.keypad_entry)
    except Exception:
        devices.close()
        raise
    logger.info("second factor: mode %s, %s; keypad %s, Wiegand reader %s", settings.mode,
                "always" if settings.required == "always" else f"{len(settings.schedule)} schedule rule(s)",
                "yes" if keypad else "no", "yes" if reader else "no")
    return factor, devices
