"""The second factor end to end on mock pins: keypad and Wiegand entries become claims; PINs, duress, lockout."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.door.keypad import MatrixKeypad, build_keypad
from kiosk.door.wiegand import WiegandReader, build_wiegand, encode_h10301
from kiosk.errors import ConfigError
from kiosk.factor import Claim, SecondFactor
from kiosk.factor.lockout import LockoutConfig, PinLockout
from kiosk.factor.pin import KdfParams, make_verifier, make_verifier_pair
from kiosk.factor.policy import FactorMode, ScheduleRule, SecondFactorPolicy
from kiosk.factor.settings import SecondFactorSettings
from kiosk.factor.wiring import build_second_factor
from tests.clock import FakeClock
from tests.second_factor_pins import ClockedFactory, KeyMatrix, WiegandLines, bits

ROWS, COLS, D0, D1 = [5, 6, 13, 19], [12, 16, 20], 23, 24
SECRET = bytes(range(32))
FAST = KdfParams("argon2id", memory_kib=64, iterations=1)
ANN_PIN, ANN_DURESS = "4711", "4712"
ANN_CARD = "h10301:12:3456"
EIGHT_BIT = {k: f"{~v & 0xF:04b}{v:04b}" for v, k in enumerate("0123456789*#")}


@dataclass
class Rig:
    clock: FakeClock
    matrix: KeyMatrix
    lines: WiegandLines
    keypad: MatrixKeypad
    reader: WiegandReader

    def type(self, keys: str) -> None:
        """Each key held 50 ms and released for 50 ms, the keypad scanned every 10 ms."""
        for key in keys:
            self.matrix.press(key)
            self._scan(5)
            self.matrix.release()
            self._scan(5)

    def _scan(self, n: int) -> None:
        for _ in range(n):
            self.keypad.scan_once()
            self.clock.advance(0.01)

    def swipe(self, facility: int, number: int) -> None:
        self.lines.send(encode_h10301(facility, number))
        self.clock.advance(0.03)

    def reader_keys(self, keys: str) -> None:
        """Keys on the Wiegand reader's own keypad, 8-bit format, one frame each."""
        for key in keys:
            self.lines.send(bits(EIGHT_BIT[key]))
            self.clock.advance(0.03)


@pytest.fixture()
def rig() -> Iterator[Rig]:
    clock = FakeClock()
    factory = ClockedFactory(clock)
    matrix = KeyMatrix(factory, ROWS, COLS, "123456789*0#")
    lines = WiegandLines(factory, D0, D1, clock.advance)
    keypad = build_keypad(ROWS, COLS, clock=clock, pin_factory=factory)
    reader = build_wiegand(D0, D1, clock=clock, pin_factory=factory)
    yield Rig(clock, matrix, lines, keypad, reader)
    keypad.close()
    reader.close()
    factory.reset()


VERIFIERS = {"ann": make_verifier_pair(ANN_PIN, ANN_DURESS, SECRET, FAST), "bob": (make_verifier("2580", SECRET, FAST), None)}


def _factor(rig: Rig, mode: FactorMode = FactorMode.PIN_OR_CARD, entry: str = "code_pin",
            secret: bytes | None = SECRET) -> SecondFactor:
    return SecondFactor(
        SecondFactorPolicy(mode, rules=(ScheduleRule.parse(["mon-sun"], "20:00", "07:00"),)),
        clock=rig.clock, wall_clock=lambda: 0.0, clock_synced=lambda: True, keypad=rig.keypad, wiegand=rig.reader,
        secret=secret, verifiers=VERIFIERS.get, person_for_card={ANN_CARD: "ann"}.get,
        person_for_code={"1001": "ann", "1002": "bob"}.get,
        lockout=PinLockout(LockoutConfig(attempts=3, window_s=300, lockout_s=900), rig.clock),
        entry_timeout_s=10, keypad_entry=entry)  # type: ignore[arg-type]


def test_user_code_then_pin_claims_the_person_and_the_pin_confirms(rig: Rig) -> None:
    sf = _factor(rig)
    rig.type("1001#4711#")
    claim = sf.poll()
    assert claim is not None
    assert (claim.kind, claim.person_id, claim.value, claim.key) == ("pin", "ann", "4711", "code:1001")
    assert sf.verify_pin(claim.person_id, claim.value, claim.key) == "ok"
    assert sf.poll() is None


def test_the_duress_pin_is_told_apart(rig: Rig) -> None:
    sf = _factor(rig)
    rig.type("1001#4712#")
    claim = sf.poll()
    assert claim is not None and sf.verify_pin(claim.person_id, claim.value, claim.key) == "duress"


def test_three_wrong_pins_lock_the_identity_out_even_for_the_right_pin(rig: Rig) -> None:
    sf = _factor(rig)
    for wrong in ("0000", "1111", "2222"):
        rig.type(f"1001#{wrong}#")
        claim = sf.poll()
        assert claim is not None and sf.verify_pin(claim.person_id, claim.value, claim.key) == "wrong"
    rig.type("1001#4711#")
    claim = sf.poll()
    assert claim is not None and sf.verify_pin(claim.person_id, claim.value, claim.key) == "locked_out"
    assert sf.verify_pin("bob", "2580") == "ok"  # another identity is unaffected
    rig.clock.advance(900)
    assert sf.verify_pin("ann", ANN_PIN) == "ok"


def test_a_user_code_that_names_nobody_is_wrong_and_throttled_like_any_other(rig: Rig) -> None:
    sf = _factor(rig)
    results = []
    for _ in range(4):
        rig.type("9999#4711#")
        claim = sf.poll()
        assert claim is not None and claim.person_id is None and claim.key == "code:9999"
        results.append(sf.verify_pin(claim.person_id, claim.value, claim.key))
    assert results == ["wrong", "wrong", "wrong", "locked_out"]


def test_a_card_claims_its_person_and_never_carries_a_secret(rig: Rig) -> None:
    sf = _factor(rig)
    rig.swipe(12, 3456)
    last_pulse = rig.clock() - 0.03 - 0.00195  # swipe() waits out the gap after the last pulse
    claim = sf.poll()
    assert claim == Claim("card", "ann", ANN_CARD, claim.at if claim else 0.0, key=f"card:{ANN_CARD}")
    assert claim is not None and claim.at == pytest.approx(last_pulse)
    rig.swipe(99, 1)
    claim = sf.poll()
    assert claim is not None and claim.kind == "card" and claim.person_id is None


def test_a_pin_on_the_readers_keypad_after_a_card_is_that_cards_persons_pin(rig: Rig) -> None:
    sf = _factor(rig)
    rig.swipe(12, 3456)
    assert sf.poll() is not None
    rig.reader_keys("4711#")
    claim = sf.poll()
    assert claim is not None
    assert (claim.kind, claim.person_id, claim.key) == ("pin", "ann", f"card:{ANN_CARD}")
    assert sf.verify_pin(claim.person_id, claim.value, claim.key) == "ok"


def test_a_card_then_the_gpio_keypad_pin_also_pairs(rig: Rig) -> None:
    sf = _factor(rig)
    rig.swipe(12, 3456)
    rig.type("4712#")
    claim = sf.poll()
    assert claim is not None and (claim.kind, claim.person_id) == ("pin", "ann")
    assert sf.verify_pin(claim.person_id, claim.value, claim.key) == "duress"


def test_a_card_waits_for_its_pin_only_for_the_entry_timeout(rig: Rig) -> None:
    sf = _factor(rig)
    rig.swipe(12, 3456)
    assert sf.poll() is not None
    rig.clock.advance(11)
    assert sf.poll() is None
    rig.type("4711#")  # without the card, "4711" is a user code awaiting its PIN
    assert sf.poll() is None
    rig.type("*1002#2580#")  # '*' starts over
    claim = sf.poll()
    assert claim is not None and claim.person_id == "bob"


def test_a_pin_alone_confirms_the_faces_candidate(rig: Rig) -> None:
    sf = _factor(rig, entry="pin")
    rig.type("4711#")
    claim = sf.poll()
    assert claim is not None and (claim.kind, claim.person_id, claim.key) == ("pin", None, None)
    assert sf.verify_pin("ann", claim.value) == "ok"  # "ann": the face's best candidate
    assert sf.verify_pin("bob", claim.value) == "wrong"


def test_half_typed_entries_expire(rig: Rig) -> None:
    sf = _factor(rig)
    rig.type("1001#47")
    rig.clock.advance(10)
    assert sf.poll() is None
    rig.type("11#")
    assert sf.poll() is None  # "11" became a user code awaiting its PIN, nothing claimed


def test_required_follows_the_schedule_and_fails_closed_without_a_synchronised_clock(rig: Rig) -> None:
    from datetime import UTC, datetime

    sf = _factor(rig)
    sf.tz = UTC
    noon, night = (datetime(2026, 12, 7, h, tzinfo=UTC).timestamp() for h in (12, 22))
    assert not sf.required(noon) and sf.required(night)
    sf.clock_synced = lambda: False
    assert sf.required(noon)


def test_a_verifier_from_another_site_secret_denies_and_says_why(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    sf = _factor(rig, secret=bytes(range(1, 33)))
    with caplog.at_level(logging.ERROR, logger="kiosk.factor.second"):
        assert sf.verify_pin("ann", ANN_PIN) == "wrong"
    assert "install the same kiosk-pin-secret" in caplog.text


def test_a_pin_mode_without_the_site_secret_is_a_configuration_error(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="kiosk-pin-secret"):
        _factor(rig, mode=FactorMode.PIN, secret=None)


def test_a_claim_never_shows_its_pin() -> None:
    assert "4711" not in repr(Claim("pin", "ann", "4711", 0.0))


def test_a_pin_finished_after_its_cards_timeout_is_not_taken_as_a_pin_alone(rig: Rig) -> None:
    sf = _factor(rig)
    rig.swipe(12, 3456)
    assert sf.poll() is not None
    rig.type("47")
    rig.clock.advance(9.8)  # the card expires while the PIN is typed, before the kiosk polls again
    rig.type("11#")
    assert sf.poll() is None


def test_built_from_settings_the_devices_read_the_configured_pins(tmp_path: Path) -> None:
    secret = tmp_path / "pin.secret"
    secret.write_bytes(SECRET)
    settings = SecondFactorSettings(mode="pin_or_card", required="always", keypad_rows=ROWS, keypad_cols=COLS,
                                    wiegand_d0=D0, wiegand_d1=D1, pin_secret_file=secret)
    clock = FakeClock()
    factory = ClockedFactory(clock)
    matrix = KeyMatrix(factory, ROWS, COLS, "123456789*0#")
    lines = WiegandLines(factory, D0, D1, clock.advance)
    sf, devices = build_second_factor(settings, clock=clock, wall_clock=lambda: 0.0, clock_synced=lambda: True,
                                      pin_factory=factory, verifiers=VERIFIERS.get,
                                      person_for_card={ANN_CARD: "ann"}.get, person_for_code={"1001": "ann"}.get)
    assert sf.required()
    assert devices.keypad is not None
    lines.send(encode_h10301(12, 3456))
    clock.advance(0.03)
    claim = sf.poll()
    assert claim is not None and (claim.kind, claim.person_id) == ("card", "ann")
    matrix.press("5")
    for _ in range(5):
        devices.keypad.scan_once()
        clock.advance(0.01)
    assert [k for k, _ in devices.keypad.read_keys()] == ["5"]
    devices.close()
    factory.reset()


def test_a_missing_secret_fails_the_build_and_frees_the_pins(tmp_path: Path) -> None:
    settings = SecondFactorSettings(mode="pin", required="always", keypad_rows=ROWS, keypad_cols=COLS,
                                    pin_secret_file=tmp_path / "absent")
    factory = ClockedFactory(FakeClock())
    with pytest.raises(ConfigError, match="cannot read the PIN secret"):
        build_second_factor(settings, pin_factory=factory, verifiers=VERIFIERS.get, person_for_card=lambda c: None,
                            person_for_code=lambda c: None)
    from gpiozero import OutputDevice

    OutputDevice(ROWS[0], pin_factory=factory).close()  # the row pin was released
    factory.reset()
