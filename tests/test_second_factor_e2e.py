"""The second factor end to end: keypad and Wiegand on mock pins, signed records in a real store, the real loop.

Frames of a replayed walk-up go through the real pipeline; the door's relay is
a MockFactory pin whose history is asserted. Keys are typed while the person
approaches (from the loop's per-frame callback, as the bridge's thread would
see them), on the readers' own clock; the engine runs on the replay's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.demo.run import enroll
from kiosk.demo.sequences import background, head_and_shoulders, walk_up
from kiosk.door import DoorTiming, build_door
from kiosk.door.wiegand import encode_h10301
from kiosk.events import EventSink
from kiosk.factor.bridge import SecondFactorBridge, factor_required, one_to_one
from kiosk.factor.pin import KdfParams, make_verifier_pair
from kiosk.factor.settings import SecondFactorSettings
from kiosk.factor.wiring import build_second_factor
from kiosk.imageio import read_rgb
from kiosk.loop import FrameResult, KioskLoop
from kiosk.records import Enrollment
from kiosk.store import generate_key, load_key
from kiosk.vision.boxes import primary_face
from kiosk.vision.quality import QualityConfig
from tests.clock import FakeClock
from tests.pins import assert_pin_history
from tests.second_factor_pins import ClockedFactory, KeyMatrix, WiegandLines
from tests.site import FP, SITE, Kiosk, Site

pytestmark = pytest.mark.models
RELAY = 17
FPS = 10.0
ROWS, COLS, D0, D1 = [5, 6, 13, 19], [12, 16, 20], 23, 24
SECRET = bytes(range(32))
FAST = KdfParams("argon2id", memory_kib=64, iterations=1)
BEN_CODE, BEN_PIN, BEN_DURESS, BEN_CARD = "1001", "4711", "4712", (12, 3456)
JERRY_CODE, JERRY_PIN = "1002", "2580"
TYPE_AT = 3  # frame after which the keys are typed: the person is still walking up


@pytest.fixture(scope="module")
def celeb(models: Path, data: Path) -> Path:
    from kiosk.artifacts import dataset_path

    return dataset_path("5-celebrity")


@pytest.fixture(scope="module")
def templates(pipeline: Any, celeb: Path) -> dict[str, np.ndarray]:
    return {"ben": enroll(pipeline[0], celeb, "ben_afflek"), "jerry": enroll(pipeline[0], celeb, "jerry_seinfeld")}


@pytest.fixture(scope="module")
def walk(pipeline: Any, celeb: Path) -> list[np.ndarray]:
    photo = sorted((celeb / "val" / "ben_afflek").glob("*.jpg"))[0]
    rgb = read_rgb(photo)
    face = primary_face(pipeline[0].detect(rgb))
    assert face is not None
    rng = np.random.default_rng(3)
    bg = background(640, 480, rng)
    return walk_up(head_and_shoulders(rgb, face), bg, 25, rng) + [bg] * 30


@pytest.fixture(scope="module")
def empty(walk: list[np.ndarray]) -> list[np.ndarray]:
    return [walk[-1]] * 40


class Rig:
    """Store (signed records), door, engine, bridge and loop as the service wires them; mock pins, simulated time."""

    def __init__(self, pipeline: Any, templates: dict[str, np.ndarray], frames: list[np.ndarray], tmp: Path,
                 mode: str = "pin_or_card") -> None:
        self.keys_clock = FakeClock()
        self.factory = ClockedFactory(self.keys_clock)
        self.clock = SimClock()
        self.events = EventSink(tmp / "audit.jsonl")
        self.audit: list[tuple[str, dict[str, Any]]] = []
        self.events.publishers.append(lambda e: self.audit.append((e["type"], e)))
        generate_key(tmp / "store.key")
        site = Site()
        self.kiosk = Kiosk(site, tmp / "kiosk.db", load_key(tmp / "store.key"))
        self.kiosk.trust.on_key_list(site.key_list(self.kiosk.now_ms() - 10_000))
        ben = make_verifier_pair(BEN_PIN, BEN_DURESS, SECRET, FAST)
        jerry = make_verifier_pair(JERRY_PIN, "2581", SECRET, FAST)
        rev = self.kiosk.now_ms()
        for pid, rows, (pin, duress), code, cards in (("ben", templates["ben"], ben, BEN_CODE, ("h10301:12:3456",)),
                                                       ("jerry", templates["jerry"], jerry, JERRY_CODE, ())):
            e = Enrollment(pid, pid.title(), rev, FP, rows, pin_verifier=pin, duress_verifier=duress, user_code=code,
                           cards=cards)
            assert self.kiosk.receive(site.admin.enrollment(SITE, e), pid).applied  # type: ignore[attr-defined]
        store = self.kiosk.store
        secret = tmp / "pin.secret"
        secret.write_bytes(SECRET)
        settings = SecondFactorSettings(mode=mode, required="always", keypad_rows=ROWS, keypad_cols=COLS,  # type: ignore[arg-type]
                                        wiegand_d0=D0, wiegand_d1=D1, pin_secret_file=secret)
        self.door = build_door(RELAY, active_high=True, timing=DoorTiming(unlock_s=3.0), clock=self.clock,
                               emit=self.events, pin_factory=self.factory)
        self.engine = DecisionEngine(DecisionConfig(frames_to_grant=3, window_s=1.0, liveness=False), self.clock,
                                     is_valid=store.is_valid, second_factor=factor_required(settings),
                                     verify=one_to_one(store.gallery))
        # the keypad's wires first: a pressed key connects its row pin to its column pin
        self.matrix = KeyMatrix(self.factory, ROWS, COLS, "123456789*0#")
        self.lines = WiegandLines(self.factory, D0, D1, self.keys_clock.advance)
        factor, devices = build_second_factor(settings, clock=self.keys_clock, wall_clock=lambda: 0.0,
                                              clock_synced=lambda: True, pin_factory=self.factory,
                                              verifiers=store.pin_verifiers, person_for_card=store.person_for_card,
                                              person_for_code=store.person_for_code)
        self.keypad = devices.keypad
        self.bridge = SecondFactorBridge(factor, self.engine.claim, self.events, self.clock, devices=devices)
        self.source = ReplaySource(frames, fps=FPS, clock=self.clock)
        self.capture = Capture(self.source, self.events, lockstep=True, backoff_s=(0.001, 0.002))
        self.results: list[FrameResult] = []
        self.actions: dict[int, Any] = {}
        self.loop = KioskLoop(self.capture, pipeline[0], store.gallery, pipeline[1].threshold, self.engine, self.door,
                              self.events, QualityConfig(min_face_px=60.0), on_result=self._on_result)

    def _on_result(self, result: FrameResult) -> None:
        self.results.append(result)
        action = self.actions.pop(result.frame.index, None)
        if action is not None:
            action()
        self.bridge.run_once()  # what the bridge's thread does every poll interval

    def type(self, keys: str) -> None:
        """Each key held 50 ms, released 50 ms, the keypad's scanning step every 10 ms (readers' clock).

        ``!`` is no key: one column read fails there (a transient GPIO error) and its backoff passes.
        """
        assert self.keypad is not None
        for key in keys:
            if key == "!":
                self.matrix.fail_reads(1)
                self.keypad.step()
                self.keys_clock.advance(0.05)
                continue
            for down in (True, False):
                self.matrix.press(key) if down else self.matrix.release()
                for _ in range(5):
                    self.keypad.step()
                    self.keys_clock.advance(0.01)

    def swipe(self, facility: int, number: int) -> None:
        self.lines.send(encode_h10301(facility, number))
        self.keys_clock.advance(0.03)

    def run(self, at: int = TYPE_AT, **action: str | tuple[int, int]) -> None:
        if "keys" in action:
            self.actions[at] = lambda: self.type(str(action["keys"]))
        if "card" in action:
            card = action["card"]
            assert isinstance(card, tuple)
            self.actions[at] = lambda: self.swipe(*card)
        self.capture.start()
        try:
            self.loop.run(threading.Event(), until_end=True)
        finally:
            self.capture.stop()
            self.bridge.close()
            self.door.close()
            self.events.close()

    def relay(self) -> list[bool]:
        return [bool(s.state) for s in self.factory.pin(RELAY).states]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for k, e in self.audit if k == kind]

    def decisions(self) -> list[str]:
        return [r.decision.reason for r in self.results if r.decision is not None]


@pytest.fixture()
def rigs(pipeline: Any, templates: dict[str, np.ndarray], tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(frames: list[np.ndarray], mode: str = "pin_or_card") -> Rig:
        rig = Rig(pipeline, templates, frames, tmp_path / f"rig{len(made)}", mode)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.factory.reset()


def test_user_code_and_pin_open_the_door_for_the_face_compared_one_to_one(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run(keys=f"{BEN_CODE}#{BEN_PIN}#")
    granted = rig.kinds("access_granted")
    assert len(granted) == 1 and granted[0]["person"] == "ben" and granted[0]["claim"] == "pin"
    assert rig.kinds("duress") == []
    assert [(e["person"], e["kind"], e["via"]) for e in rig.kinds("second_factor_accepted")] == [("ben", "pin", "code")]
    assert rig.relay() == [False, True, False]
    assert_pin_history(rig.factory.pin(RELAY), [False, True, False])


def test_without_a_second_factor_the_recognised_face_waits_and_the_relay_stays_off(
        rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run()
    assert any(m is not None and m.person == "ben" for r in rig.results for m in r.matches)  # recognised
    assert rig.kinds("access_granted") == [] and rig.decisions() == []
    assert not any(rig.relay())


def test_the_duress_pin_opens_the_door_and_raises_a_silent_alarm(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run(keys=f"{BEN_CODE}#{BEN_DURESS}#")
    assert [e["person"] for e in rig.kinds("access_granted")] == ["ben"]
    assert [e["person"] for e in rig.kinds("duress")] == ["ben"]
    assert "duress" not in str(rig.kinds("second_factor_accepted"))  # nothing different until the door opens
    assert_pin_history(rig.factory.pin(RELAY), [False, True, False])


def test_a_wrong_pin_never_energises_the_relay(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run(keys=f"{BEN_CODE}#0000#")
    assert [e["reason"] for e in rig.kinds("second_factor_denied")] == ["wrong_pin"]
    assert rig.kinds("access_granted") == []
    assert not any(rig.relay())


def test_a_keypad_read_error_mid_pin_never_energises_the_relay(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run(keys=f"{BEN_CODE}#{BEN_PIN[:2]}!{BEN_PIN[2:]}#")  # the first half of the PIN is void after the fault
    assert rig.kinds("second_factor_accepted") == [] and rig.kinds("second_factor_denied") == []
    assert rig.kinds("access_granted") == [] and rig.kinds("second_factor_reader_failed") == []
    assert not any(rig.relay())
    assert rig.bridge.alive()  # one read error is survived: the keypad scans on


def test_a_card_alone_never_grants(rigs: Any, empty: list[np.ndarray]) -> None:
    rig = rigs(empty)
    rig.run(card=BEN_CARD)
    assert [e["person"] for e in rig.kinds("second_factor_accepted")] == ["ben"]  # the card was read and claimed
    assert rig.kinds("access_granted") == []
    assert not any(rig.relay())


def test_face_and_card_open_the_door_in_card_mode(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk, mode="card")
    rig.run(card=BEN_CARD)
    assert [(e["person"], e["claim"]) for e in rig.kinds("access_granted")] == [("ben", "card")]
    assert_pin_history(rig.factory.pin(RELAY), [False, True, False])


def test_in_pin_mode_face_and_card_without_the_pin_stay_locked(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk, mode="pin")
    rig.run(card=BEN_CARD)
    assert rig.kinds("access_granted") == []
    assert not any(rig.relay())


def test_a_claim_for_another_person_denies_second_factor_mismatch(rigs: Any, walk: list[np.ndarray]) -> None:
    rig = rigs(walk)
    rig.run(keys=f"{JERRY_CODE}#{JERRY_PIN}#")  # Jerry's code and right PIN; Ben's face at the camera
    assert [e["person"] for e in rig.kinds("second_factor_accepted")] == ["jerry"]
    denied = rig.kinds("access_denied")
    assert [(e["reason"], e["person"]) for e in denied] == [("second_factor_mismatch", "jerry")]
    assert rig.kinds("access_granted") == []
    assert not any(rig.relay())
