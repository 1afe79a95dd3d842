"""Wiring for ``kiosk demo``: enroll two people, replay four walk-ups and an attacker through the real loop.

The enrolled visitors turn their heads (a synthetic turn: their photo warped
with FaceMesh depth, labelled "synthetic" in the video and summary), so they
pass the liveness check through the real path; the attacker holds up a
printed photo of an enrolled person and is denied as a presentation attack.
"""

from __future__ import annotations

import json
import logging
import math
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
from kiosk.demo.headturn import HeadTurner
from kiosk.demo.sequences import Sequence, background, head_and_shoulders, walk_up
from kiosk.door import DoorTiming, build_door
from kiosk.errors import NoFaceError
from kiosk.events import EventSink
from kiosk.imageio import read_rgb
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.pad.observe import liveness_of
from kiosk.pad.present import RecordingPrompter, build_liveness
from kiosk.pad.render import RenderSettings, attack_frames
from kiosk.policy import PolicyConfig, level_for
from kiosk.vision.boxes import primary_face
from kiosk.vision.pipeline import FacePipeline, build_pipeline
from kiosk.vision.quality import QualityConfig

logger = logging.getLogger(__name__)

ENROLLED = ("ben_afflek", "madonna")
VISITORS = ("ben_afflek", "jerry_seinfeld", "madonna", "mindy_kaling")
FPS = 15.0
WALK_FRAMES = 30
GAP_FRAMES = 75  # five seconds of empty hallway: the door relocks in between
HOLD_FRAMES = 30  # an enrolled visitor stands at the door for two seconds after walking up
TURN_YAW = 0.5  # radians: the synthetic head turns about 29 degrees each way
TURN_PERIOD = 30  # frames per left-right cycle
ATTACK_FRAMES = 135  # nine seconds: a still print waits out the challenge prompt and its timeout
ATTACKER_TARGET = ENROLLED[0]
RELAY_PIN = 17
SYNTHETIC_TURN = "synthetic head turn (photo warped with FaceMesh depth)"


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


def turning_head(pipeline: FacePipeline, landmarker: Any, cutout: npt.NDArray[np.uint8], origin: str,
                 phase: float) -> Any:
    """frame number -> the cut-out with its head turned left and right (synthetic)."""
    cut = np.asarray(cv2.resize(cutout, (360, 360), interpolation=cv2.INTER_AREA), np.uint8)
    face = primary_face(pipeline.detect(cut))
    points = landmarker.landmarks(cut, face) if face is not None else None
    if points is None:
        raise NoFaceError(f"{origin}: FaceMesh found no face to turn")
    turner = HeadTurner(cut, points)
    return lambda k: turner(TURN_YAW * math.sin(2 * math.pi * k / TURN_PERIOD + phase))


def build_sequences(pipeline: FacePipeline, root: Path, rng: np.random.Generator,
                    size: tuple[int, int] = (640, 480), landmarker: Any = None,
                    attacker: bool = False) -> list[Sequence]:
    """The walk-ups (enrolled visitors turn their heads when a FaceMesh ``landmarker`` is given), then,
    with ``attacker``, someone holding a printed photo of an enrolled person."""
    seqs = []
    first = 0
    for person in VISITORS:
        photo = sorted((root / "val" / person).glob("*.jpg"))[0]  # never an enrollment photo
        rgb = read_rgb(photo)
        face = primary_face(pipeline.detect(rgb))
        if face is None:
            raise NoFaceError(f"{photo}: no face for the demo sequence")
        bg = background(size[0], size[1], rng)
        cut = head_and_shoulders(rgb, face)
        synthetic = ""
        if landmarker is not None and person in ENROLLED:
            frames = walk_up(turning_head(pipeline, landmarker, cut, str(photo), rng.uniform(0, 2 * math.pi)), bg,
                             WALK_FRAMES, rng, hold=HOLD_FRAMES)
            synthetic = SYNTHETIC_TURN
        else:
            frames = walk_up(cut, bg, WALK_FRAMES, rng)
        gap = [np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8) for _ in range(GAP_FRAMES)]
        seqs.append(Sequence(person, person in ENROLLED, frames + gap, first, synthetic=synthetic))
        first += len(frames) + len(gap)
    if attacker:
        photos = sorted((root / "val" / ATTACKER_TARGET).glob("*.jpg"))
        photo = photos[1] if len(photos) > 1 else photos[0]  # never an enrollment photo
        rgb = read_rgb(photo)
        face = primary_face(pipeline.detect(rgb))
        if face is None:
            raise NoFaceError(f"{photo}: no face for the attacker's print")
        bg = background(size[0], size[1], rng)
        frames = attack_frames("print_still", head_and_shoulders(rgb, face), int(rng.integers(1 << 30)),
                               RenderSettings(frames=ATTACK_FRAMES, fps=FPS), bg)
        gap = [np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8) for _ in range(GAP_FRAMES)]
        seqs.append(Sequence(f"print of {ATTACKER_TARGET}", False, frames + gap, first, kind="attack",
                             synthetic="rendered printed photo held in the hand"))
    return seqs


@dataclass
class Recorder:
    """Collects annotated frames and the decisions for the video and summary."""

    names: dict[str, str]
    sequences: list[Sequence]
    video: Any = None
    prompter: RecordingPrompter | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    keyframes: list[npt.NDArray[np.uint8]] = field(default_factory=list)

    def sequence_of(self, index: int) -> Sequence:
        return [s for s in self.sequences if s.first <= index][-1]

    def __call__(self, r: FrameResult) -> None:
        seq = self.sequence_of(r.frame.index)
        live = liveness_of(r)
        labels = []
        for gate, match in zip(r.gates, r.matches):
            if match is None:
                labels.append((f"{gate}", (160, 160, 160)))
            elif match.person is None:
                labels.append((f"unknown {match.score:.2f}", (255, 60, 60)))
            else:
                labels.append((f"{self.names.get(match.person, match.person)} {match.score:.2f}", (60, 220, 60)))
        if live is not None and labels:
            text, colour = labels[0]
            labels[0] = (f"{text} | {live.verdict}", (255, 60, 60) if live.verdict == "flat" else colour)
        door = "UNLOCKED" if r.door_unlocked else "LOCKED"
        who = f"ATTACK: {seq.label}" if seq.kind == "attack" else f"walk-up: {seq.label}"
        banner = f"t={r.frame.t:5.1f}s  {who}  door: {door}"
        if self.prompter is not None and self.prompter.showing:
            banner += f"  PROMPT: turn {self.prompter.showing}"
        img = draw_frame(r.frame.rgb, r.faces, labels, banner, (60, 220, 60) if r.door_unlocked else (255, 80, 80))
        if seq.synthetic and r.faces:
            cv2.putText(img, f"SYNTHETIC: {seq.synthetic}", (8, img.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 220, 0), 1, cv2.LINE_AA)
        if r.decision is not None:
            d = r.decision
            self.decisions.append({"t": round(r.frame.t, 2), "walk_up": seq.label, "enrolled": seq.enrolled,
                                   "kind": seq.kind, "granted": d.granted, "person": d.person, "reason": d.reason,
                                   "score": round(d.score, 4), "latency_ms": round(r.latency_ms, 2),
                                   "liveness": None if live is None else live.verdict,
                                   "liveness_reason": None if live is None else live.reason})
            self.keyframes.append(img)
            verdict = f"GRANTED {d.person}" if d.granted else f"DENIED ({d.reason})"
            print(f"t={r.frame.t:6.2f}s  {seq.label:<22} -> {verdict:<34} score {d.score:.3f}  "
                  f"frame-to-decision {r.latency_ms:.1f} ms")
        if self.video is not None:
            self.video.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def contact_sheet(images: list[npt.NDArray[np.uint8]], cols: int = 2, width: int = 480) -> npt.NDArray[np.uint8]:
    tiles = [cv2.resize(i, (width, int(i.shape[0] * width / i.shape[1])), interpolation=cv2.INTER_AREA) for i in images]
    h = max(t.shape[0] for t in tiles)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r:r + cols], axis=1) for r in range(0, len(tiles), cols)]
    return np.concatenate([np.pad(r, ((0, h - r.shape[0]), (0, 0), (0, 0))) for r in rows], axis=0)


def run_demo(out: Path, video: bool = True, seed: int = 7, liveness: Any = None) -> dict[str, Any]:
    """``liveness``: the ``[liveness]`` settings (default: the defaults, challenge mode)."""
    from gpiozero.pins.mock import MockFactory

    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.settings import LivenessSettings

    out.mkdir(parents=True, exist_ok=True)
    root = dataset_path("5-celebrity")
    t_load = time.perf_counter()
    pipeline, _card = build_pipeline()
    landmarker = build_landmarker()
    load_s = time.perf_counter() - t_load
    gallery_rows, labels = [], []
    for person in ENROLLED:
        embs = enroll(pipeline, root, person)
        gallery_rows.append(embs)
        labels += [person] * len(embs)
        print(f"enrolled {person} from {len(embs)} photos")
    gallery = Gallery.from_rows(labels, np.concatenate(gallery_rows))  # one fused template per person
    level = level_for(PolicyConfig(), len(gallery))  # the door's default security level: 1 in 10,000 strangers
    print(level.describe())
    seqs = build_sequences(pipeline, root, np.random.default_rng(seed), landmarker=landmarker, attacker=True)
    frames = [f for s in seqs for f in s.frames]

    clock = SimClock()
    logger.warning("no GPIO hardware: the relay is driven on gpiozero's MockFactory")
    factory = MockFactory()
    events = EventSink(out / "demo_events.jsonl", device="demo")
    door = build_door(RELAY_PIN, active_high=True, timing=DoorTiming(unlock_s=4.0), clock=clock, emit=events,
                      pin_factory=factory)
    settings = liveness if liveness is not None else LivenessSettings()
    engine = DecisionEngine(DecisionConfig(frames_to_grant=3, window_s=1.0, cooldown_s=3.0,
                                           liveness=settings.mode != "off"), clock)
    capture = Capture(ReplaySource(frames, fps=FPS, clock=clock), events, lockstep=True)
    prompter = RecordingPrompter(clock)
    recorder = Recorder({p: p.replace("_", " ").title() for p in ENROLLED}, seqs, prompter=prompter)
    if video:
        h, w = frames[0].shape[:2]
        recorder.video = cv2.VideoWriter(str(out / "demo.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (w, h))
    loop = KioskLoop(capture, pipeline, lambda: gallery, level.threshold, engine, door, events,
                     QualityConfig(min_face_px=60.0), on_result=recorder,
                     liveness=build_liveness(settings, clock, landmarker, prompter, seed=seed))
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
        "threshold": round(level.threshold, 4), "security_level": level.as_dict(),
        "model_load_s": round(load_s, 2), "frames": len(frames),
        "wall_s": round(wall, 2), "fps": round(len(frames) / wall, 1), "loop": loop.stats.as_dict(),
        "liveness": settings.model_dump(mode="json"),
        "challenge_prompts": [{"t": round(t, 2), "direction": d} for t, d in prompter.prompts],
        "decisions": recorder.decisions, "relay_transitions": relay_states,
        "per_walk_up": {s.label: {"enrolled": s.enrolled, "kind": s.kind, "synthetic": s.synthetic or None,
                                  "granted": any(d["granted"] and d["walk_up"] == s.label for d in recorder.decisions),
                                  "reasons": sorted({d["reason"] for d in recorder.decisions
                                                     if d["walk_up"] == s.label})}
                        for s in seqs},
        "note": "enrolled walk-ups are synthetic head turns (a photo warped with FaceMesh depth) and the attack "
                "is a rendered print: they exercise the real loop, they are not evidence about real people "
                "(see kiosk pad eval on real video)",
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if recorder.keyframes:
        write_rgb(str(out / "demo_decisions.jpg"), contact_sheet(recorder.keyframes))
    return summary
