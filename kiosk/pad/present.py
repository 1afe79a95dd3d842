"""Replay one presentation through the real loop and say what happened.

The loop is built as ``kiosk demo`` and ``kiosk run`` build it: ``Capture``
over a ``ReplaySource`` in lockstep with a ``SimClock`` (so results do not
depend on the machine's speed), the relay on gpiozero's ``MockFactory``, the
decision engine and liveness cues from the configuration, and a gallery that
holds the subject enrolled from *different* material (other photos, or another
part of the clip).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.datasets import IMAGE_SUFFIXES
from kiosk.decision import DecisionConfig, DecisionEngine
from kiosk.door import DoorTiming, build_door
from kiosk.errors import DatasetError, KioskError
from kiosk.events import EventSink
from kiosk.imageio import read_rgb
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.pad.cooperative import REACTION_S, CooperativeSource, find_turn, yaw_series
from kiosk.pad.meta import BONA_FIDE, META, read_meta
from kiosk.pad.observe import FLAT, LIVE, PENDING, LivenessView, liveness_of
from kiosk.pad.video import duration_s, read_clip
from kiosk.vision.boxes import primary_face
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import QualityConfig

logger = logging.getLogger(__name__)

RGB = npt.NDArray[np.uint8]
RELAY_PIN = 17
ENROLL_SPLIT = 0.8  # bona fide video: present [0, 0.8) of the clip, enroll from [0.8, 1.0]
ENROLL_N = 3


@dataclass(frozen=True)
class Presentation:
    name: str
    species: str  # a PAI species, or "bona_fide"
    subject: str
    frames: list[Path] | Callable[[], list[RGB]]  # image files, or decoded when presented (video)
    enroll: Callable[[], list[RGB]]  # images of the subject for the gallery, never the presented ones
    fps: float = 15.0
    loop: bool = False  # replay on a loop until the time limit (rendered attacks)

    @property
    def attack(self) -> bool:
        return self.species != BONA_FIDE


def from_folder(folder: Path) -> Presentation:
    """A sequence folder written by ``kiosk pad render`` (or laid out like one)."""
    meta = read_meta(folder)
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not frames:
        raise DatasetError(f"{folder}: no frames")
    if len(frames) != meta.frames:
        raise DatasetError(f"{folder}: {len(frames)} image files, but {META} says {meta.frames} frames: a sequence "
                           "folder holds its frames and nothing else; render it again")

    def load() -> list[RGB]:
        """Every frame, read before the replay starts: a frame that cannot be read ends this presentation
        with an error instead of looking like a camera that keeps failing."""
        return [read_rgb(f) for f in frames]

    def enroll() -> list[RGB]:
        if meta.enroll_photos:
            return [read_rgb(p) for p in meta.enroll_photos]
        assert meta.enroll_clip is not None
        c = meta.enroll_clip
        return _spread(read_clip(Path(c.path), c.start_s, c.end_s, 5.0), 2 * ENROLL_N)

    return Presentation(str(folder), meta.species, meta.subject, load, enroll, meta.fps, loop=meta.attack)


def from_video(path: Path, fps: float = 15.0, max_seconds: float | None = None) -> Presentation:
    """A real clip of a real person (bona fide): its first 80 % presented, its last 20 % enrolled."""
    end = duration_s(path)
    split = end * ENROLL_SPLIT
    stop = split if max_seconds is None else min(split, max_seconds)
    return Presentation(str(path), BONA_FIDE, path.stem, lambda: read_clip(path, 0.0, stop, fps),
                        lambda: _spread(read_clip(path, split, end, 5.0), 2 * ENROLL_N), fps)


def _spread(frames: list[RGB], n: int) -> list[RGB]:
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    return [frames[int(i)] for i in idx]


@dataclass(frozen=True)
class PresentConfig:
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    liveness: Any = None  # kiosk.liveness settings; None: liveness off
    max_seconds: float = 12.0
    unlock_s: float = 5.0


@dataclass
class Outcome:
    """What one presentation did. Times are seconds on the replay's clock."""

    name: str
    species: str
    subject: str
    attack: bool
    enrolled_from: int  # embeddings in the gallery
    frames: int = 0
    usable_frames: int = 0  # a face that passed the quality gates
    gate_failures: dict[str, int] = field(default_factory=dict)  # frames no face passed: the largest face's gate
    first_usable_s: float | None = None
    verdict: str = "none"  # live | flat | none: the first final liveness verdict
    verdict_reason: str | None = None
    verdict_s: float | None = None
    challenged: bool = False  # a head turn was prompted before the verdict
    granted: bool = False  # a grant decision
    granted_s: float | None = None
    door_opened: bool = False  # the relay pin went to its unlocked level
    denied_attack: bool = False  # a presentation_attack denial
    face_changes: int = 0  # tracks restarted because their face became somebody else's (kiosk.continuity)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)  # cue values at the verdict (or the last seen)
    error: str | None = None

    @property
    def time_to_verdict_s(self) -> float | None:
        if self.verdict_s is None or self.first_usable_s is None:
            return None
        return round(self.verdict_s - self.first_usable_s, 3)

    @property
    def time_to_grant_s(self) -> float | None:
        if self.granted_s is None or self.first_usable_s is None:
            return None
        return round(self.granted_s - self.first_usable_s, 3)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time_to_verdict_s": self.time_to_verdict_s, "time_to_grant_s": self.time_to_grant_s}


class _Watcher:
    """The loop's ``on_result``: records what the self-test needs and stops the replay once it is decided."""

    def __init__(self, outcome: Outcome, stop: threading.Event, max_seconds: float,
                 prompter: RecordingPrompter | None = None) -> None:
        self.o = outcome
        self.stop = stop
        self.max_seconds = max_seconds
        self.prompter = prompter

    def __call__(self, r: FrameResult) -> None:
        o, t = self.o, r.frame.t
        o.frames += 1
        if any(g is None for g in r.gates):
            o.usable_frames += 1
            if o.first_usable_s is None:
                o.first_usable_s = t
        elif r.gates:  # no face passed: what stopped the largest one
            gate = str(r.gates[max(range(len(r.gates)), key=lambda i: r.faces[i].area)])
            o.gate_failures[gate] = o.gate_failures.get(gate, 0) + 1
        view = liveness_of(r)
        if view is not None:
            self._liveness(view, t)
        d = r.decision
        if d is not None:
            o.decisions.append({"t": round(t, 3), "granted": d.granted, "person": d.person, "reason": d.reason,
                                "score": round(float(d.score), 4)})
            if d.granted and not o.granted:
                o.granted, o.granted_s = True, t
            if d.reason == "presentation_attack":
                o.denied_attack = True
        if o.granted or o.denied_attack or t >= self.max_seconds:
            self.stop.set()

    def _liveness(self, v: LivenessView, t: float) -> None:
        o = self.o
        if o.verdict != "none":
            return
        if v.values:
            o.values = {**o.values, **v.values}
        if v.challenge or (self.prompter is not None and self.prompter.prompts):
            o.challenged = True
        if v.verdict in (LIVE, FLAT):
            o.verdict, o.verdict_reason, o.verdict_s = v.verdict, v.reason, t
        elif v.verdict != PENDING:
            logger.warning("unknown liveness verdict %r", v.verdict)


class RecordingPrompter:
    """A prompter (``kiosk.liveness.prompters.Prompter``) that remembers when it asked for a head turn."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.prompts: list[tuple[float, str]] = []
        self.showing: str | None = None

    def prompt(self, direction: str) -> None:
        self.prompts.append((self.clock(), direction))
        self.showing = direction

    def clear(self) -> None:
        self.showing = None

    def close(self) -> None:
        self.showing = None


def build_liveness(settings: Any, clock: Callable[[], float], landmarker: Any, prompter: Any,
                   seed: int | None = None) -> Any:
    """The loop's ``liveness`` pair (landmarker, judge) for these settings; None when liveness is off.
    ``seed`` fixes the challenge directions (a door draws them from the system's randomness)."""
    if settings is None or getattr(settings, "mode", "off") == "off" or landmarker is None:
        return None
    from kiosk.liveness.judge import LivenessJudge

    return landmarker, LivenessJudge(settings, clock, prompter, rng=None if seed is None else random.Random(seed))


def _replay(p: Presentation, clock: SimClock) -> ReplaySource:
    """``p``'s frames as recorded, in lockstep with ``clock`` (looped for rendered attacks)."""
    return ReplaySource(p.frames() if callable(p.frames) else p.frames, fps=p.fps, clock=clock, loop=p.loop)


class Presenter:
    """Replays presentations, one at a time, through a fresh loop, door and gallery each."""

    def __init__(self, pipeline: FacePipeline, threshold: float, config: PresentConfig = PresentConfig(),
                 landmarker: Any = None, seed: int | None = 0) -> None:
        """``seed``: challenge directions drawn reproducibly (None: from the system's randomness)."""
        self.pipeline = pipeline
        self.seed = seed
        self.presented = 0
        self.threshold = threshold
        self.config = config
        self.landmarker = landmarker

    def gallery(self, p: Presentation) -> Gallery:
        embs = []
        for img in p.enroll():
            try:
                embs.append(self.pipeline.largest(img, f"enrollment image of {p.subject}")[1])
            except KioskError:
                continue
            if len(embs) == ENROLL_N:
                break
        if not embs:
            raise DatasetError(f"{p.name}: no face in the enrollment material of {p.subject}")
        return Gallery(np.stack(embs), [p.subject] * len(embs))

    def present(self, p: Presentation, wrap: Callable[[Any], Any] | None = None) -> Outcome:
        """``p`` replayed as recorded; ``wrap`` may wrap the replay source (``kiosk.pad.camera_shift``)."""
        if wrap is None:
            return self._present(p, None, self._next_seed())
        return self._present(p, lambda clock, prompter: wrap(_replay(p, clock)), self._next_seed())

    def present_cooperative(self, p: Presentation, reaction_s: float = REACTION_S, min_change: float = 0.2,
                            max_start: float = 0.04, wrap: Callable[[Any], Any] | None = None) -> Outcome:
        """A sequence played as someone who answers the prompt with its largest head turn
        (``kiosk.pad.cooperative``): a real person, or an attacker turning the artefact the prompted way.
        An Outcome with ``error`` when the sequence holds no turn of ``min_change`` from a yaw within
        ``max_start`` of ahead. ``wrap`` may wrap the source (``kiosk.pad.swap.SwapSource``)."""
        if self.landmarker is None:
            raise KioskError("a cooperative presentation needs the FaceMesh landmarker")
        frames = p.frames() if callable(p.frames) else [read_rgb(f) for f in p.frames]
        marks = []
        for rgb in frames:
            face = primary_face(self.pipeline.detect(rgb))
            marks.append(None if face is None else self.landmarker.landmarks(rgb, face))
        turn = find_turn(yaw_series(marks), p.fps, min_change=min_change, max_start=max_start)
        if turn is None:
            return Outcome(p.name, p.species, p.subject, p.attack, 0, error="no head turn in the clip")

        made: list[CooperativeSource] = []
        seed = self._next_seed()  # both plays below draw the same prompt from it

        def play(mirror_all: bool) -> Outcome:
            def source(clock: SimClock, prompter: RecordingPrompter) -> Any:
                mirrored = bool(getattr(self.config.liveness, "camera_mirrored", False))
                made.append(CooperativeSource(frames, turn, lambda: prompter.prompts, p.fps, clock, reaction_s,
                                              mirrored, mirror_all=mirror_all))
                return made[-1] if wrap is None else wrap(made[-1])

            return self._present(p, source, seed)

        outcome = play(False)
        mirrored = made[-1].switched
        if mirrored:
            # The prompt asks for the other way than the clip turns: play the clip's mirror image from its
            # first frame, with the same seed and so the same prompt, rather than flip it mid-presentation.
            outcome = play(True)
            if made[-1].switched:  # the prompt came out otherwise this time: no presentation a camera could see
                return Outcome(p.name, p.species, p.subject, p.attack, 0,
                               error="the mirrored replay drew another prompt")
        outcome.values = {**outcome.values, "clip_turn": round(turn.change, 4), "mirrored": float(mirrored)}
        return outcome

    def _next_seed(self) -> int | None:
        """The judge's seed for the next presentation: one per presentation, so each draws its own prompts."""
        seed = None if self.seed is None else self.seed + self.presented
        self.presented += 1
        return seed

    def _present(self, p: Presentation, make_source: Callable[[SimClock, RecordingPrompter], Any] | None,
                 seed: int | None) -> Outcome:
        from gpiozero.pins.mock import MockFactory

        gallery = self.gallery(p)
        outcome = Outcome(p.name, p.species, p.subject, p.attack, len(gallery.labels))
        clock = SimClock()
        factory = MockFactory()
        events = EventSink(None, device="pad", wall_clock=clock)
        door = build_door(RELAY_PIN, active_high=True, timing=DoorTiming(unlock_s=self.config.unlock_s), clock=clock,
                          emit=events, pin_factory=factory)
        engine = DecisionEngine(self.config.decision, clock)
        prompter = RecordingPrompter(clock)
        source = (make_source(clock, prompter) if make_source is not None else
                  _replay(p, clock))
        capture = Capture(source, events, lockstep=True)
        stop = threading.Event()
        loop = KioskLoop(capture, self.pipeline, lambda: gallery, self.threshold, engine, door, events,
                         self.config.quality, on_result=_Watcher(outcome, stop, self.config.max_seconds, prompter),
                         liveness=build_liveness(self.config.liveness, clock, self.landmarker, prompter, seed))
        capture.start()
        try:
            loop.run(stop, until_end=True)
        finally:
            capture.stop()
            door.close()
            events.close()
        outcome.door_opened = any(bool(s.state) for s in factory.pin(RELAY_PIN).states)
        outcome.face_changes = loop.stats.face_changes
        factory.reset()
        return outcome
