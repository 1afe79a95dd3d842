"""The loop with liveness on faked faces: a scripted scene (boxes, embeddings, synthetic landmarks from
``tests/liveness_synth.py``), gpiozero's relay on MockFactory pins, simulated time."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from gpiozero.pins.mock import MockFactory

from kiosk.camera.replay import SimClock
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.vision.boxes import Face
from kiosk.vision.quality import QualityConfig
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


OPEN: list[Rig] = []  # closed after each test (tests/conftest.py): their loops' FaceMesh workers end


def close_rigs() -> None:
    """Close every open rig's loop; the first error, if any, is raised once all are closed."""
    errors: list[BaseException] = []
    while OPEN:
        try:
            OPEN.pop().loop.close()
        except BaseException as exc:  # the others still close
            errors.append(exc)
    if errors:
        raise errors[0]


class Rig:
    """The loop with liveness on (challenge mode), a real relay on mock pins, simulated time. It drives
    ``KioskLoop.process`` without ``run``, so its loop is closed after the test."""

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
        OPEN.append(self)
        self.frame = SimpleNamespace(rgb=np.zeros((480, 640, 3), np.uint8))

    def step(self, items: list[Shown]) -> FrameResult:
        self.scene.items = items
        result = self.loop.process(self.frame)  # type: ignore[arg-type]
        self.door.tick()
        self.clock.now += DT
        return result

    def granted(self) -> int:
        return self.events.counts.get("access_granted", 0)
