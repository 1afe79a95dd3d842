"""Wiring for ``kiosk demo``: enroll two people, replay four walk-ups through the real loop."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.annotate import draw_frame, write_rgb
from kiosk.artifacts import dataset_path
from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.demo.sequences import Sequence, background, head_and_shoulders, walk_up
from kiosk.door import DoorTiming, build_door
from kiosk.errors import NoFaceError
from kiosk.events import EventSink
from kiosk.imageio import read_rgb
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.vision.boxes import primary_face
from kiosk.vision.pipeline import FacePipeline, build_pipeline
from kiosk.vision.quality import QualityConfig

logger = logging.getLogger(__name__)

ENROLLED = ("ben_afflek", "madonna")
VISITORS = ("ben_afflek", "jerry_seinfeld", "madonna", "mindy_kaling")
FPS = 15.0
WALK_FRAMES = 30
GAP_FRAMES = 75  # five seconds of empty hallway: the door relocks in between
RELAY_PIN = 17


def enroll(pipeline: FacePipeline, root: Path, person: str, n: int = 3) -> npt.NDArray[np.float32]:
    photos = sorted((root / "train" / person).glob("*.jpg"))
    embs = []
    for p in photos:
        try:
            embs.append(pipeline.largest(read_rgb(p), str(p))[1])
        except NoFaceError:
            continue
        if len(embs) == n:
            break
    return np.stack(embs)


def build_sequences(pipeline: FacePipeline, root: Path, rng: np.random.Generator,
                    size: tuple[int, int] = (640, 480)) -> list[Sequence]:
    seqs = []
    first = 0
    for person in VISITORS:
        photo = sorted((root / "val" / person).glob("*.jpg"))[0]  # never an enrollment photo
        rgb = read_rgb(photo)
        face = primary_face(pipeline.detect(rgb))
        if face is None:
            raise NoFaceError(f"{photo}: no face for the demo sequence")
        bg = background(size[0], size[1], rng)
        frames = walk_up(head_and_shoulders(rgb, face), bg, WALK_FRAMES, rng)
        frames += [np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8) for _ in range(GAP_FRAMES)]
        seqs.append(Sequence(person, person in ENROLLED, frames, first))
        first += len(frames)
    return seqs


@dataclass
class Recorder:
    """Collects annotated frames and the decisions for the video and summary."""

    names: dict[str, str]
    sequences: list[Sequence]
    video: Any = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    keyframes: list[npt.NDArray[np.uint8]] = field(default_factory=list)

    def sequence_of(self, index: int) -> Sequence:
        return [s for s in self.sequences if s.first <= index][-1]

    def __call__(self, r: FrameResult) -> None:
        seq = self.sequence_of(r.frame.index)
        labels = []
        for gate, match in zip(r.gates, r.matches):
            if match is None:
                labels.append((f"{gate}", (160, 160, 160)))
            elif match.person is None:
                labels.append((f"unknown {match.score:.2f}", (255, 60, 60)))
            else:
                labels.append((f"{self.names.get(match.person, match.person)} {match.score:.2f}", (60, 220, 60)))
        door = "UNLOCKED" if r.door_unlocked else "LOCKED"
        banner = f"t={r.frame.t:5.1f}s  walk-up: {seq.label}  door: {door}"
        img = draw_frame(r.frame.rgb, r.faces, labels, banner, (60, 220, 60) if r.door_unlocked else (255, 80, 80))
        if r.decision is not None:
            d = r.decision
            self.decisions.append({"t": round(r.frame.t, 2), "walk_up": seq.label, "enrolled": seq.enrolled,
                                   "granted": d.granted, "person": d.person, "reason": d.reason,
                                   "score": round(d.score, 4), "latency_ms": round(r.latency_ms, 2)})
            self.keyframes.append(img)
            verdict = f"GRANTED {d.person}" if d.granted else f"DENIED ({d.reason})"
            print(f"t={r.frame.t:6.2f}s  {seq.label:<15} -> {verdict:<28} score {d.score:.3f}  "
                  f"frame-to-decision {r.latency_ms:.1f} ms")
        if self.video is not None:
            self.video.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def contact_sheet(images: list[npt.NDArray[np.uint8]], cols: int = 2, width: int = 480) -> npt.NDArray[np.uint8]:
    tiles = [cv2.resize(i, (width, int(i.shape[0] * width / i.shape[1])), interpolation=cv2.INTER_AREA) for i in images]
    h = max(t.shape[0] for t in tiles)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r:r + cols], axis=1) for r in range(0, len(tiles), cols)]
    return np.concatenate([np.pad(r, ((0, h - r.shape[0]), (0, 0), (0, 0))) for r in rows], axis=0)


def run_demo(out: Path, video: bool = True, seed: int = 7) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory

    out.mkdir(parents=True, exist_ok=True)
    root = dataset_path("5-celebrity")
    t_load = time.perf_counter()
    pipeline, card = build_pipeline()
    load_s = time.perf_counter() - t_load
    gallery_rows, labels = [], []
    for person in ENROLLED:
        embs = enroll(pipeline, root, person)
        gallery_rows.append(embs)
        labels += [person] * len(embs)
        print(f"enrolled {person} from {len(embs)} photos")
    gallery = Gallery(np.concatenate(gallery_rows), labels)
    seqs = build_sequences(pipeline, root, np.random.default_rng(seed))
    frames = [f for s in seqs for f in s.frames]

    clock = SimClock()
    logger.warning("no GPIO hardware: the relay is driven on gpiozero's MockFactory")
    factory = MockFactory()
    events = EventSink(out / "demo_events.jsonl", device="demo")
    door = build_door(RELAY_PIN, active_high=True, timing=DoorTiming(unlock_s=4.0), clock=clock, emit=events,
                      pin_factory=factory)
    engine = DecisionEngine(DecisionConfig(frames_to_grant=3, window_s=1.0, cooldown_s=3.0), clock)
    capture = Capture(ReplaySource(frames, fps=FPS, clock=clock), events, lockstep=True)
    recorder = Recorder({p: p.replace("_", " ").title() for p in ENROLLED}, seqs)
    if video:
        h, w = frames[0].shape[:2]
        recorder.video = cv2.VideoWriter(str(out / "demo.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (w, h))
    loop = KioskLoop(capture, pipeline, lambda: gallery, card.threshold, engine, door, events,
                     QualityConfig(min_face_px=60.0), on_result=recorder)
    t0 = time.perf_counter()
    capture.start()
    try:
        loop.run(threading.Event(), until_end=True)
    finally:
        capture.stop()
        door.close()
        events.close()
        if recorder.video is not None:
            recorder.video.release()
    wall = time.perf_counter() - t0
    relay_states = [bool(s.state) for s in factory.pin(RELAY_PIN).states]
    factory.reset()
    summary = {
        "threshold": card.threshold, "model_load_s": round(load_s, 2), "frames": len(frames),
        "wall_s": round(wall, 2), "fps": round(len(frames) / wall, 1), "loop": loop.stats.as_dict(),
        "decisions": recorder.decisions, "relay_transitions": relay_states,
        "per_walk_up": {s.label: {"enrolled": s.enrolled,
                                  "granted": any(d["granted"] and d["walk_up"] == s.label for d in recorder.decisions)}
                        for s in seqs},
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if recorder.keyframes:
        write_rgb(str(out / "demo_decisions.jpg"), contact_sheet(recorder.keyframes))
    return summary
