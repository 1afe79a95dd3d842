"""Keypad and Wiegand entries on mock pins become engine claims; the store's factor lookups come from signed records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import Settings
from kiosk.decision import Claim as EngineClaim
from kiosk.door.keypad import MatrixKeypad, build_keypad
from kiosk.door.wiegand import WiegandCollector, WiegandReader, build_wiegand, encode_h10301
from kiosk.errors import ConfigError
from kiosk.factor import SecondFactor
from kiosk.factor.bridge import SecondFactorBridge, build_bridge, factor_required, one_to_one
from kiosk.factor.lockout import LockoutConfig, PinLockout
from kiosk.factor.pin import KdfParams, make_verifier_pair
from kiosk.factor.policy import FactorMode, SecondFactorPolicy
from kiosk.factor.settings import SecondFactorSettings
from kiosk.factor.wiring import Devices
from kiosk.match import Gallery
from kiosk.store import generate_key, load_key
from tests.clock import FakeClock
from tests.second_factor_pins import ClockedFactory, KeyMatrix, WiegandLines, bits
from tests.site import Kiosk, Site, emb

ROWS, COLS, D0, D1 = [5, 6, 13, 19], [12, 16, 20], 23, 24
SECRET = bytes(range(32))
FAST = KdfParams("argon2id", memory_kib=64, iterations=1)
ANN_PIN, ANN_DURESS, BOB_PIN = "4711", "4712", "2580"
ANN_CARD = "h10301:12:3456"
EIGHT_BIT = {k: f"{~v & 0xF:04b}{v:04b}" for v, k in enumerate("0123456789*#")}
VERIFIERS = {"ann": make_verifier_pair(ANN_PIN, ANN_DURESS, SECRET, FAST),
             "bob": make_verifier_pair(BOB_PIN, "2581", SECRET, FAST)}


@dataclass
class Rig:
    clock: FakeClock
    matrix: KeyMatrix
    lines: WiegandLines
    keypad: MatrixKeypad
    reader: WiegandReader
    claims: list[EngineClaim] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def type(self, keys: str) -> None:
        for key in keys:
            self.matrix.press(key)
            self._scan(5)
            self.matrix.release()
            self._scan(5)

    def _scan(self, n: int) -> None:
        """``n`` steps of the keypad's scanning thread, 10 ms apart."""
        for _ in range(n):
            self.keypad.step()
            self.clock.advance(0.01)

    def keypad_fault(self) -> None:
        """One column read fails (a transient GPIO error), then the backoff passes."""
        self.matrix.fail_reads(1)
        self.keypad.step()
        self.clock.advance(0.05)

    def swipe(self, facility: int, number: int) -> None:
        self.lines.send(encode_h10301(facility, number))
        self.clock.advance(0.03)

    def reader_keys(self, keys: str) -> None:
        for key in keys:
            self.lines.send(bits(EIGHT_BIT[key]))
            self.clock.advance(0.03)

    def bridge(self, mode: FactorMode = FactorMode.PIN_OR_CARD, *, devices: bool = False) -> SecondFactorBridge:
        sf = SecondFactor(SecondFactorPolicy(mode, always=True), clock=self.clock, wall_clock=lambda: 0.0,
                          clock_synced=lambda: True, keypad=self.keypad, wiegand=self.reader,
                          secret=SECRET if mode is not FactorMode.CARD else None, verifiers=VERIFIERS.get,
                          person_for_card={ANN_CARD: "ann"}.get, person_for_code={"1001": "ann", "1002": "bob"}.get,
                          lockout=PinLockout(LockoutConfig(attempts=3, window_s=300, lockout_s=900), self.clock))
        return SecondFactorBridge(sf, self.claims.append, lambda k, f: self.events.append((k, f)), self.clock,
                                  devices=Devices(self.keypad, self.reader) if devices else None)

    def denials(self) -> list[str]:
        return [f["reason"] for k, f in self.events if k == "second_factor_denied"]


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


def test_user_code_and_right_pin_on_the_matrix_keypad_claim_the_person(rig: Rig) -> None:
    bridge = rig.bridge()
    rig.type("1001#4711#")
    got = bridge.run_once()
    assert got == EngineClaim("ann", "pin", rig.clock(), duress=False)
    assert rig.claims == [got]
    assert rig.events == [("second_factor_accepted", {"person": "ann", "kind": "pin", "via": "code"})]
    assert bridge.run_once() is None and rig.claims == [got]  # one entry, one claim


def test_duress_pin_claims_with_the_duress_flag_and_says_nothing_of_it_in_events(rig: Rig) -> None:
    bridge = rig.bridge()
    rig.type("1001#4712#")
    bridge.run_once()
    assert [(c.person, c.kind, c.duress) for c in rig.claims] == [("ann", "pin", True)]
    assert "duress" not in str(rig.events)


def test_wrong_pins_never_claim_and_lock_the_identity_out(rig: Rig) -> None:
    bridge = rig.bridge()
    for wrong in ("0000", "1111", "2222"):
        rig.type(f"1001#{wrong}#")
        assert bridge.run_once() is None
    rig.type("1001#4711#")  # the right PIN, but the identity is locked out now
    assert bridge.run_once() is None
    assert rig.claims == []
    assert rig.denials() == ["wrong_pin", "wrong_pin", "wrong_pin", "pin_locked_out"]
    assert all(f.get("person") == "ann" and ANN_PIN not in str(f) for _, f in rig.events)
    rig.type("1002#2580#")  # another identity is unaffected
    assert bridge.run_once() is not None and rig.claims[-1].person == "bob"


def test_a_code_naming_nobody_is_denied_without_echoing_the_code(rig: Rig) -> None:
    bridge = rig.bridge()
    rig.type("9999#4711#")
    assert bridge.run_once() is None
    assert rig.claims == [] and rig.denials() == ["unknown_code"]
    assert "9999" not in str(rig.events)  # a mistyped PIN in the code field must not land in the audit log


def test_an_enrolled_card_claims_its_person_and_an_unknown_card_is_denied(rig: Rig) -> None:
    bridge = rig.bridge(FactorMode.PIN_OR_CARD)
    rig.swipe(12, 3456)
    assert bridge.run_once() == EngineClaim("ann", "card", rig.clock())
    rig.clock.advance(20)
    rig.swipe(12, 3457)
    assert bridge.run_once() is None
    assert len(rig.claims) == 1 and rig.denials() == ["unknown_card"]
    assert rig.events[-1][1]["card"] == "h10301:12:3457"


def test_in_pin_mode_a_card_only_names_whose_pin_comes_next_on_the_reader_keypad(rig: Rig) -> None:
    bridge = rig.bridge(FactorMode.PIN)
    rig.swipe(12, 3456)
    assert bridge.run_once() is None and rig.claims == []  # a card alone is no second factor here
    rig.reader_keys("4711#")
    got = bridge.run_once()
    assert got is not None and (got.person, got.kind) == ("ann", "pin")
    assert rig.events[-1] == ("second_factor_accepted", {"person": "ann", "kind": "pin", "via": "card"})


def test_in_card_mode_a_typed_pin_is_ignored(rig: Rig) -> None:
    bridge = rig.bridge(FactorMode.CARD)
    rig.type("1001#4711#")
    assert bridge.run_once() is None
    assert rig.claims == [] and rig.events == []


@pytest.mark.parametrize("read_before_the_fault", [True, False])
def test_a_keypad_fault_mid_entry_voids_the_half_typed_pin(rig: Rig, read_before_the_fault: bool) -> None:
    bridge = rig.bridge(devices=True)
    rig.type("1001#47")
    if read_before_the_fault:
        assert bridge.run_once() is None  # "1001#47" is in the entry buffer now
    rig.keypad_fault()
    rig.type("11#")  # the rest of the PIN, typed after the fault: "47" must not be joined to it
    assert bridge.run_once() is None
    assert rig.claims == [] and rig.denials() == [] and bridge.alive()
    rig.type("*1001#4711#")  # typed again from the start: the keypad works
    got = bridge.run_once()
    assert got is not None and (got.person, got.kind) == ("ann", "pin") and rig.claims == [got]


def test_a_card_waiting_for_its_pin_is_forgotten_after_a_keypad_fault(rig: Rig) -> None:
    bridge = rig.bridge(FactorMode.PIN)
    rig.swipe(12, 3456)
    rig.type("47")
    assert bridge.run_once() is None
    rig.keypad_fault()
    rig.type("11#")  # the card is forgotten too: "11" is no PIN for it
    assert bridge.run_once() is None and rig.claims == [] and rig.denials() == []
    rig.swipe(12, 3456)
    rig.type("4711#")
    got = bridge.run_once()
    assert got is not None and (got.person, got.kind) == ("ann", "pin")


def test_a_wiegand_fault_voids_the_pin_being_typed_on_the_readers_keypad(rig: Rig,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = rig.bridge(FactorMode.PIN)
    rig.swipe(12, 3456)
    rig.reader_keys("47")
    assert bridge.run_once() is None
    poll = WiegandCollector.poll
    fails = [1]

    def flaky_poll(self: WiegandCollector, now: float) -> Any:
        if fails[0]:
            fails[0] -= 1
            raise RuntimeError("decoder fault")
        return poll(self, now)

    monkeypatch.setattr(WiegandCollector, "poll", flaky_poll)
    rig.reader.step()
    rig.clock.advance(0.05)
    rig.reader_keys("11#")
    assert bridge.run_once() is None and rig.claims == [] and rig.denials() == []
    rig.swipe(12, 3456)
    rig.reader_keys("4711#")
    got = bridge.run_once()
    assert got is not None and (got.person, got.kind) == ("ann", "pin")


def test_a_keypad_that_keeps_failing_fails_the_health_check_and_says_which_reader(rig: Rig) -> None:
    bridge = rig.bridge(devices=True)
    rig.type("1001#47")
    rig.matrix.fail_reads(-1)
    for _ in range(510):  # 5.1 s of scanning, the bridge polling in between
        rig.keypad.step()
        rig.clock.advance(0.01)
        bridge.run_once()
    assert not bridge.alive()
    failed = [f for k, f in rig.events if k == "second_factor_reader_failed"]
    assert len(failed) == 1 and failed[0]["reader"] == "keypad" and "OSError" in failed[0]["error"]
    assert rig.claims == [] and rig.denials() == []
    rig.matrix.fail_reads(0)
    rig._scan(110)  # the next try, at most a second later, reads again
    bridge.run_once()
    assert bridge.alive() and rig.events[-1] == ("second_factor_reader_restored", {"reader": "keypad"})
    rig.type("11#")
    assert bridge.run_once() is None and rig.claims == []  # "1001#47" did not survive the fault


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_reader_thread_that_ended_fails_the_health_check(rig: Rig) -> None:
    bridge = rig.bridge(devices=True)
    assert bridge.alive()
    rig.reader.poll_interval_s = 0.001

    def broken_clock() -> float:
        raise RuntimeError("clock gone")

    rig.reader.clock = broken_clock  # the next turn of its thread raises before it can guard anything
    rig.reader.start()
    assert rig.reader._thread is not None
    rig.reader._thread.join(10)
    assert not bridge.alive()
    assert bridge.watch_readers() == {"wiegand": "the polling thread has ended"}
    assert rig.events[-1] == ("second_factor_reader_failed", {"reader": "wiegand",
                                                              "error": "the polling thread has ended"})


def test_factor_required_follows_the_schedule_and_fails_closed_on_an_unknown_clock() -> None:
    assert factor_required(SecondFactorSettings()) is None
    always = factor_required(SecondFactorSettings(mode="pin", required="always", keypad_rows=ROWS, keypad_cols=COLS))
    assert always is not None and always(0.0)
    night = SecondFactorSettings(mode="pin", keypad_rows=ROWS, keypad_cols=COLS, timezone="UTC",
                                 schedule=[{"days": ["mon-sun"], "start": "20:00", "end": "07:00"}])  # type: ignore[list-item]
    noon, midnight = 1_800_000_000 - 1_800_000_000 % 86400 + 12 * 3600, 1_800_000_000 - 1_800_000_000 % 86400
    wall = FakeClock(noon)
    synced = [True]
    required = factor_required(night, wall_clock=wall, clock_synced=lambda: synced[0], recheck_s=1.0)
    assert required is not None and required(10.0) is False
    wall.now = midnight
    assert required(10.5) is False  # cached within recheck_s of the engine's clock
    assert required(11.0) is True
    wall.now = noon
    synced[0] = False
    assert required(12.0) is True  # noon, but the clock is not known to be right


def test_one_to_one_scores_only_the_claimed_persons_template() -> None:
    rows = emb(1, 2)
    gallery = Gallery(rows, ["ann", "bob"])
    verify = one_to_one(lambda: gallery)
    assert verify(rows[0], "ann") == pytest.approx(1.0, abs=1e-5)
    assert verify(rows[0], "bob") == pytest.approx(float(rows[0] @ rows[1]), abs=1e-5)
    assert verify(rows[0], "carol") == -1.0


# -- the store's lookups, from signed records --------------------------------------------------------------------

@pytest.fixture()
def kiosk(tmp_path: Path) -> Kiosk:
    generate_key(tmp_path / "store.key")
    site = Site()
    k = Kiosk(site, tmp_path / "kiosk.db", load_key(tmp_path / "store.key"))
    k.trust.on_key_list(site.key_list(k.now_ms() - 10_000))
    return k


def test_store_lookups_come_from_the_signed_record_and_go_with_it(kiosk: Kiosk) -> None:
    site, now = kiosk.site, kiosk.now_ms()
    pin, duress = VERIFIERS["ann"]
    kiosk.receive(site.enrollment("ann", now, seed=1, pin_verifier=pin, duress_verifier=duress, user_code="1001",
                                  cards=(ANN_CARD, "w34:300:7")))
    kiosk.receive(site.enrollment("bob", now, seed=2))
    store = kiosk.store
    assert store.pin_verifiers("ann") == (pin, duress) and store.pin_verifiers("bob") is None
    assert store.person_for_code("1001") == "ann" and store.person_for_code("1002") is None
    assert store.person_for_card("w34:300:7") == "ann" and store.person_for_card("h10301:1:1") is None
    kiosk.receive(site.enrollment("ann", now + 1, seed=1, user_code="1001"))  # re-published without cards or PIN
    assert store.person_for_card(ANN_CARD) is None and store.pin_verifiers("ann") is None
    kiosk.receive(site.tombstone("ann", now + 2))
    assert store.person_for_code("1001") is None


def test_a_card_enrolled_to_two_people_names_nobody(kiosk: Kiosk) -> None:
    site, now = kiosk.site, kiosk.now_ms()
    kiosk.receive(site.enrollment("ann", now, seed=1, cards=(ANN_CARD,)))
    kiosk.receive(site.enrollment("bob", now, seed=2, cards=(ANN_CARD,)))
    assert kiosk.store.person_for_card(ANN_CARD) is None
    kiosk.receive(site.enrollment("bob", now + 1, seed=2))
    assert kiosk.store.person_for_card(ANN_CARD) == "ann"


def test_editing_the_clear_columns_cannot_give_anyone_a_card(kiosk: Kiosk, tmp_path: Path) -> None:
    import sqlite3

    site, now = kiosk.site, kiosk.now_ms()
    kiosk.receive(site.enrollment("ann", now, seed=1, cards=(ANN_CARD,)))
    db = sqlite3.connect(tmp_path / "kiosk.db")
    db.execute("UPDATE people SET name = 'Mallory' WHERE id = 'ann'")
    db.commit()
    db.close()
    kiosk.store.gallery()
    kiosk.wall.advance(5)  # the store polls for other writers once per second
    assert kiosk.store.person_for_card(ANN_CARD) is None  # quarantined: the edited row is never used
    assert "ann" in kiosk.store.quarantined


# -- build_bridge --------------------------------------------------------------------------------------------------

def test_build_bridge_is_none_when_off_and_refuses_a_pin_alone(tmp_path: Path) -> None:
    assert build_bridge(Settings(), _Engine(), _NoStore(), lambda k, f: None, None) is None
    secret = tmp_path / "pin.secret"
    secret.write_bytes(SECRET)
    alone = SecondFactorSettings(mode="pin", required="always", keypad_rows=ROWS, keypad_cols=COLS,
                                 keypad_entry="pin", pin_secret_file=secret)
    with pytest.raises(ConfigError, match="code_pin"):
        build_bridge(Settings(second_factor=alone), _Engine(), _NoStore(), lambda k, f: None, None)


def test_build_bridge_wires_the_store_and_the_engine_and_frees_the_pins_on_close(tmp_path: Path) -> None:
    clock = FakeClock()
    factory = ClockedFactory(clock)
    secret = tmp_path / "pin.secret"
    secret.write_bytes(SECRET)
    settings = Settings(second_factor=SecondFactorSettings(
        mode="pin_or_card", required="always", keypad_rows=ROWS, keypad_cols=COLS, wiegand_d0=D0, wiegand_d1=D1,
        pin_secret_file=secret))
    engine = _Engine()
    store = _NoStore(cards={ANN_CARD: "ann"})
    bridge = build_bridge(settings, engine, store, lambda k, f: None, factory, clock)
    assert bridge is not None
    lines = WiegandLines(factory, D0, D1, clock.advance)
    lines.send(encode_h10301(12, 3456))
    clock.advance(0.03)
    assert bridge.run_once() == EngineClaim("ann", "card", clock())
    assert engine.claims == [EngineClaim("ann", "card", clock())]
    devices = bridge.devices
    assert devices is not None and devices.keypad is not None and devices.reader is not None
    bridge.start()
    assert bridge.alive()
    bridge.close()
    assert devices.reader.d0.closed and devices.reader.d1.closed
    lines_: list[Any] = [*devices.keypad.rows, *devices.keypad.cols]
    assert all(d.closed for d in lines_)
    factory.reset()


class _Engine:
    def __init__(self) -> None:
        self.claims: list[EngineClaim] = []

    def claim(self, claim: EngineClaim) -> None:
        self.claims.append(claim)


@dataclass
class _NoStore:
    cards: dict[str, str] = field(default_factory=dict)

    def pin_verifiers(self, person_id: str) -> tuple[str, str | None] | None:
        return VERIFIERS.get(person_id)

    def person_for_card(self, card: str) -> str | None:
        return self.cards.get(card)

    def person_for_code(self, code: str) -> str | None:
        return None

