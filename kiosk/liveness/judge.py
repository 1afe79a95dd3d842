"""The liveness judge: per track, passive flatness first, then (in challenge mode) a prompted turn."""

from __future__ import annotations

import logging
import random
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from . import geometry as g
from .challenge import Challenge, TurnState, choose_direction
from .cues import Cue, LivenessResult, Observation, Verdict
from .flatness import FlatnessCue
from .prompters import Prompter
from .rate import SampleRate
from .settings import LivenessConfig

logger = logging.getLogger(__name__)

SPENT = "spent"  # the reason of a pending verdict after a grant used the track's live one


@dataclass
class _TrackState:
    first_seen: float
    last_yaw: float | None = None
    yaws: deque[float] = field(default_factory=lambda: deque(maxlen=3))  # median of 3: one bad mesh is no turn
    challenge: Challenge | None = None
    attempts: int = 0
    final: LivenessResult | None = None
    values: dict[str, float] = field(default_factory=dict)
    last_sample: float | None = None  # when this track's landmarks last ran
    last: LivenessResult | None = None
    turn_seen: bool = False
    broken: bool = False  # a frame since the last sample could not sample this face: no rate interval
    resting_until: float | None = None  # a grant spent the verdict: nothing is judged before this


class LivenessJudge:
    """Composes the cues. LIVE needs the flatness cue to find parallax (in challenge mode, on the
    frames of a turn made in the prompted direction when a prompt was needed) and every other
    required cue to agree; any cue can deny. A track keeps its final verdict until ``end``, or until
    a grant spends it (``spend``): one live verdict lets the door open once.

    Mode ``off`` answers LIVE (reason ``liveness_off``) without looking: the caller warns at start.
    """

    def __init__(self, config: LivenessConfig, clock: Callable[[], float], prompter: Prompter,
                 rng: random.Random | None = None, extra_cues: Sequence[Cue] = ()) -> None:
        self.config = config
        self.clock = clock
        self.prompter = prompter
        self.rng = rng if rng is not None else random.SystemRandom()
        self.flatness = FlatnessCue(config)
        self.extra_cues = list(extra_cues)
        self._tracks: dict[int, _TrackState] = {}
        self._prompting: int | None = None  # the track whose prompt is showing
        self._repeat = threading.Event()  # a display reconnected: say the prompt again on the loop thread
        self.rate = SampleRate(config.rate_floor)  # landmark frames per second per face, as the door runs

    def due(self, track_id: int, now: float) -> bool:
        """Whether this frame should be sampled for ``track_id``: landmarks run at ``sample_hz`` per face.

        The thresholds mean what they were calibrated to mean only at that rate (jitter between
        neighbouring frames, evidence frames per second), and FaceMesh is skipped on the frames in
        between. A track with a final verdict needs no more landmarks.
        """
        if self.config.mode == "off":
            return False
        state = self._tracks.get(track_id)
        if state is None:
            return True
        if state.final is not None or (state.resting_until is not None and now < state.resting_until):
            return False
        hz = self.config.sample_hz
        # 0.9 of a period: at 15, 30 or 60 fps every sample is 1/15 s after the last (the jitter
        # measure assumes even spacing); at other rates evenly at a little under sample_hz.
        return hz <= 0 or state.last_sample is None or now - state.last_sample >= 0.9 / hz

    def in_view(self, track_ids: Iterable[int], now: float | None = None) -> None:
        """Once per frame: the tracks whose faces could be sampled on it (detected, and through the gates
        the cues need). Any other track the judge holds has a break in its landmark sequence (a face
        too small or cut off for a frame, a missed detection): the interval across it is the face's, not
        the door's, and stays out of the landmark rate (``rate``), which must only say what the camera
        and the loop give."""
        sampleable = set(track_ids)
        for track_id, state in self._tracks.items():
            if track_id not in sampleable:
                state.broken = True
                # A prompted face that cannot be judged (too small, cut off, not detected) still runs out
                # of time: its prompt must not stay lit for whoever walks up next.
                ch = state.challenge
                if (now is not None and ch is not None and state.final is None and ch.expired(now)):
                    result = LivenessResult(Verdict.FLAT, "challenge_timeout", ch.values(now))
                    self._finish(track_id, state, result)
                    state.last = result
        self._serve_repeat()

    def no_frame(self) -> None:
        """Once per pass of the loop that got no frame (the camera is late, or lost and its tracks
        forgotten): a display that reconnected meanwhile is told what is asked now (``repeat_prompt``),
        without waiting for a frame that may not come for long. With the camera lost and its tracks
        forgotten that is a clear, so a prompt whose withdrawal the display missed does not stay lit."""
        self._serve_repeat()

    def current(self, track_id: int) -> LivenessResult:
        """The track's latest result, for the frames between two samples."""
        if self.config.mode == "off":
            return LivenessResult(Verdict.LIVE, "liveness_off", {})
        state = self._tracks.get(track_id)
        if state is None or state.last is None:
            return LivenessResult(Verdict.PENDING, "waiting_motion", {})
        return state.last

    def observe(self, track_id: int, landmarks: npt.NDArray[np.float32] | None, now: float | None = None,
                **extra: object) -> LivenessResult:
        now = self.clock() if now is None else now
        if self.config.mode == "off":
            return LivenessResult(Verdict.LIVE, "liveness_off", {})
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _TrackState(first_seen=now)
        if state.final is not None:
            return state.final
        if state.resting_until is not None:
            if now < state.resting_until:
                return state.last if state.last is not None else LivenessResult(Verdict.PENDING, SPENT, {})
            state.resting_until = None  # judged afresh from here, as a new approach
        if state.last_sample is not None and not state.broken:
            self.rate.add(now - state.last_sample)
        state.last_sample, state.broken = now, False
        obs = Observation(now, landmarks, extra)
        result = self._geometry(track_id, state, obs)
        if result.verdict is not Verdict.FLAT:
            result = self._combine(track_id, obs, result)
        if result.verdict is not Verdict.PENDING:
            self._finish(track_id, state, result)
        state.last = result
        return result

    def spend(self, track_id: int, now: float, rest_s: float) -> None:
        """A grant used this track's live verdict. The face still in view (the person walking through,
        or a print of them raised where they stood) is judged afresh, as a new approach, once
        ``rest_s`` has passed (the decision's ``regrant_after_s``: it grants no track again sooner);
        until then no landmarks run, no prompt shows, and the verdict is pending (``spent``)."""
        if self.config.mode == "off":
            return
        self._forget_cues(track_id)
        until = now + rest_s
        self._tracks[track_id] = _TrackState(first_seen=until, resting_until=until,
                                             last=LivenessResult(Verdict.PENDING, SPENT, {}))

    def end(self, track_id: int) -> LivenessResult | None:
        """The track left the view: forget it and withdraw its prompt. Returns what the loop counts
        as a denied approach, else None: the track's FLAT verdict (the decision may never have seen it on
        a frame that passed the gates: reached while the face was too small, beside a second face, in a
        cooldown; the decision does not count one twice), or, when it left while prompted and before any
        verdict (an abandoned challenge: leaving must not be a free new draw), a PENDING result
        ``challenge_abandoned`` with the prompt's direction and age."""
        state = self._tracks.pop(track_id, None)
        left = None
        if state is not None and state.final is not None and state.final.verdict is Verdict.FLAT:
            left = state.final
        elif state is not None and state.challenge is not None and state.final is None:
            left = LivenessResult(Verdict.PENDING, "challenge_abandoned",
                                  {"challenge_left": float(state.challenge.direction == "left"),
                                   "challenge_s": round(self.clock() - state.challenge.started, 3)})
            logger.info("track %d: left the view while prompted, before a verdict", track_id)
        self._forget_cues(track_id)
        return left

    def repeat_prompt(self) -> None:
        """Ask for what the prompter should show now to be said again (a display or broker reconnected).

        Safe from any thread (the MQTT network thread calls it): it only sets a flag, and the loop thread
        says it at its next pass, with a frame (``in_view``) or without one (``no_frame``: the camera is
        down). The prompter is driven from that one thread, so a prompt the loop withdraws meanwhile cannot
        be re-shown after its withdrawal."""
        self._repeat.set()

    def _serve_repeat(self) -> None:
        if self._repeat.is_set():
            self._repeat.clear()
            self._say_again()

    def _say_again(self) -> None:
        """The prompt of the track prompted now; a clear when there is none, or its time ran out (with no
        frame to time it out on, ``no_frame``: the person may have left)."""
        state = None if self._prompting is None else self._tracks.get(self._prompting)
        if (state is not None and state.challenge is not None and state.final is None
                and not state.challenge.expired(self.clock())):
            self.prompter.prompt(state.challenge.direction)
        else:
            self.prompter.clear()

    def _forget_cues(self, track_id: int) -> None:
        """Every cue's evidence on the track, and its prompt if one is showing."""
        self.flatness.reset(track_id)
        for cue in self.extra_cues:
            cue.reset(track_id)
        if self._prompting == track_id:
            self._prompting = None
            self.prompter.clear()

    def _geometry(self, track_id: int, state: _TrackState, obs: Observation) -> LivenessResult:
        flat = self.flatness.observe(track_id, obs)
        values = dict(flat.values)
        yaw = None
        rig = obs.rigid
        if rig is not None and not values.pop("jumped", 0.0):  # a mesh failure is no pose
            state.yaws.append(g.yaw_pitch(rig)[0])
            yaw = statistics.median(state.yaws)
        if state.challenge is None:
            if flat.verdict is not Verdict.PENDING:
                return flat
            if yaw is not None:
                state.last_yaw = yaw
            if self.config.mode == "challenge" and obs.now - state.first_seen >= self.config.challenge_after_s:
                if self._prompting is not None and self._prompting != track_id:
                    # one prompt at a time: a second face waits, or the first would see the other's direction
                    return LivenessResult(Verdict.PENDING, "waiting_prompt", values)
                direction = self._start_challenge(track_id, state, obs.now)
                values |= {"challenge_left": float(direction == "left")}
                return LivenessResult(Verdict.PENDING, "challenge_pending", values)
            return LivenessResult(Verdict.PENDING, flat.reason, values)
        ch = state.challenge
        turn = ch.observe(obs.now, yaw)
        if turn is TurnState.TURNED and not state.turn_seen:
            state.turn_seen = True  # the prompted turn: its parallax may be smaller than a passive one must be
            self.flatness.lower_threshold(track_id, min(self.config.challenge_live_residual,
                                                        self.config.min_live_residual))
        values |= ch.values(obs.now)
        if turn is TurnState.WRONG:
            return LivenessResult(Verdict.FLAT, "wrong_direction", values)
        if flat.verdict is Verdict.FLAT:
            return LivenessResult(Verdict.FLAT, flat.reason, values)
        if turn is TurnState.TURNED and flat.verdict is Verdict.LIVE:
            return LivenessResult(Verdict.LIVE, "challenge_parallax", values)
        if ch.expired(obs.now):
            return LivenessResult(Verdict.FLAT, "challenge_timeout", values)
        return LivenessResult(Verdict.PENDING, "challenge_pending", values)

    def _start_challenge(self, track_id: int, state: _TrackState, now: float) -> str:
        direction = choose_direction(self.rng)
        state.attempts += 1
        state.challenge = Challenge(direction, now, self.config.challenge_timeout_s, self.config.min_turn,
                                    self.config.camera_mirrored, baseline=state.last_yaw)
        self.flatness.restart(track_id)  # the verdict now rests on the frames of the turn (planar pairs stay)
        self._prompting = track_id
        logger.info("track %d: no liveness verdict after %.1f s, prompting a turn to the %s",
                    track_id, now - state.first_seen, direction)
        self.prompter.prompt(direction)
        return direction

    def _combine(self, track_id: int, obs: Observation, geometric: LivenessResult) -> LivenessResult:
        """Other cues can deny at any time; a LIVE also needs every required one to vote LIVE."""
        if not self.extra_cues:
            return geometric
        required_pending = False
        values = dict(geometric.values)
        for cue in self.extra_cues:
            r = cue.observe(track_id, obs)
            values |= {f"{cue.name}.{k}": v for k, v in r.values.items()}
            if r.verdict is Verdict.FLAT:
                return LivenessResult(Verdict.FLAT, f"{cue.name}:{r.reason}", values)
            if cue.required and r.verdict is not Verdict.LIVE:
                required_pending = True
        if geometric.verdict is Verdict.LIVE and required_pending:
            return LivenessResult(Verdict.PENDING, "waiting_cues", values)
        return LivenessResult(geometric.verdict, geometric.reason, values)

    def _finish(self, track_id: int, state: _TrackState, result: LivenessResult) -> None:
        state.final = result
        if self._prompting == track_id:
            self._prompting = None
            self.prompter.clear()
        logger.info("track %d: liveness %s (%s)", track_id, result.verdict, result.reason)
