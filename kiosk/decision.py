"""Access decisions per approach (pure logic, injected clock).

Evidence is gathered per track (one face followed across frames, see
``kiosk.track``): the embeddings of the track's recent frames are fused into
one probe (weighted by quality), and only that probe is matched. A grant
needs, for the same track: K frames within a window, a fused probe whose best
person clears the threshold *and* beats the second best by a margin, a live
verdict from the liveness cues (when they are on), a valid enrollment, and
the second factor when the door asks for one. A second face in view follows a
policy (deny by default). Denied approaches count towards a lockout of that
face only (``kiosk.lockout``); a person who was let in is not let in again
while they stay in view. Nothing here sleeps or reads the wall clock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from kiosk.lockout import FaceLockout, LockoutConfig

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


class MultiFacePolicy(StrEnum):
    DENY = "deny"  # more than one face in view: never grant
    LARGEST = "largest"  # decide on the largest face, ignore the rest


@dataclass(frozen=True)
class DecisionConfig:
    frames_to_grant: int = 3
    window_s: float = 2.0
    multi_face: MultiFacePolicy = MultiFacePolicy.DENY
    cooldown_s: float = 5.0
    lockout_attempts: int = 5
    lockout_window_s: float = 60.0
    lockout_s: float = 60.0
    deny_event_interval_s: float = 10.0
    margin: float = 0.05  # the best person must beat the second best by this much (cosine)
    fuse_frames: int = 15  # the probe fuses this many recent frames of the track
    same_face: float = 0.5  # cosine at which two denied approaches are the same face
    face_change: float = 0.5  # below this cosine to its track's earlier frames, a face is somebody else's
    lockout_ceiling: int = 20  # denied approaches of all faces within the window that raise an alarm
    regrant_after_s: float = 300.0  # a person still in view after a grant is let in again only after this
    liveness: bool = True  # a live verdict is needed for a grant
    claim_timeout_s: float = 20.0  # a PIN or card entered waits this long for its face


class Liveness(Protocol):
    """What the decision reads of a liveness result (``kiosk.liveness.LivenessResult``)."""

    @property
    def verdict(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def values(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class Candidate:
    """Who the fused probe is closest to: the best person and the best score of anybody else."""

    person: str | None
    score: float
    second: float


@dataclass(frozen=True)
class Observation:
    """One face of one frame that passed the quality gates."""

    track: int
    embedding: F32  # unit vector
    area: float = 0.0
    weight: float = 1.0  # quality weight of this frame in the fused probe
    liveness: Liveness | None = None  # None: no result for this frame
    candidate: Candidate | None = None  # this frame's own match, when the caller already made it


@dataclass(frozen=True)
class Claim:
    """An identity claimed at a reader: a user code + PIN, or a card (already checked by ``kiosk.factor``)."""

    person: str
    kind: str  # "pin" | "card"
    at: float
    duress: bool = False


@dataclass(frozen=True)
class Decision:
    granted: bool
    person: str | None
    score: float
    # granted | unknown | ambiguous | multiple_faces | not_valid_now | locked_out | presentation_attack
    # | second_factor_mismatch
    reason: str
    track: int | None = None
    second: float | None = None
    threshold: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    duress: bool = False


Matcher = Callable[[F32], Candidate]
Verifier = Callable[[F32, str], float]  # probe, person -> score against that person only (1:1)


@dataclass
class _Track:
    first: float
    frames: deque[tuple[float, F32, float, str | None]] = field(default_factory=deque)  # t, embedding, weight, top-1
    counted: bool = False  # this approach already counted as one denied attempt
    granted_at: float | None = None
    flat: bool = False  # a FLAT verdict of this track was denied as presentation_attack


def liveness_values(live: Liveness) -> dict[str, Any]:
    """What a presentation_attack denial reports of a FLAT verdict: its reason and cue values."""
    return {"liveness_reason": live.reason, **{k: round(float(v), 4) for k, v in live.values.items()}}


def fuse(rows: list[tuple[F32, float]]) -> F32:
    """Quality-weighted mean of unit embeddings, normalised."""
    total = np.zeros_like(rows[0][0], dtype=np.float64)
    for emb, w in rows:
        total += float(max(w, 1e-6)) * np.asarray(emb, np.float64)
    norm = float(np.linalg.norm(total))
    return (total / norm if norm > 0 else total).astype(np.float32)


class DecisionEngine:
    """Feed it the observations of every processed frame; it returns a Decision when one is made.

    ``match`` finds the closest people to a fused probe; ``threshold`` gives the
    cosine the door needs now (it depends on how many templates are held);
    ``verify`` scores a probe against one claimed person (1:1) at ``threshold_1to1``.
    Left out, the loop binds ``match`` and ``threshold`` to its own gallery and threshold.
    """

    def __init__(self, config: DecisionConfig, clock: Callable[[], float], match: Matcher | None = None,
                 threshold: Callable[[], float] | None = None, *, is_valid: Callable[[str, float], bool] | None = None,
                 second_factor: Callable[[float], bool] | None = None, verify: Verifier | None = None,
                 threshold_1to1: Callable[[], float] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.match: Matcher = match or (lambda probe: Candidate(None, -1.0, -1.0))
        self.threshold: Callable[[], float] = threshold or (lambda: 1.0)
        # the loop binds its own gallery and threshold to whatever was not given here
        self.bound = match is not None
        self.has_threshold = threshold is not None
        self.has_threshold_1to1 = threshold_1to1 is not None
        self.is_valid = is_valid or (lambda person, now: True)
        self.second_factor = second_factor or (lambda now: False)
        self.verify = verify
        self.threshold_1to1: Callable[[], float] = threshold_1to1 or self.threshold
        self.lockout = FaceLockout(LockoutConfig(config.lockout_attempts, config.lockout_window_s, config.lockout_s,
                                                 config.same_face, config.lockout_ceiling))
        self._tracks: dict[int, _Track] = {}
        self._cooldown_until = float("-inf")
        self._last_deny_event: dict[str, float] = {}  # per reason
        self._claim: Claim | None = None
        self._claim_lock = threading.Lock()  # claims arrive from the reader thread
        self.alarms: list[tuple[str, dict[str, Any]]] = []  # taken by the loop and emitted as events

    def end(self, tracks: list[int]) -> None:
        """These tracks left the view."""
        for t in tracks:
            self._tracks.pop(t, None)

    def abandon(self, track: int, face: F32 | None, values: dict[str, Any] | None = None, *,
                reason: str = "challenge_abandoned") -> Decision | None:
        """``track`` left the view while its liveness challenge was running: a denied approach
        (``challenge_abandoned``), counted towards its face's lockout like a timeout, so that stepping
        away and back is no free new draw of the prompted direction. With ``reason``
        ``presentation_attack`` (``values``: ``liveness_values`` of the verdict), the track left with
        a FLAT verdict this engine has not denied (reached on frames that failed the gates, beside a
        second face, during a cooldown): denied and counted the same way. ``face``: the mean of every
        embedding the track showed (the loop's continuity reference), which counts when this engine
        kept no frames of it. Nothing for a track that was never embedded, nor for one that was granted
        or already denied (a FLAT verdict: already denied as ``presentation_attack``); an approach
        counts once, so a FLAT verdict on an approach already counted is reported, not counted again."""
        st = self._tracks.get(track)
        flat = reason == "presentation_attack"
        if flat and st is not None and st.granted_at is not None:
            st = None  # judged afresh after the grant spent its verdict: a new approach
        if st is not None and (st.flat if flat else (st.counted or st.granted_at is not None)):
            return None
        probe = fuse([(e, w) for _, e, w, _ in st.frames]) if st is not None and st.frames else face
        if probe is None:
            return None
        cand = self.match(probe)
        thr = self.threshold()
        person = cand.person if cand.person is not None and cand.score >= thr and not flat else None
        fields = {"track": track, "threshold": round(thr, 4), **(values or {})}
        st = st or _Track(self.clock())
        st.flat = st.flat or flat
        return self._deny(self.clock(), person, 0.0 if flat else cand.score, reason, st, probe, track, fields)

    def claim(self, claim: Claim) -> None:
        """A PIN or card was presented: the next approach is compared 1:1 with this person."""
        with self._claim_lock:
            self._claim = claim

    def _drop_claim(self, claim: Claim) -> None:
        """Forget ``claim`` once used, unless a newer one has arrived meanwhile."""
        with self._claim_lock:
            if self._claim is claim:
                self._claim = None

    def awaiting_second_factor(self) -> bool:
        return self.second_factor(self.clock()) and self._claim is None

    def observe(self, faces: list[Observation], extra_faces: int = 0) -> Decision | None:
        """``faces``: the faces that passed the quality gates; ``extra_faces``: others in view."""
        now = self.clock()
        with self._claim_lock:
            expired = self._claim if self._claim is not None and now - self._claim.at > self.config.claim_timeout_s \
                else None
            if expired is not None:
                self._claim = None
        if expired is not None:
            logger.info("the %s claim for %s expired without a matching face", expired.kind, expired.person)
        if not faces:
            return None
        if now < self._cooldown_until:
            return None
        if len(faces) + extra_faces > 1 and self.config.multi_face is MultiFacePolicy.DENY:
            for f in faces:
                st = self._tracks.get(f.track)
                if st is not None:
                    # evidence starts over once the other person has gone; a grant still counts against a
                    # re-grant, and an approach already counted (or denied as FLAT) is not counted again
                    st.frames.clear()
            return self._deny(now, None, 0.0, "multiple_faces", None)
        face = max(faces, key=lambda f: f.area)
        st = self._tracks.setdefault(face.track, _Track(now))
        if st.granted_at is not None:
            if now - st.granted_at < self.config.regrant_after_s:
                return None  # let in already and still in view: no loitering re-grants
            st.granted_at, st.counted, st.flat = None, False, False
            st.frames.clear()
        own = face.candidate if face.candidate is not None else self.match(face.embedding)
        st.frames.append((now, face.embedding, face.weight, own.person))
        while len(st.frames) > max(self.config.fuse_frames, self.config.frames_to_grant):
            st.frames.popleft()
        recent = list(st.frames)[-self.config.frames_to_grant:]
        if len(recent) < self.config.frames_to_grant or now - recent[0][0] > self.config.window_s or now < recent[0][0]:
            return None
        probe = fuse([(e, w) for _, e, w, _ in st.frames])
        live = face.liveness
        if live is not None and live.verdict == "flat":
            st.flat = True
            return self._deny(now, None, 0.0, "presentation_attack", st, probe, face.track,
                              values=liveness_values(live))
        if self.lockout.locked(probe, now):
            return self._deny(now, None, 0.0, "locked_out", None, track=face.track)
        with self._claim_lock:
            claim = self._claim
        if claim is not None:
            return self._one_to_one(now, st, face, probe, claim, live)
        cand = self.match(probe)
        thr = self.threshold()
        base = {"track": face.track, "second": round(cand.second, 4), "threshold": round(thr, 4)}
        if cand.person is None or cand.score < thr:
            return self._deny(now, None, cand.score, "unknown", st, probe, face.track, base)
        if cand.score - cand.second < self.config.margin or any(p != cand.person for *_, p in recent):
            # too close to a second person, or the last K frames on their own point at different people
            return self._deny(now, cand.person, cand.score, "ambiguous", st, probe, face.track, base)
        if not self.is_valid(cand.person, now):
            return self._deny(now, cand.person, cand.score, "not_valid_now", st, probe, face.track, base)
        if self.config.liveness and (live is None or live.verdict != "live"):
            return None  # recognised; waiting for the liveness verdict (a challenge may be running)
        if self.second_factor(now):
            return None  # recognised and live; this door wants a PIN or card now
        return self._grant(now, st, cand.person, cand.score, probe, face.track, base, live)

    def _one_to_one(self, now: float, st: _Track, face: Observation, probe: F32, claim: Claim,
                    live: Liveness | None) -> Decision | None:
        score = self.verify(probe, claim.person) if self.verify is not None else -1.0
        thr = self.threshold_1to1()
        base = {"track": face.track, "threshold": round(thr, 4), "claim": claim.kind}
        if score < thr:
            self._drop_claim(claim)
            return self._deny(now, claim.person, score, "second_factor_mismatch", st, probe, face.track, base)
        if not self.is_valid(claim.person, now):
            self._drop_claim(claim)
            return self._deny(now, claim.person, score, "not_valid_now", st, probe, face.track, base)
        if self.config.liveness and (live is None or live.verdict != "live"):
            return None
        self._drop_claim(claim)
        return self._grant(now, st, claim.person, score, probe, face.track, base, live, duress=claim.duress)

    def _grant(self, now: float, st: _Track, person: str, score: float, probe: F32, track: int,
               base: dict[str, Any], live: Liveness | None, duress: bool = False) -> Decision:
        self._cooldown_until = now + self.config.cooldown_s
        st.granted_at = now
        self.lockout.forgive(probe)
        values = dict(base)
        if live is not None:
            values.update({k: round(float(v), 4) for k, v in live.values.items()})
        return Decision(True, person, score, "granted", track, base.get("second"), base.get("threshold"), values,
                        duress=duress)

    def _deny(self, now: float, person: str | None, score: float, reason: str, st: _Track | None,
              probe: F32 | None = None, track: int | None = None, values: dict[str, Any] | None = None
              ) -> Decision | None:
        values = dict(values or {})
        if st is not None and probe is not None and not st.counted:
            st.counted = True
            locked, alarm = self.lockout.deny(probe, now)
            if locked:
                self.alarms.append(("lockout", {"seconds": self.config.lockout_s, "reason": reason}))
            if alarm:
                self.alarms.append(("lockout_ceiling", {"denied": self.config.lockout_ceiling,
                                                        "window_s": self.config.lockout_window_s}))
        if now - self._last_deny_event.get(reason, float("-inf")) < self.config.deny_event_interval_s:
            return None
        self._last_deny_event[reason] = now
        return Decision(False, person, score, reason, track, values.get("second"), values.get("threshold"), values)
