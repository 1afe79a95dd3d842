"""The second factor as the decision engine sees it: claims in, PIN verdicts out.

Sources (a keypad's key presses, a Wiegand reader's frames) are polled; each
completed entry becomes a :class:`Claim`:

- ``card``: a card number; ``person_id`` is whom it is enrolled to (None:
  nobody). It claims an identity, so the face is compared 1:1 against that
  person, but it never grants alone: a card is an identifier, not a secret.
- ``pin`` with ``person_id``: ``code#PIN#`` on the keypad (the user code
  claims the identity), or a PIN typed within the entry timeout after a card.
  The face is compared 1:1 against ``person_id`` and the PIN confirms.
- ``pin`` without ``person_id`` and without ``key``: the PIN alone
  (``keypad_entry = "pin"``); it confirms the face's best 1:N candidate.
- ``pin`` with a ``key`` but no ``person_id``: a user code or card that names
  nobody; :meth:`SecondFactor.verify_pin` still spends a KDF and counts the
  attempt against that code, then answers ``wrong``.

``verify_pin`` takes one KDF evaluation (hundreds of milliseconds on a Pi):
call it off the frame loop or accept the pause, once per claim.

A reader fault (the keypad's :data:`~kiosk.door.keypad.FAULT` mark, a
Wiegand ``reader_fault``) voids what was being entered: the half-typed entry
and a card waiting for its PIN are forgotten, as by the entry timeout, and
the person starts again. Keys typed after the fault count as usual.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Literal, Protocol

from kiosk.door.keypad import FAULT, KeyBuffer
from kiosk.door.wiegand import READER_FAULT, Card, Decoded, KeyPress, Rejected
from kiosk.errors import ConfigError
from kiosk.factor.lockout import LockoutConfig, PinLockout
from kiosk.factor.pin import VerifierError, make_verifier, match
from kiosk.factor.policy import FactorMode, SecondFactorPolicy

logger = logging.getLogger(__name__)

PinResult = Literal["ok", "duress", "wrong", "locked_out"]
VerifierLookup = Callable[[str], "tuple[str, str | None] | None"]  # person -> (verifier, duress verifier or None)
PersonLookup = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Claim:
    kind: Literal["pin", "card"]
    person_id: str | None
    value: str = field(repr=False)  # the PIN (never logged) or the card number "h10301:12:3456"
    at: float  # monotonic clock of the source's last key or pulse
    key: str | None = None  # what claimed the identity: "code:<digits>" or "card:<number>"; None for a PIN alone


class KeySource(Protocol):
    def read_keys(self) -> list[tuple[str, float]]: ...


class FrameSource(Protocol):
    def read(self) -> list[tuple[Decoded, float]]: ...


class SecondFactor:
    def __init__(self, policy: SecondFactorPolicy, *, clock: Callable[[], float],
                 wall_clock: Callable[[], float] = time.time, clock_synced: Callable[[], bool] = lambda: False,
                 tz: tzinfo | None = None, keypad: KeySource | None = None, wiegand: FrameSource | None = None,
                 secret: bytes | None = None, verifiers: VerifierLookup = lambda person: None,
                 person_for_card: PersonLookup = lambda card: None, person_for_code: PersonLookup = lambda code: None,
                 lockout: PinLockout | None = None, entry_timeout_s: float = 10.0,
                 keypad_entry: Literal["code_pin", "pin"] = "code_pin") -> None:
        if policy.mode in (FactorMode.PIN, FactorMode.PIN_OR_CARD) and secret is None:
            raise ConfigError(f"second factor mode {policy.mode.value!r} needs the site PIN secret; "
                              "set [second_factor] pin_secret_file or install the kiosk-pin-secret credential")
        self.policy = policy
        self.clock, self.wall_clock, self.clock_synced, self.tz = clock, wall_clock, clock_synced, tz
        self.keypad, self.wiegand = keypad, wiegand
        self.secret = secret
        self.verifiers, self.person_for_card, self.person_for_code = verifiers, person_for_card, person_for_code
        self.lockout = lockout or PinLockout(LockoutConfig(), clock)
        self.entry_timeout_s = entry_timeout_s
        self.keypad_entry = keypad_entry
        self._fields = 2 if keypad_entry == "code_pin" else 1
        self._buffer = KeyBuffer(entry_timeout_s, fields=self._fields)
        self._card: tuple[Card, str | None, float] | None = None  # last card: it claims the next PIN
        self._decoy: str | None = None

    def required(self, now_wall: float | None = None) -> bool:
        now_wall = self.wall_clock() if now_wall is None else now_wall
        return self.policy.required(now_wall, self.clock_synced(), self.tz)

    def accepts(self, kind: str) -> bool:
        return self.policy.accepts(kind)

    def poll(self) -> Claim | None:
        """The newest claim completed since the last call (older ones are superseded), or None."""
        now = self.clock()
        claims: list[Claim] = []
        events: list[tuple[float, str | Card]] = []
        if self.keypad is not None:
            events += [(t, k) for k, t in self.keypad.read_keys()]
        if self.wiegand is not None:
            for frame, t in self.wiegand.read():
                if isinstance(frame, Card):
                    events.append((t, frame))
                elif isinstance(frame, KeyPress):
                    events.append((t, frame.key))
                elif isinstance(frame, Rejected) and frame.reason == READER_FAULT:
                    events.append((t, FAULT))
        for t, item in sorted(events, key=lambda e: e[0]):
            claim = self._card_claim(item, t) if isinstance(item, Card) else self._key(item, t)
            if claim is not None:
                claims.append(claim)
        if self._card is not None and now - self._card[2] >= self.entry_timeout_s:
            self._card = None
            self._buffer.fields = self._fields
        self._buffer.expire(now)
        return claims[-1] if claims else None

    def _card_claim(self, card: Card, t: float) -> Claim:
        person = self.person_for_card(str(card))
        self._card = (card, person, t)
        self._buffer.clear()
        self._buffer.fields = 1  # after a card, the next field is its PIN
        logger.info("card presented (%s)", "enrolled" if person else "unknown")
        return Claim("card", person, str(card), t, key=f"card:{card}")

    def _key(self, key: str, t: float) -> Claim | None:
        if key == FAULT:
            self._void()
            return None
        entry = self._buffer.press(key, t)
        if entry is None:
            return None
        if self._card is not None and t - self._card[2] < self.entry_timeout_s:
            card, person, _ = self._card
            self._card = None
            self._buffer.fields = self._fields
            return Claim("pin", person, entry.fields[-1], entry.at, key=f"card:{card}")
        self._card = None
        self._buffer.fields = self._fields
        if len(entry.fields) == 2:
            code, pin = entry.fields
            return Claim("pin", self.person_for_code(code), pin, entry.at, key=f"code:{code}")
        if self._fields == 2:
            logger.info("a PIN typed after its card had expired is ignored")
            return None
        return Claim("pin", None, entry.fields[0], entry.at)

    def _void(self) -> None:
        """A reader failed: forget the entry being typed and a card waiting for its PIN."""
        if self._buffer.pending or self._card is not None:
            logger.info("a reader failed: the entry being typed is discarded")
        self._buffer.clear()
        self._card = None
        self._buffer.fields = self._fields

    def verify_pin(self, person_id: str | None, pin: str, key: str | None = None) -> PinResult:
        """Check ``pin`` for ``person_id`` (a claim's person or the face's candidate); count wrong PINs.

        ``key`` names the claim when ``person_id`` is None (a user code or card
        enrolled to nobody), so those attempts are throttled as well.
        """
        ident = person_id if person_id is not None else (key or "unclaimed")
        if self.lockout.locked(ident):
            return "locked_out"
        if self.secret is None:
            logger.error("a PIN was typed but this kiosk holds no PIN secret; denying")
            return "wrong"
        entry = self.verifiers(person_id) if person_id is not None else None
        result: PinResult = "wrong"
        try:
            if entry is None:
                match(pin, [self._decoy_verifier()], self.secret)  # same time as a real check
            else:
                normal, duress = entry
                hits = match(pin, [normal] + ([duress] if duress else []), self.secret)
                result = "ok" if hits[0] else "duress" if len(hits) > 1 and hits[1] else "wrong"
        except VerifierError as exc:
            logger.error("PIN not checked for one person: %s", exc)
        if result == "wrong":
            self.lockout.failure(ident)
        else:
            self.lockout.success(ident)
        return result

    def _decoy_verifier(self) -> str:
        assert self.secret is not None
        if self._decoy is None:
            self._decoy = make_verifier(f"{int.from_bytes(os.urandom(4), 'big') % 10**8:08d}", self.secret)
        return self._decoy
