"""The processing loop: frame -> faces -> tracks -> quality gates -> embeddings -> same face as the track?
-> liveness -> match -> decision -> door + events."""

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
from kiosk.continuity import FaceContinuity
from kiosk.decision import Candidate, Decision, DecisionEngine, Observation, liveness_values
from kiosk.door import Door
from kiosk.events import EventSink
from kiosk.liveness.background import BackgroundLandmarks, Pending
from kiosk.match import Gallery
from kiosk.ratelimit import TokenBucket
from kiosk.sdnotify import Notifier
from kiosk.track import Tracker
from kiosk.vision.boxes import Face
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.quality import QualityConfig, check_geometry, sharpness

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass
class FrameResult:
    frame: Frame
    faces: list[Face]
    gates: list[str | None]  # None: passed, else the gate it failed
    matches: list[FaceMatch | None]  # per face; None when it failed a gate
    decision: Decision | None
    latency_ms: float
    door_unlocked: bool
    tracks: list[int] = field(default_factory=list)  # per face
    liveness: list[Any] = field(default_factory=list)  # per face: a LivenessResult, or None


@dataclass(frozen=True)
class FaceMatch:
    """One face in one frame: who its own embedding is closest to (None: nobody above the threshold)."""

    person: str | None
    score: float
    area: float = 0.0


@dataclass
class LoopStats:
    frames_processed: int = 0
    granted: int = 0
    denied: int = 0
    errors: int = 0
    presentation_attacks: int = 0
    face_changes: int = 0  # a track whose face became somebody else's (see kiosk.continuity)
    latency_ms_sum: float = 0.0
    gate_failures: dict[str, int] = field(default_factory=dict)
    liveness_hz: float | None = None  # landmark frames per second per face, as measured (kiosk.liveness.rate)

    def as_dict(self) -> dict[str, Any]:
        mean = self.latency_ms_sum / self.frames_processed if self.frames_processed else 0.0
        return {"frames_processed": self.frames_processed, "granted": self.granted, "denied": self.denied,
                "errors": self.errors, "presentation_attacks": self.presentation_attacks,
                "face_changes": self.face_changes,
                "mean_frame_ms": round(mean, 2), "gate_failures": dict(self.gate_failures),
                "liveness_hz": self.liveness_hz}


def candidate(gallery: Gallery, probe: F32) -> Candidate:
    """The best person for a probe and the best score of anybody else (any number of rows per person)."""
    if len(gallery) == 0:
        return Candidate(None, -1.0, -1.0)
    top2 = getattr(gallery, "top2", None)
    if top2 is not None:
        person, best, second = top2(probe)
        return Candidate(person, float(best), float(second))
    scores = gallery.scores(probe)
    order = np.argsort(-scores)
    best_label = gallery.labels[int(order[0])]
    second = next((float(scores[i]) for i in order[1:] if gallery.labels[int(i)] != best_label), -1.0)
    return Candidate(best_label, float(scores[int(order[0])]), second)


# gates a face may fail and still be followed by the liveness cues (a head turned for a challenge)
LIVENESS_GATES = (None, "turned_away", "blurred")


class KioskLoop:
    def __init__(self, capture: Capture, pipeline: FacePipeline, gallery: Callable[[], Gallery],
                 threshold: float | Callable[[], float], engine: DecisionEngine, door: Door, events: EventSink,
                 quality: QualityConfig, notifier: Notifier | None = None, watchdog_s: float | None = None,
                 on_result: Callable[[FrameResult], None] | None = None, *, liveness: Any = None,
                 tracker: Tracker | None = None, healthy: Callable[[], bool] | None = None,
                 mesh_worker: bool | None = None) -> None:
        """``liveness``: a (landmarker, judge) pair from ``kiosk.liveness``, or None when liveness is off.

        ``mesh_worker``: run FaceMesh on a worker thread while the embedder runs (None: when the process may use
        more than one core; ``kiosk.liveness.background``).

        ``healthy``: extra checks the systemd watchdog depends on (sync thread alive, camera not frozen).
        """
        self.capture = capture
        self.pipeline = pipeline
        self.gallery = gallery
        self.threshold: Callable[[], float] = threshold if callable(threshold) else (lambda: float(threshold))
        self.engine = engine
        self.door = door
        self.events = events
        self.quality = quality
        self.notifier = notifier or Notifier("")
        self.watchdog_s = watchdog_s
        self.on_result = on_result
        self.liveness = liveness
        self._mesh = None if liveness is None else BackgroundLandmarks(liveness[0], mesh_worker)
        self.tracker = tracker or Tracker()
        self.continuity = FaceContinuity(engine.config.face_change)
        self._face_events: TokenBucket | None = None  # one face_changed event per deny_event_interval_s
        self._face_changes_unreported = 0
        self.healthy = healthy or (lambda: True)
        self.stats = LoopStats()
        self._last_watchdog = -math.inf
        self._starving = False
        self._clock = engine.clock
        capture.on_lost = self._camera_lost  # fail secure at once, from the capture thread
        if not engine.bound:
            engine.match = lambda probe: candidate(self.gallery(), probe)
            engine.bound = True
        if not engine.has_threshold:
            engine.threshold, engine.has_threshold = self.threshold, True
        if not engine.has_threshold_1to1:
            engine.threshold_1to1, engine.has_threshold_1to1 = self.threshold, True
        if engine.config.liveness and liveness is None:
            logger.warning("the decision needs a live verdict but no liveness cues are running: nobody will be let in")

    def _camera_lost(self) -> None:
        self.door.lock("camera_lost")

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        now = self._clock()
        rgb = frame.rgb
        self._report_face_changes(now)
        faces = self.pipeline.detect(rgb)
        tracks, ended = self.tracker.update([f.box for f in faces], now)
        if ended:
            self._end(ended)
        geometry = [check_geometry(face, rgb.shape, self.quality) for face in faces]
        # the liveness cues look at a face at the judge's rate, gates passed or not (a head turned for a
        # challenge, a blurred face): every face but those too small or cut off (the geometry says which)
        sampled: list[int] = []
        pending = Pending()
        mesh_now = False
        gates: list[str | None] = []
        crops: dict[int, npt.NDArray[np.uint8]] = {}
        good: dict[int, float] = {}  # face -> sharpness, for the faces that pass every gate
        emb_of: dict[int, F32] = {}
        try:
            if self.liveness is not None and self._mesh is not None:
                judge = self.liveness[1]
                sampleable = [i for i in range(len(faces)) if geometry[i] in LIVENESS_GATES]
                judge.in_view((tracks[i] for i in sampleable), now)  # a face gated out or not detected is no rate
                sampled = [i for i in sampleable if judge.due(tracks[i], now)]
                # FaceMesh on the worker from here, while this thread crops, gates and embeds; with no worker,
                # after the gates (which read the face's pixels into the caches) and before the embedder
                # (which would push its weights and the frame out of them): benchmarks/liveness.py
                mesh_now = not self._mesh.worker
                if not mesh_now:
                    pending = self._mesh.start(rgb, {i: faces[i] for i in sampled})
            # crop only faces whose geometry passes: far-away or turned faces cost no crop
            for i, face in enumerate(faces):
                gate = geometry[i]
                if gate is None:
                    crops[i] = self.pipeline.crops(rgb, [face])[0]
                    sharp = sharpness(crops[i])
                    gate = "blurred" if sharp < self.quality.min_sharpness else None
                    if gate is None:
                        good[i] = sharp
                gates.append(gate)
            if mesh_now and self._mesh is not None:
                pending = self._mesh.start(rgb, {i: faces[i] for i in sampled})
            # every face that feeds the decision or the liveness cues is embedded: a track must keep its face
            embedded = sorted(set(good) | set(sampled))
            for i in embedded:
                if i not in crops:
                    crops[i] = self.pipeline.crops(rgb, [faces[i]])[0]
            if embedded:
                emb_of = dict(zip(embedded, self.pipeline.embedder.embed([crops[i] for i in embedded])))
            marks = pending.result()
        except BaseException as exc:
            pending.settle(exc)  # the interpreter is free before the error leaves the frame
            raise
        for i in embedded:
            self._keep_face(tracks, i, emb_of[i], now)
        live: list[Any] = [None] * len(faces)
        if self.liveness is not None:
            for i in range(len(faces)):
                if gates[i] in LIVENESS_GATES:
                    if i not in sampled:
                        live[i] = judge.current(tracks[i])
                        continue
                    live[i] = judge.observe(tracks[i], marks[i], now, frame=rgb)
                    if str(live[i].verdict) != "pending":
                        self.continuity.freeze(tracks[i])  # the face that earned the verdict is the reference
            if sampled:
                self._watch_rate(judge.rate, now)
        matches: list[FaceMatch | None] = [None] * len(faces)
        observed: list[Observation] = []
        if good:
            gallery = self.gallery()
            thr = self.threshold()
            for i in good:
                emb = emb_of[i]
                own = candidate(gallery, emb)  # one 1:N search per face per frame, shared with the decision
                matches[i] = FaceMatch(own.person if own.score >= thr else None, own.score, faces[i].area)
                weight = float(np.clip(good[i] / (4.0 * max(self.quality.min_sharpness, 1.0)), 0.25, 1.0))
                observed.append(Observation(tracks[i], emb, faces[i].area, weight, live[i], own))
        for g in gates:
            if g is not None:
                self.stats.gate_failures[g] = self.stats.gate_failures.get(g, 0) + 1
        decision = self.engine.observe(observed, extra_faces=len(faces) - len(observed))
        latency_ms = (time.perf_counter() - t0) * 1000.0
        self._emit_alarms()
        if decision is not None:
            self._act(decision, latency_ms)
            if (decision.granted and decision.track is not None and self.liveness is not None
                    and self.engine.config.liveness):
                # one live verdict opens the door once: whatever that track shows next is judged afresh
                self.liveness[1].spend(decision.track, now, self.engine.config.regrant_after_s)
        self.stats.frames_processed += 1
        self.stats.latency_ms_sum += latency_ms
        return FrameResult(frame, faces, gates, matches, decision, latency_ms, self.door.unlocked, tracks, live)

    def _act(self, d: Decision, latency_ms: float) -> None:
        fields = {"person": d.person or "unknown", "score": round(d.score, 4), "latency_ms": round(latency_ms, 2),
                  "reason": d.reason, **d.values}
        fields.setdefault("threshold", round(self.threshold(), 4))
        if d.granted:
            self.stats.granted += 1
            self.door.unlock("granted", d.person)
            self.events.emit("access_granted", fields)
            if d.duress:
                self.events.emit("duress", {"person": d.person, "track": d.track})
                logger.warning("duress PIN entered by %s", d.person)
            logger.info("access granted to %s (score %.3f)", d.person, d.score)
        else:
            self.stats.denied += 1
            self.events.emit("access_denied", fields)
            if d.reason == "presentation_attack":
                self.stats.presentation_attacks += 1
                self.events.emit("presentation_attack", {k: v for k, v in fields.items() if k != "person"})
            logger.info("access denied: %s (score %.3f)", d.reason, d.score)

    def _watch_rate(self, rate: Any, now: float) -> None:
        """Publish the landmark rate the faces really get, and say once when it falls below the floor the
        liveness thresholds were measured down to (and once when it is back)."""
        hz = rate.hz
        if hz is None:
            return
        self.stats.liveness_hz = round(hz, 1)
        crossed = rate.crossed(now)
        if crossed is None:
            return
        if crossed:
            logger.warning("faces get %.1f landmark frames per second, below liveness.min_sample_hz (%g): real "
                           "people answering the prompt are let in less often (2 of 10 at 5 a second in the "
                           "self-test, 7 at 15). The rate is the camera's (halved from 17 to 29 fps by sample_hz: use a "
                           "15 or 30 fps mode) or the loop's own (mean_frame_ms in the status: vision.threads up to "
                           "the cores, nothing else on the CPU, a faster board)", hz, rate.floor)
        else:
            logger.info("landmark rate back to %.1f per second per face", hz)
        self.events.emit("liveness_rate", {"liveness_hz": round(hz, 1), "min_sample_hz": rate.floor,
                                           "below": crossed})

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self.watchdog_s is not None and now - self._last_watchdog >= self.watchdog_s:
            if not self.healthy():
                # a stalled relock timer, a frozen camera past its grace or a dead sync thread: let systemd restart us
                if not self._starving:
                    self._starving = True
                    logger.error("a part the door depends on is unhealthy: no longer feeding the systemd watchdog")
                    self.notifier.status("unhealthy: not feeding the watchdog")
                return
            self._starving = False
            self.notifier.watchdog()
            self._last_watchdog = now

    def _end(self, ended: list[int], counted: bool = True) -> None:
        """These tracks are gone. What the judge hands back is a denied approach (``DecisionEngine.abandon``,
        which counts no approach twice): a FLAT verdict, as ``presentation_attack`` (one the decision never
        saw on a good frame would go uncounted), and a track that left while prompted, before a verdict, as
        ``challenge_abandoned`` unless ``counted`` is False: the camera, not the face, went away."""
        if self.liveness is not None:
            for t in ended:
                left = self.liveness[1].end(t)
                if left is None:
                    continue
                if str(left.verdict) == "flat":
                    reason, values = "presentation_attack", liveness_values(left)
                elif counted:
                    reason, values = "challenge_abandoned", dict(left.values)
                else:
                    continue
                # before the engine and the continuity check forget the track's faces
                denied = self.engine.abandon(t, self.continuity.mean(t), values, reason=reason)
                if denied is not None:
                    self._act(denied, 0.0)
            self._emit_alarms()
        self.engine.end(ended)
        self.continuity.end(ended)

    def _emit_alarms(self) -> None:
        for kind, fields in self.engine.alarms:
            self.events.emit(kind, fields)
        self.engine.alarms.clear()

    def _keep_face(self, tracks: list[int], i: int, embedding: F32, now: float) -> None:
        """Face ``i``'s track goes on only while it shows the face it started with; somebody else's face
        (a print raised in front of a real one) gets a new track: its live verdict and evidence start anew."""
        old = tracks[i]
        sim = self.continuity.changed(old, embedding)
        if sim is None:
            return
        tracks[i] = self.tracker.split(old)
        self._end([old])
        self.continuity.add(tracks[i], embedding)
        self.stats.face_changes += 1
        self._face_changes_unreported += 1
        # at most one event (and one warning) per deny_event_interval_s: somebody swapping faces on purpose
        # must not flood the outbox or the log; the changes in between are counted in the next one
        if self._face_event_allowed(now):
            logger.warning("track %d: the face changed (cosine %.3f to the track's own): restarted as track %d",
                           old, sim, tracks[i])
            self.events.emit("face_changed", {"track": old, "new_track": tracks[i], "similarity": round(sim, 4),
                                              "changes": self._face_changes_unreported})
            self._face_changes_unreported = 0
        else:
            logger.debug("track %d: the face changed (cosine %.3f): restarted as track %d", old, sim, tracks[i])

    def _face_event_allowed(self, now: float) -> bool:
        if self._face_events is None:
            interval = self.engine.config.deny_event_interval_s
            self._face_events = TokenBucket(1.0 / interval if interval > 0 else math.inf, 1, now)
        return self._face_events.take(now)

    def _report_face_changes(self, now: float) -> None:
        """Changes held back by the event interval are reported once it has passed, even with no new one."""
        if self._face_changes_unreported and self._face_event_allowed(now):
            self.events.emit("face_changed", {"changes": self._face_changes_unreported})
            self._face_changes_unreported = 0

    def _forget_tracks(self) -> None:
        self._end(self.tracker.reset(), counted=False)

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
                        self._forget_tracks()
                        self.notifier.status("camera lost; door locked")
                    was_healthy = healthy
                    if self.liveness is not None:
                        self.liveness[1].no_frame()  # a display that reconnected hears what is asked now, camera down or not
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
        finally:
            self.close()  # the worker thread ends with the loop

    def close(self) -> None:
        """End FaceMesh's worker thread, if one started (``run`` does this when it returns; a caller of
        ``process`` calls it when done; a later ``process`` starts another)."""
        if self._mesh is not None:
            self._mesh.close()
