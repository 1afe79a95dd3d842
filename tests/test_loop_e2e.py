"""The real loop end to end: replayed walk-ups, the real models, a MockFactory relay, simulated time."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource, SimClock
from kiosk.decision import DecisionConfig, DecisionEngine, MultiFacePolicy
from kiosk.demo.run import enroll
from kiosk.demo.sequences import background, head_and_shoulders, walk_up
from kiosk.door import DoorTiming, build_door
from kiosk.events import EventSink
from kiosk.imageio import read_rgb
from kiosk.loop import FrameResult, KioskLoop
from kiosk.match import Gallery
from kiosk.vision.boxes import primary_face
from kiosk.vision.quality import QualityConfig
from tests.pins import assert_pin_history

pytestmark = pytest.mark.models
RELAY = 17
FPS = 10.0


@pytest.fixture(scope="module")
def celeb(models: Path) -> Path:
    from kiosk.artifacts import dataset_path

    return dataset_path("5-celebrity")


@pytest.fixture(scope="module")
def gallery(pipeline: Any, celeb: Path) -> Gallery:
    embs = enroll(pipeline[0], celeb, "ben_afflek")
    return Gallery(embs, ["ben"] * len(embs))


def _cutout(pipeline: Any, celeb: Path, person: str) -> np.ndarray:
    photo = sorted((celeb / "val" / person).glob("*.jpg"))[0]
    rgb = read_rgb(photo)
    face = primary_face(pipeline[0].detect(rgb))
    assert face is not None
    return head_and_shoulders(rgb, face)


def _walk(pipeline: Any, celeb: Path, person: str, seed: int = 3, gap: int = 80) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    bg = background(640, 480, rng)
    return walk_up(_cutout(pipeline, celeb, person), bg, 25, rng) + [bg] * gap


class Rig:
    """The loop wired as in production, but with replayed frames, mock pins and simulated time."""

    def __init__(self, pipeline: Any, gallery: Gallery, frames: list[np.ndarray], factory: MockFactory,
                 tmp: Path, multi_face: MultiFacePolicy = MultiFacePolicy.DENY, fail_at: set[int] | None = None,
                 fps: float = FPS, liveness: Any = None) -> None:
        self.clock = SimClock()
        self.events = EventSink(tmp / "audit.jsonl")
        self.door = build_door(RELAY, active_high=True, timing=DoorTiming(unlock_s=3.0), clock=self.clock,
                               emit=self.events, pin_factory=factory)
        fails = set(fail_at or ())

        def fail(i: int) -> bool:
            if i in fails:
                fails.discard(i)
                return True
            return False

        source = ReplaySource(frames, fps=fps, clock=self.clock, fail_at=fail)
        self.capture = Capture(source, self.events, lockstep=True, backoff_s=(0.001, 0.002))
        engine = DecisionEngine(DecisionConfig(frames_to_grant=3, window_s=1.0, multi_face=multi_face, liveness=False),
                                self.clock)
        self.results: list[FrameResult] = []
        self.loop = KioskLoop(self.capture, pipeline[0], lambda: gallery, pipeline[1].threshold, engine, self.door,
                              self.events, QualityConfig(min_face_px=60.0), on_result=self.results.append,
                              liveness=liveness)

    def run(self) -> None:
        self.capture.start()
        try:
            self.loop.run(threading.Event(), until_end=True)
        finally:
            self.capture.stop()
            self.door.close()
            self.events.close()

    def kinds(self) -> list[str]:
        return [k for k in ("access_granted", "access_denied") for _ in range(self.events.counts.get(k, 0))]


def test_enrolled_person_energises_the_relay_for_the_unlock_time_then_it_locks(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    rig = Rig(pipeline, gallery, _walk(pipeline, celeb, "ben_afflek"), factory, tmp_path)
    rig.run()
    assert rig.events.counts.get("access_granted") == 1
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    unlocked = [r.frame.t for r in rig.results if r.door_unlocked]
    assert unlocked and max(unlocked) - min(unlocked) == pytest.approx(3.0, abs=1.5 / FPS)
    assert "door_locked" in (tmp_path / "audit.jsonl").read_text()


def test_unknown_person_never_energises_the_relay(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    rig = Rig(pipeline, gallery, _walk(pipeline, celeb, "jerry_seinfeld"), factory, tmp_path)
    rig.run()
    assert "access_granted" not in rig.events.counts
    assert rig.events.counts.get("access_denied") == 1
    assert all(not s.state for s in factory.pin(RELAY).states)


def _two_people(pipeline: Any, celeb: Path) -> list[np.ndarray]:
    frames = _walk(pipeline, celeb, "ben_afflek", gap=20)
    stranger = _cutout(pipeline, celeb, "jerry_seinfeld")
    patch = np.asarray(__import__("cv2").resize(stranger, (170, 170)), np.uint8)
    out = []
    for f in frames[:25]:
        f = f.copy()
        f[300:470, 460:630] = patch  # a second person standing behind, lower right
        out.append(f)
    return out + frames[25:]


def test_a_second_face_in_view_denies_by_default(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    rig = Rig(pipeline, gallery, _two_people(pipeline, celeb), factory, tmp_path)
    rig.run()
    assert "access_granted" not in rig.events.counts
    assert any(r.decision is not None and r.decision.reason == "multiple_faces" for r in rig.results)
    assert all(not s.state for s in factory.pin(RELAY).states)


def test_largest_face_policy_lets_the_enrolled_person_in(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    rig = Rig(pipeline, gallery, _two_people(pipeline, celeb), factory, tmp_path, multi_face=MultiFacePolicy.LARGEST)
    rig.run()
    assert rig.events.counts.get("access_granted") == 1


def test_a_failing_camera_locks_the_door_and_is_reopened(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    frames = _walk(pipeline, celeb, "ben_afflek")
    granted_at = 0
    rig = Rig(pipeline, gallery, frames, factory, tmp_path, fail_at=set())
    # find when the grant happens without failure, then fail the camera just after it
    rig.run()
    granted_at = next(r.frame.index for r in rig.results if r.decision is not None and r.decision.granted)
    factory.reset()
    rig = Rig(pipeline, gallery, frames, factory, tmp_path, fail_at={granted_at + 3})
    rig.run()
    assert rig.events.counts.get("camera_lost") == 1 and rig.events.counts.get("camera_restored") == 1
    assert rig.capture.reconnects == 1
    states = [s.state for s in factory.pin(RELAY).states]
    assert states == [False, True, False]  # locked at the failure, well before the unlock time ran out
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"reason": "camera_lost"' in audit
    lock_frames = [r.frame.index for r in rig.results if not r.door_unlocked and r.frame.index > granted_at]
    assert min(lock_frames) <= granted_at + 4


def _swap_walk(pipeline: Any, celeb: Path, first: str, then: str, at: int, every: int = 0,
               gap: int = 10) -> list[np.ndarray]:
    """One walk-up whose face is ``first``'s until frame ``at``, then ``then``'s in the same place (the same
    seed puts both cutouts at the same positions); with ``every``, the faces alternate every that many frames."""
    a, b = _walk(pipeline, celeb, first, gap=gap), _walk(pipeline, celeb, then, gap=gap)
    if every:
        return [b[k] if k >= at and ((k - at) // every) % 2 == 0 else a[k] for k in range(len(a))]
    return a[:at] + b[at:]


def test_a_face_that_becomes_somebody_else_in_the_same_place_restarts_its_track(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    rig = Rig(pipeline, gallery, _swap_walk(pipeline, celeb, "jerry_seinfeld", "ben_afflek", at=14), factory, tmp_path)
    rig.run()
    assert rig.events.counts.get("face_changed") == 1
    assert rig.loop.stats.face_changes == 1
    tracked = [(r.frame.index, r.tracks[0]) for r in rig.results if r.tracks]
    before = {t for i, t in tracked if i < 14}
    after = {t for i, t in tracked if i >= 14}
    assert len(before) == 1 and before.isdisjoint(after)  # Ben's face never counts on Jerry's track
    granted = [r for r in rig.results if r.decision is not None and r.decision.granted]
    assert granted and granted[0].decision is not None and granted[0].decision.track in after
    event = next(e for e in map(__import__("json").loads, (tmp_path / "audit.jsonl").read_text().splitlines())
                 if e["type"] == "face_changed")
    assert event["track"] in before and event["new_track"] in after and event["similarity"] < 0.5


def test_faces_swapped_back_and_forth_are_reported_without_flooding_the_events(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    frames = _swap_walk(pipeline, celeb, "jerry_seinfeld", "ben_afflek", at=6, every=2, gap=110)
    rig = Rig(pipeline, gallery, frames, factory, tmp_path)
    rig.run()
    assert rig.loop.stats.face_changes >= 5
    events = [e for e in map(__import__("json").loads, (tmp_path / "audit.jsonl").read_text().splitlines())
              if e["type"] == "face_changed"]
    # one event at the first change; the rest held back by deny_event_interval_s (10 s) and reported, with
    # their count, once it has passed though no face changed since (the walk-up ends after 2.5 s)
    assert len(events) == 2 and events[0]["changes"] == 1
    assert sum(e["changes"] for e in events) == rig.loop.stats.face_changes
    assert all(not s.state for s in factory.pin(RELAY).states)  # Ben never held one track for 3 frames


@pytest.mark.parametrize("fps", [5.0, 15.0])
def test_the_landmark_rate_is_published_and_a_rate_below_the_measured_floor_is_reported_once(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path, fps: float) -> None:
    """A loop that gives faces fewer landmark frames a second than the liveness thresholds were measured
    down to (a Raspberry Pi that cannot keep up) says so: the rate in the stats, one event, one warning."""
    import random

    from kiosk.liveness.judge import LivenessJudge
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.prompters import LogPrompter
    from kiosk.liveness.settings import LivenessSettings

    still = _walk(pipeline, celeb, "ben_afflek", gap=0)[-1]
    clock = SimClock()
    judge = LivenessJudge(LivenessSettings(mode="passive"), clock, LogPrompter(), random.Random(0))
    rig = Rig(pipeline, gallery, [still] * int(4 * fps), factory, tmp_path, fps=fps,
              liveness=(build_landmarker(), judge))
    judge.clock = rig.clock
    rig.run()
    assert rig.loop.stats.as_dict()["liveness_hz"] == pytest.approx(fps, abs=0.05)
    events = [e for e in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())
              if e["type"] == "liveness_rate"]
    if fps < LivenessSettings().min_sample_hz:
        assert [(e["below"], e["liveness_hz"]) for e in events] == [(True, fps)]
    else:
        assert events == []


def test_a_face_missing_from_every_other_frame_is_no_slow_door(
        pipeline: Any, gallery: Gallery, celeb: Path, factory: MockFactory, tmp_path: Path) -> None:
    """A face that the camera loses on every other frame (a missed detection, a face too small or cut
    off for a frame) is sampled 7.5 times a second at 15 fps, but the door is not slow: the gaps are
    breaks in that face's landmark sequence, and the rate the loop reports and warns about is the
    camera's and the loop's only."""
    import random

    from kiosk.liveness.judge import LivenessJudge
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.prompters import LogPrompter
    from kiosk.liveness.settings import LivenessSettings

    samples: list[tuple[int, float]] = []

    class Judge(LivenessJudge):
        def observe(self, track_id: int, landmarks: Any, now: float | None = None, **extra: object) -> Any:
            samples.append((track_id, 0.0 if now is None else now))
            return super().observe(track_id, landmarks, now, **extra)

    walk = _walk(pipeline, celeb, "ben_afflek", gap=1)
    still, empty = walk[-2], walk[-1]
    judge = Judge(LivenessSettings(mode="passive", min_live_residual=1.0), SimClock(), LogPrompter(),
                  random.Random(0))  # never a verdict: every frame with the face is sampled
    rig = Rig(pipeline, gallery, [still, empty] * 30, factory, tmp_path, fps=15.0,
              liveness=(build_landmarker(), judge))
    judge.clock = rig.clock
    rig.run()
    assert len(samples) == 30 and {t for t, _ in samples} == {samples[0][0]}  # one track
    assert np.diff([t for _, t in samples]) == pytest.approx(2 / 15.0)  # 7.5 a second
    assert rig.loop.stats.as_dict()["liveness_hz"] is None
    events = [e for e in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())
              if e["type"] == "liveness_rate"]
    assert events == []
