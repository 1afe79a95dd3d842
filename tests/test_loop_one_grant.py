"""One live verdict opens the door once.

The enrolled person earns LIVE and is let in; as they walk off, a print of the same person is raised
where they stood. The tracker follows boxes and the continuity check asks only whether it is the same
person, so the print keeps their track. It must not keep their verdict: neither after
``regrant_after_s`` nor after a second face, which used to wipe the decision's record of the grant.
Faces, embeddings and landmarks are faked (synthetic heads, ``tests/liveness_synth.py``); the relay is
gpiozero's, on MockFactory pins; time is simulated.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.camera.replay import SimClock
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from kiosk.liveness.judge import SPENT, LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.vision.boxes import Face
from kiosk.vision.quality import QualityConfig
from tests import liveness_synth as synth
from tests.liveness_judging import RecordingPrompter

DT = 1 / 15
RELAY = 17
E = np.eye(8, dtype=np.float32)
VICTIM, OTHER = E[0], E[1]
PRINT_OF_VICTIM = (0.7 * E[0] + np.sqrt(1 - 0.49) * E[2]).astype(np.float32)  # the same person, another photo
KP = np.array([[280, 190], [360, 190], [320, 230], [320, 270], [240, 200], [400, 200]], np.float64)
MAIN = Face((220.0, 120.0, 420.0, 320.0), 0.99, KP)
SIDE = Face((480.0, 150.0, 620.0, 290.0), 0.99, KP + np.array([260.0, 0.0]))
Shown = tuple[Face, "np.ndarray | None", np.ndarray]


class Scene:
    """Detector, cropper, embedder and FaceMesh of a scripted scene: each face with its landmarks and
    embedding."""

    def __init__(self) -> None:
        self.items: list[Shown] = []
        self._crop = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
        self._emb: dict[int, np.ndarray] = {}
        self.embedder = SimpleNamespace(embed=lambda crops: [self._emb[id(c)] for c in crops])

    def detect(self, rgb: np.ndarray) -> list[Face]:
        return [f for f, _, _ in self.items]

    def crops(self, rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        out = []
        for f in faces:
            c = self._crop.copy()
            self._emb[id(c)] = next(e for g, _, e in self.items if g is f)
            out.append(c)
        return out

    def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray | None:
        return next(m for f, m, _ in self.items if f is face)


@pytest.fixture()
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


class Door:
    """The loop with liveness on (challenge mode), a real relay on mock pins, simulated time."""

    def __init__(self, factory: MockFactory, tmp: Path) -> None:
        self.clock = SimClock()
        self.events = EventSink(tmp / "audit.jsonl")
        self.door = build_door(RELAY, active_high=True, timing=DoorTiming(unlock_s=3.0), clock=self.clock,
                               emit=self.events, pin_factory=factory)
        self.scene, self.prompter = Scene(), RecordingPrompter()
        self.judge = LivenessJudge(LivenessSettings(planar_band_max=0.0), self.clock, self.prompter,
                                   random.Random(0))  # synthetic landmarks have no pixels: no eye band
        self.engine = DecisionEngine(DecisionConfig(), self.clock)
        gallery = Gallery(np.stack([VICTIM, OTHER]), ["victim", "other"])
        self.loop = KioskLoop(SimpleNamespace(on_lost=None), self.scene, lambda: gallery, 0.5,  # type: ignore[arg-type]
                              self.engine, self.door, self.events, QualityConfig(min_sharpness=0.0),
                              liveness=(self.scene, self.judge))
        self.frame = SimpleNamespace(rgb=np.zeros((480, 640, 3), np.uint8))

    def step(self, items: list[Shown]) -> FrameResult:
        self.scene.items = items
        result = self.loop.process(self.frame)  # type: ignore[arg-type]
        self.door.tick()
        self.clock.now += DT
        return result

    def granted(self) -> int:
        return self.events.counts.get("access_granted", 0)


def _victim_is_let_in(d: Door) -> int:
    """A real head turning clearly: passive parallax, LIVE, granted. Returns its track."""
    head, rng = synth.model(False), np.random.default_rng(1)
    for k in range(150):
        r = d.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
        if d.granted():
            return r.tracks[0]
    raise AssertionError("the live victim was not let in")


def _print_raised(d: Door) -> Any:
    flat, rng = synth.model(True), np.random.default_rng(2)
    return lambda: (MAIN, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM)


def test_a_print_raised_where_the_person_stood_does_not_inherit_their_grant(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Door(factory, tmp_path)
    track = _victim_is_let_in(d)
    asked = len(d.prompter.shown)
    for _ in range(5):  # the victim walks through: a third of a second without a face
        d.step([])
    shown = _print_raised(d)
    for _ in range(int(6 / DT)):  # past the 5 s cooldown and the relock
        r = d.step([shown()])
    assert r.tracks[0] == track  # the same track: the tracker and the continuity check let it through
    assert r.liveness[0].reason == SPENT
    d.step([shown(), (SIDE, None, OTHER)])  # one frame with a second face, which used to wipe the grant
    for _ in range(int(6 / DT)):
        d.step([shown()])
    assert d.granted() == 1
    assert d.prompter.shown[asked:] == []  # nothing is asked of a track whose verdict a grant has just used
    factory.pin(RELAY).assert_states([False, True, False])  # opened once, for the victim
    d.events.close()


def test_after_regrant_after_s_the_same_track_must_show_a_live_face_again(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Door(factory, tmp_path)
    _victim_is_let_in(d)
    asked = len(d.prompter.shown)
    for _ in range(5):
        d.step([])
    shown = _print_raised(d)
    rest = d.engine.config.regrant_after_s
    for _ in range(int((rest + 10) / DT)):
        d.step([shown()])
    assert d.granted() == 1
    assert d.events.counts.get("presentation_attack", 0) >= 1  # judged afresh: the print was prompted and denied
    assert {"left", "right"} & set(d.prompter.shown[asked:])
    factory.pin(RELAY).assert_states([False, True, False])
    d.events.close()


def test_a_person_still_in_view_after_regrant_after_s_is_let_in_again_on_a_new_live_verdict(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Door(factory, tmp_path)
    _victim_is_let_in(d)
    head, rng = synth.model(False), np.random.default_rng(3)
    rest = d.engine.config.regrant_after_s
    for k in range(int((rest + 10) / DT)):  # stays and keeps turning: a new approach once the rest is over
        d.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
    assert d.granted() == 2
    factory.pin(RELAY).assert_states([False, True, False, True, False])
    d.events.close()
