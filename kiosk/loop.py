"""The processing loop: frame -> faces -> quality gates -> embeddings -> match -> decision -> door + events."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.camera.base import Frame
from kiosk.camera.capture import Capture
from kiosk.decision import Decision, DecisionEngine, FaceMatch
from kiosk.door import Door
from kiosk.events import EventSink
from kiosk.match import Gallery
from kiosk.sdnotify import Notifier
from kiosk.vision.boxes import Face
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import QualityConfig, check_geometry, check_sharpness

logger = logging.getLogger(__name__)


@dataclass
class FrameResult:
    frame: Frame
    faces: list[Face]
    gates: list[str | None]  # None: passed, else the gate it failed
    matches: list[FaceMatch | None]  # per face; None when it failed a gate
    decision: Decision | None
    latency_ms: float
    door_unlocked: bool


@dataclass
class LoopStats:
    frames_processed: int = 0
    granted: int = 0
    denied: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    gate_failures: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        mean = self.latency_ms_sum / self.frames_processed if self.frames_processed else 0.0
        return {"frames_processed": self.frames_processed, "granted": self.granted, "denied": self.denied,
                "errors": self.errors, "mean_frame_ms": round(mean, 2), "gate_failures": dict(self.gate_failures)}


class KioskLoop:
    def __init__(self, capture: Capture, pipeline: FacePipeline, gallery: Callable[[], Gallery], threshold: float,
                 engine: DecisionEngine, door: Door, events: EventSink, quality: QualityConfig,
                 notifier: Notifier | None = None, watchdog_s: float | None = None,
                 on_result: Callable[[FrameResult], None] | None = None) -> None:
        self.capture = capture
        self.pipeline = pipeline
        self.gallery = gallery
        self.threshold = threshold
        self.engine = engine
        self.door = door
        self.events = events
        self.quality = quality
        self.notifier = notifier or Notifier("")
        self.watchdog_s = watchdog_s
        self.on_result = on_result
        self.stats = LoopStats()
        self._last_watchdog = -math.inf
        capture.on_lost = lambda: door.lock("camera_lost")  # fail secure at once, from the capture thread

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        rgb = frame.rgb
        faces = self.pipeline.detect(rgb)
        # crop only faces whose geometry passes: far-away or turned faces cost no crop
        gates: list[str | None] = []
        good: dict[int, npt.NDArray[np.uint8]] = {}
        for i, face in enumerate(faces):
            gate = check_geometry(face, rgb.shape, self.quality)
            if gate is None:
                crop = self.pipeline.crops(rgb, [face])[0]
                gate = check_sharpness(crop, self.quality)
                if gate is None:
                    good[i] = crop
            gates.append(gate)
        passing = list(good)
        matches: list[FaceMatch | None] = [None] * len(faces)
        if passing:
            embeddings = self.pipeline.embedder.embed([good[i] for i in passing])
            gallery = self.gallery()
            for i, emb in zip(passing, embeddings):
                m = gallery.match(emb, self.threshold)
                matches[i] = FaceMatch(m.label, m.score, faces[i].area)
        for g in gates:
            if g is not None:
                self.stats.gate_failures[g] = self.stats.gate_failures.get(g, 0) + 1
        observed = [m for m in matches if m is not None]
        decision = self.engine.observe(observed, extra_faces=len(faces) - len(observed)) if observed else \
            self.engine.observe([])
        latency_ms = (time.perf_counter() - t0) * 1000.0
        if decision is not None:
            self._act(decision, latency_ms)
        self.stats.frames_processed += 1
        self.stats.latency_ms_sum += latency_ms
        return FrameResult(frame, faces, gates, matches, decision, latency_ms, self.door.unlocked)

    def _act(self, d: Decision, latency_ms: float) -> None:
        fields = {"person": d.person or "unknown", "score": round(d.score, 4), "threshold": self.threshold,
                  "latency_ms": round(latency_ms, 2), "reason": d.reason}
        if d.granted:
            self.stats.granted += 1
            self.door.unlock("granted", d.person)
            self.events.emit("access_granted", fields)
            logger.info("access granted to %s (score %.3f)", d.person, d.score)
        else:
            self.stats.denied += 1
            self.events.emit("access_denied", fields)
            logger.info("access denied: %s (score %.3f)", d.reason, d.score)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self.watchdog_s is not None and now - self._last_watchdog >= self.watchdog_s:
            self.notifier.watchdog()
            self._last_watchdog = now

    def run(self, stop: threading.Event, until_end: bool = False) -> None:
        """Process frames until ``stop`` is set (or the source ends, with ``until_end``).

        Any exception locks the door before it propagates.
        """
        was_healthy = True
        try:
            while not stop.is_set():
                self._heartbeat()
                self.door.tick()
                frame = self.capture.get(timeout=0.1)
                if frame is None:
                    if until_end and self.capture.finished:
                        break
                    healthy = self.capture.healthy.is_set()
                    if not healthy and was_healthy:
                        self.door.lock("camera_lost")
                        self.notifier.status("camera lost; door locked")
                    was_healthy = healthy
                    continue
                was_healthy = True
                result = self.process(frame)
                self.door.tick()
                if self.on_result is not None:
                    self.on_result(result)
        except BaseException as exc:
            self.stats.errors += 1
            self.door.lock("error")
            if not isinstance(exc, KeyboardInterrupt):
                self.events.emit("error", {"error": f"{type(exc).__name__}: {exc}"})
            raise
