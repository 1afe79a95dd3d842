"""Readers -> PIN verification -> decision engine claims, on a thread of its own.

The keypad and the Wiegand reader fill their buffers from their own threads;
this bridge polls the :class:`~kiosk.factor.second.SecondFactor` every
``poll_interval_s``, checks a typed PIN (one slow KDF evaluation, hundreds of
milliseconds: never on the frame loop) and only then tells the engine who was
claimed (``kiosk.decision.Claim``): the next approach is compared 1:1 with that
person. What the engine is told, per entry:

========================================  ==========================================================
entry                                     engine / events
========================================  ==========================================================
code or card, then the right PIN           ``Claim(person, "pin")`` (mode ``pin``/``pin_or_card``)
code or card, then the duress PIN          ``Claim(person, "pin", duress=True)``: grants; the loop
                                           raises ``duress`` when the face matches
code or card, then a wrong PIN             no claim; ``second_factor_denied`` ``wrong_pin``
identity locked out after wrong PINs       no claim; ``second_factor_denied`` ``pin_locked_out``
a code or card enrolled to nobody (+PIN)   no claim; ``unknown_code`` / ``unknown_card`` (a PIN after
                                           them still spends one KDF and counts towards the lockout)
an enrolled card (mode ``card``/either)    ``Claim(person, "card")``: the face, 1:1, still decides
an enrolled card (mode ``pin``)            no claim: the card only names whose PIN comes next
========================================  ==========================================================

A PIN is checked when it is typed, before the face is compared: the engine
grants on a claim whose face matches, so a claim must already carry a checked
PIN. Wrong PINs count towards the per-identity lockout whether or not a face
was in view.

The readers survive read errors on their own (counted, logged, retried with
backoff: ``kiosk/door/faults.py``); a reader that keeps failing, or whose
thread has ended, is reported once by ``second_factor_reader_failed`` (and
``second_factor_reader_restored`` if it comes back), and makes :meth:`alive`
false: the service stops feeding systemd's watchdog, which restarts it. A
reader fault never makes a claim: what was being typed is void.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from kiosk.decision import Claim as EngineClaim
from kiosk.errors import ConfigError
from kiosk.factor.policy import FactorMode, clock_synchronised
from kiosk.factor.second import Claim, SecondFactor
from kiosk.factor.settings import SecondFactorSettings
from kiosk.factor.wiring import Devices, build_second_factor
from kiosk.match import Gallery

if TYPE_CHECKING:
    from kiosk.config import Settings

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
Emit = Callable[[str, dict[str, Any]], None]


class ClaimTarget(Protocol):
    """What the bridge needs of the decision engine."""

    def claim(self, claim: EngineClaim) -> None: ...


class FactorLookups(Protocol):
    """What the bridge needs of the store (``kiosk.store.Store``): verified records only."""

    def pin_verifiers(self, person_id: str) -> tuple[str, str | None] | None: ...
    def person_for_card(self, card: str) -> str | None: ...
    def person_for_code(self, code: str) -> str | None: ...


class SecondFactorBridge:
    def __init__(self, second_factor: SecondFactor, engine_claim: Callable[[EngineClaim], None], emit: Emit,
                 clock: Callable[[], float] = time.monotonic, *, devices: Devices | None = None,
                 poll_interval_s: float = 0.02) -> None:
        self.second_factor = second_factor
        self.engine_claim = engine_claim
        self.emit = emit
        self.clock = clock
        self.devices = devices
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, str] = {}  # readers reported as failed

    # one step, for the thread and for tests
    def run_once(self) -> EngineClaim | None:
        """Report failed readers; poll the readers once; verify a completed PIN entry; claim or emit.

        Returns what was claimed."""
        self.watch_readers()
        claim = self.second_factor.poll()
        if claim is None:
            return None
        if claim.kind == "card":
            return self._card(claim)
        return self._pin(claim)

    def _card(self, claim: Claim) -> EngineClaim | None:
        if claim.person_id is None:
            self._denied("unknown_card", claim, card=claim.value)
            return None
        if not self.second_factor.accepts("card"):
            logger.info("card of %s presented: waiting for the PIN", claim.person_id)
            return None
        return self._claim(claim.person_id, "card", claim)

    def _pin(self, claim: Claim) -> EngineClaim | None:
        if not self.second_factor.accepts("pin"):
            logger.info("a PIN was typed but this door takes cards only; ignored")
            return None
        if claim.key is None:
            # keypad_entry = "pin": build_bridge refuses it, so only a hand-built SecondFactor gets here
            logger.error("a PIN without a user code or card cannot name a person for the engine; ignored")
            self._denied("no_claim", claim)
            return None
        result = self.second_factor.verify_pin(claim.person_id, claim.value, claim.key)
        if claim.person_id is None:
            if result == "locked_out":
                self._denied("pin_locked_out", claim)
            else:
                via = claim.key.partition(":")[0]
                extra = {"card": claim.key.partition(":")[2]} if via == "card" else {}
                self._denied("unknown_card" if via == "card" else "unknown_code", claim, **extra)
            return None
        if result == "wrong":
            self._denied("wrong_pin", claim)
            return None
        if result == "locked_out":
            self._denied("pin_locked_out", claim)
            return None
        return self._claim(claim.person_id, "pin", claim, duress=result == "duress")

    def watch_readers(self) -> dict[str, str]:
        """The readers that have failed for good; each failure and recovery is reported once."""
        failed = self.devices.failures() if self.devices is not None else {}
        for reader, why in failed.items():
            if reader not in self._failed:
                logger.error("second factor: the %s has failed (%s); the health check fails until it reads again, "
                             "so systemd's watchdog restarts the service", reader, why)
                self._emit("second_factor_reader_failed", {"reader": reader, "error": why})
        for reader in self._failed.keys() - failed.keys():
            logger.info("second factor: the %s reads again", reader)
            self._emit("second_factor_reader_restored", {"reader": reader})
        self._failed = failed
        return failed

    def _claim(self, person: str, kind: str, claim: Claim, duress: bool = False) -> EngineClaim:
        # the engine's clock, now: the claim's time-out runs from when it was checked, not from the first key
        engine_claim = EngineClaim(person, kind, self.clock(), duress=duress)
        self.engine_claim(engine_claim)
        # no duress flag here: the loop raises the silent alarm when the door actually opens
        self._emit("second_factor_accepted", {"person": person, "kind": kind, "via": _via(claim)})
        logger.info("%s claim for %s: the next face is compared 1:1", kind, person)
        return engine_claim

    def _denied(self, reason: str, claim: Claim, **extra: Any) -> None:
        fields: dict[str, Any] = {"reason": reason, "kind": claim.kind, "via": _via(claim), **extra}
        if claim.person_id is not None:
            fields["person"] = claim.person_id
        logger.info("second factor denied: %s", reason)
        self._emit("second_factor_denied", fields)

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            self.emit(kind, fields)
        except Exception:  # reporting must never stop the readers
            logger.exception("event hook failed for %s", kind)

    # thread
    def start(self) -> None:
        """Start the devices' threads, then the polling thread."""
        if self._thread is not None:
            return
        if self.devices is not None:
            self.devices.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="second-factor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.run_once()
            except Exception as exc:  # a failing reader must not kill the thread: the door stays locked meanwhile
                logger.exception("second factor poll failed")
                self._emit("error", {"error": f"second factor: {type(exc).__name__}: {exc}"})

    def alive(self) -> bool:
        """The polling thread runs and no reader has failed for good (the service's health check).

        True before ``start()`` unless a reader already failed.
        """
        thread = self._thread
        if thread is not None and not thread.is_alive():
            return False
        return self.devices is None or not self.devices.failures()

    def close(self, timeout: float = 2.0) -> None:
        """Stop polling (a KDF in progress finishes first, up to ``timeout``), then close the devices."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.devices is not None:
            self.devices.close()


def _via(claim: Claim) -> str:
    return claim.key.partition(":")[0] if claim.key else claim.kind


def factor_required(settings: SecondFactorSettings, *, wall_clock: Callable[[], float] = time.time,
                    clock_synced: Callable[[], bool] = clock_synchronised,
                    recheck_s: float = 1.0) -> Callable[[float], bool] | None:
    """``DecisionEngine(second_factor=...)``: is a second factor required now? None when the mode is off.

    The engine passes its monotonic ``now``; the schedule needs the wall clock
    and whether it is synchronised (fails closed when not), so this reads
    them itself, at most once per ``recheck_s`` of the engine's clock.
    """
    if settings.mode == "off":
        return None
    policy, tz = settings.policy(), settings.zone()
    cached: list[float | bool] = [float("-inf"), True]

    def required(now: float) -> bool:
        if not 0 <= now - float(cached[0]) < recheck_s:
            cached[:] = [now, policy.required(wall_clock(), clock_synced(), tz)]
        return bool(cached[1])

    return required


def one_to_one(gallery: Callable[[], Gallery]) -> Callable[[F32, str], float]:
    """``DecisionEngine(verify=...)``: the cosine of a probe with one person's template(s); -1 when not held."""

    def verify(probe: F32, person: str) -> float:
        g = gallery()
        rows = [i for i, label in enumerate(g.labels) if label == person]
        if not rows:
            return -1.0
        return float(np.max(g.matrix[rows] @ np.asarray(probe, np.float32).reshape(-1)))

    return verify


def build_bridge(settings: Settings, engine: ClaimTarget, store: FactorLookups, events: Emit, pin_factory: Any,
                 clock: Callable[[], float] = time.monotonic, *, wall_clock: Callable[[], float] = time.time,
                 clock_synced: Callable[[], bool] = clock_synchronised) -> SecondFactorBridge | None:
    """The bridge from ``[second_factor]``, not started (``start()``; ``close()`` on the way out); None when off."""
    sf_settings = settings.second_factor
    if sf_settings.mode == "off":
        return None
    if sf_settings.keypad_entry == "pin" and FactorMode(sf_settings.mode) is not FactorMode.CARD:
        raise ConfigError("[second_factor] keypad_entry = 'pin' (a PIN alone, confirming the face's best candidate) "
                          "is not supported by the decision engine yet: use keypad_entry = 'code_pin' (user code # "
                          "PIN #) or a card before the PIN")
    factor, devices = build_second_factor(sf_settings, clock=clock, wall_clock=wall_clock, clock_synced=clock_synced,
                                          pin_factory=pin_factory, verifiers=store.pin_verifiers,
                                          person_for_card=store.person_for_card,
                                          person_for_code=store.person_for_code)
    return SecondFactorBridge(factor, engine.claim, events, clock, devices=devices)
