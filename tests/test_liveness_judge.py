"""The liveness judge on synthetic landmark sequences, with an injected clock and random generator."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kiosk.liveness.challenge import Challenge, TurnState, choose_direction, turn_sign
from kiosk.liveness.cues import LivenessResult, Observation, Verdict
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from tests import liveness_synth as synth
from tests.clock import FakeClock

DT = 1 / 15  # frames at 15 fps


class RecordingPrompter:
    """A prompter that remembers what it was asked to show."""

    def __init__(self) -> None:
        self.shown: list[str | None] = []
        self.closed = False

    def prompt(self, direction: str) -> None:
        self.shown.append(direction)

    def clear(self) -> None:
        self.shown.append(None)

    def close(self) -> None:
        self.closed = True


def _judge(mode: str = "challenge", seed: int = 0, **kw: object) -> tuple[LivenessJudge, FakeClock, RecordingPrompter]:
    clock, prompter = FakeClock(), RecordingPrompter()
    return LivenessJudge(LivenessSettings(mode=mode, **kw), clock, prompter, random.Random(seed)), clock, prompter


def _feed(judge: LivenessJudge, clock: FakeClock, frames: list[np.ndarray | None], track: int = 1) -> list[LivenessResult]:
    out = []
    for f in frames:
        out.append(judge.observe(track, f))
        clock.advance(DT)
    return out


def _still(flat: bool, n: int, seed: int = 5) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    m = synth.model(flat)
    return [synth.pose(m, noise_px=0.3, rng=rng) for _ in range(n)]


def _turn(flat: bool, yaw_to: float, n: int = 15, pitch_to: float = 0.0, start: float = 0.0,
          hold: int = 6) -> list[np.ndarray | None]:
    """A turn over ``n`` frames, then held for ``hold`` frames."""
    m = synth.model(flat)
    rng = np.random.default_rng(9)
    steps = [min(k, n - 1) / (n - 1) for k in range(n + hold)]
    return [synth.pose(m, start + (yaw_to - start) * s, pitch_to * s, noise_px=0.3, rng=rng) for s in steps]


def _direction_of(seed: int) -> str:
    return choose_direction(random.Random(seed))


def _seeds() -> tuple[int, int]:
    """A seed whose first draw is left and one whose first draw is right."""
    left = next(s for s in range(100) if _direction_of(s) == "left")
    right = next(s for s in range(100) if _direction_of(s) == "right")
    return left, right


def test_plane_moved_in_3d_scores_flat() -> None:
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, _turn(True, 40, pitch_to=20))
    assert results[-1].verdict is Verdict.FLAT
    assert results[-1].reason == "flat_homography"
    assert all(r.verdict is not Verdict.LIVE for r in results)


def test_3d_head_turned_scores_live_from_parallax() -> None:
    judge, clock, prompter = _judge("passive")
    results = _feed(judge, clock, _turn(False, 30))
    assert results[-1].verdict is Verdict.LIVE
    assert results[-1].reason == "parallax"
    assert results[-1].values["residual"] >= LivenessSettings().min_live_residual
    assert prompter.shown == []


def test_little_motion_gives_no_verdict_and_passive_mode_never_prompts() -> None:
    judge, clock, prompter = _judge("passive")
    results = _feed(judge, clock, _still(False, 120) + _still(True, 60))
    assert {r.verdict for r in results} == {Verdict.PENDING}
    assert results[-1].reason == "waiting_motion"
    assert prompter.shown == []


def test_landmarks_none_is_no_evidence() -> None:
    judge, clock, _ = _judge("passive")
    frames = _turn(False, 30)
    holey: list[np.ndarray | None] = [f if k % 2 else None for k, f in enumerate(frames)]
    results = _feed(judge, clock, holey)
    assert {r.verdict for r in results} == {Verdict.PENDING}


def test_off_mode_answers_live_without_looking() -> None:
    judge, _clock, _ = _judge("off")
    assert judge.observe(1, None).verdict is Verdict.LIVE
    assert judge.observe(1, None).reason == "liveness_off"


def test_challenge_direction_comes_from_the_injected_generator() -> None:
    left, right = _seeds()
    for seed, expected in ((left, "left"), (right, "right")):
        judge, clock, prompter = _judge(seed=seed)
        results = _feed(judge, clock, _still(False, int(2.0 / DT) + 2))
        assert prompter.shown == [expected]
        assert results[-1].reason == "challenge_pending"


def test_no_prompt_before_challenge_after_s() -> None:
    judge, clock, prompter = _judge(challenge_after_s=3.0)
    _feed(judge, clock, _still(False, int(2.9 / DT)))
    assert prompter.shown == []


@pytest.mark.parametrize("which", ["left", "right"])
def test_turn_in_the_prompted_direction_by_a_3d_head_is_live(which: str) -> None:
    seed = _seeds()[0 if which == "left" else 1]
    judge, clock, prompter = _judge(seed=seed)
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    assert prompter.shown == [which]
    results = _feed(judge, clock, _turn(False, 30 * turn_sign(which)))
    assert results[-1].verdict is Verdict.LIVE
    assert results[-1].reason == "challenge_parallax"
    assert prompter.shown == [which, None]  # the prompt is withdrawn at the verdict


def test_challenge_timeout_is_flat() -> None:
    judge, clock, prompter = _judge(challenge_timeout_s=4.0)
    results = _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    assert results[-1].verdict is Verdict.PENDING
    results = _feed(judge, clock, _still(False, int(4.0 / DT) + 2))
    assert results[-1].verdict is Verdict.FLAT
    assert results[-1].reason == "challenge_timeout"
    assert prompter.shown[-1] is None


def test_challenge_times_out_even_when_the_face_gives_no_landmarks() -> None:
    judge, clock, _ = _judge(challenge_timeout_s=3.0)
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    results = _feed(judge, clock, [None] * int(3.0 / DT + 2))
    assert results[-1].verdict is Verdict.FLAT
    assert results[-1].reason == "challenge_timeout"


def test_turn_in_the_wrong_direction_is_flat() -> None:
    left, _ = _seeds()
    judge, clock, _ = _judge(seed=left)
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    results = _feed(judge, clock, _turn(False, 30 * turn_sign("right")))
    assert results[-1].verdict is Verdict.FLAT
    assert results[-1].reason == "wrong_direction"


def test_flat_picture_turned_in_the_prompted_direction_is_flat() -> None:
    left, _ = _seeds()
    judge, clock, _ = _judge(seed=left)
    _feed(judge, clock, _still(True, int(2.0 / DT) + 1))
    results = _feed(judge, clock, _turn(True, 40 * turn_sign("left"), pitch_to=20))
    results += _feed(judge, clock, _turn(True, 0, start=40 * turn_sign("left"), pitch_to=0))
    assert all(r.verdict is not Verdict.LIVE for r in results)
    assert results[-1].verdict is Verdict.FLAT


def test_flat_picture_never_turns_and_times_out() -> None:
    judge, clock, _ = _judge()
    results = _feed(judge, clock, _still(True, int(2.0 / DT) + int(5.0 / DT) + 3))
    assert all(r.verdict is not Verdict.LIVE for r in results)
    assert results[-1].reason == "challenge_timeout"


def test_a_track_keeps_its_final_verdict_until_it_ends() -> None:
    judge, clock, _ = _judge("passive")
    assert _feed(judge, clock, _turn(False, 30))[-1].verdict is Verdict.LIVE
    after = _feed(judge, clock, _turn(True, 40, pitch_to=20))
    assert {r.verdict for r in after} == {Verdict.LIVE}
    judge.end(1)
    again = _feed(judge, clock, _turn(True, 40, pitch_to=20))
    assert again[-1].verdict is Verdict.FLAT
    assert _feed(judge, clock, _turn(False, 30))[-1].verdict is Verdict.FLAT  # still flat until end()


def test_tracks_are_judged_apart() -> None:
    judge, clock, _ = _judge("passive")
    head, plane = _turn(False, 30), _turn(True, 40, pitch_to=20)
    last: dict[int, LivenessResult] = {}
    for a, b in zip(head, plane):
        last[1] = judge.observe(1, a)
        last[2] = judge.observe(2, b)
        clock.advance(DT)
    assert last[1].verdict is Verdict.LIVE
    assert last[2].verdict is Verdict.FLAT


def test_ending_a_prompted_track_withdraws_the_prompt() -> None:
    judge, clock, prompter = _judge()
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    judge.end(1)
    assert prompter.shown[-1] is None


class _Veto:
    """A cue that denies or abstains as told (standing in for a later infrared cue)."""

    name = "infrared"

    def __init__(self, verdict: Verdict, required: bool) -> None:
        self.verdict, self.required = verdict, required

    def observe(self, track_id: int, obs: Observation) -> LivenessResult:
        return LivenessResult(self.verdict, "test", {"seen": 1.0})

    def reset(self, track_id: int) -> None:
        pass


def test_another_cue_can_deny_but_never_grant_alone() -> None:
    clock, prompter = FakeClock(), RecordingPrompter()
    settings = LivenessSettings(mode="passive")
    denying = LivenessJudge(settings, clock, prompter, random.Random(0), extra_cues=[_Veto(Verdict.FLAT, False)])
    assert denying.observe(1, None).verdict is Verdict.FLAT
    granting = LivenessJudge(settings, clock, prompter, random.Random(0), extra_cues=[_Veto(Verdict.LIVE, True)])
    assert {r.verdict for r in _feed(granting, clock, _still(False, 30))} == {Verdict.PENDING}
    abstaining = LivenessJudge(settings, clock, prompter, random.Random(0), extra_cues=[_Veto(Verdict.PENDING, True)])
    results = _feed(abstaining, clock, _turn(False, 30))
    assert results[-1].verdict is Verdict.PENDING
    assert results[-1].reason == "waiting_cues"


def test_challenge_state_machine_direction_sign_and_baseline() -> None:
    ch = Challenge("left", started=0.0, timeout_s=5.0, min_turn=0.15)
    assert ch.observe(0.1, 0.02) is TurnState.WAITING
    assert ch.baseline == 0.02
    assert ch.observe(0.5, 0.1) is TurnState.WAITING
    assert ch.observe(0.7, 0.2) is TurnState.TURNED
    assert ch.observe(9.0, -1.0) is TurnState.TURNED  # decided states stick
    mirrored = Challenge("left", started=0.0, timeout_s=5.0, min_turn=0.15, mirrored=True, baseline=0.0)
    assert mirrored.observe(0.5, 0.2) is TurnState.WRONG
    with pytest.raises(ValueError, match="direction"):
        turn_sign("up")


def test_a_glitching_mesh_on_a_still_picture_is_no_evidence() -> None:
    judge, clock, _ = _judge("passive")
    frames = _still(True, 60)
    for k in range(5, 60, 7):  # every 7th frame the mesh throws the nose and brows an eye distance away
        f = np.array(frames[k])
        f[[1, 4, 5, 70, 63, 105, 66, 107]] += [60.0, 30.0, 0.0]
        frames[k] = f
    results = _feed(judge, clock, frames)
    assert {r.verdict for r in results} == {Verdict.PENDING}
    assert all("residual" not in results[k].values for k in range(5, 60, 7))
    # without the jump filter the same glitches would pass the print as live
    clock, prompter = FakeClock(), RecordingPrompter()
    lax = LivenessJudge(LivenessSettings(mode="passive", max_jump=1.0), clock, prompter, random.Random(0))
    assert any(r.verdict is Verdict.LIVE for r in _feed(lax, clock, frames))


def _jittery_picture(n: int, jitter_px: float, memory: float = 0.8, seed: int = 1) -> list[np.ndarray | None]:
    """A flat picture swaying a little, its landmarks jittering as FaceMesh's do on a screen's moire:
    the error of each landmark drifts from frame to frame (``memory``) rather than starting afresh."""
    rng = np.random.default_rng(seed)
    m = synth.model(True)
    err = np.zeros((468, 2))
    out: list[np.ndarray | None] = []
    for k in range(n):
        err = memory * err + np.sqrt(1 - memory**2) * rng.normal(0.0, jitter_px, err.shape)
        f = synth.pose(m, 6.0 * np.sin(k / 9.0))
        f[:, :2] += err
        out.append(f)
    return out


def test_landmark_jitter_on_a_flat_picture_is_not_read_as_parallax() -> None:
    frames = _jittery_picture(150, 4.0)
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, frames)
    assert all(r.verdict is not Verdict.LIVE for r in results)
    noise = results[-1].values["noise"]
    assert noise > 0.02  # the jitter is measured, in inter-ocular distances
    # the same frames without the noise floor: jitter passes for depth, which is what the floor stops
    lax, lax_clock, _ = _judge("passive", noise_factor=0.0)
    assert any(r.verdict is Verdict.LIVE for r in _feed(lax, lax_clock, frames))


def test_a_real_turn_stands_far_above_the_landmark_noise() -> None:
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, _turn(False, 30))
    assert results[-1].verdict is Verdict.LIVE
    assert results[-1].values["residual"] >= LivenessSettings().noise_factor * results[-1].values["noise"]


@pytest.mark.parametrize(("camera_fps", "expected_hz"), [(7.0, 7.0), (15.0, 15.0), (25.0, 12.5), (30.0, 15.0),
                                                         (60.0, 15.0)])
def test_landmarks_are_due_evenly_at_about_sample_hz_whatever_the_camera_rate(camera_fps: float,
                                                                             expected_hz: float) -> None:
    judge, _clock, _ = _judge("passive")
    frames = _still(False, int(4 * camera_fps))
    sampled = []
    for k, f in enumerate(frames):
        now = k / camera_fps
        if judge.due(1, now):
            sampled.append(now)
            judge.observe(1, f, now)
        else:
            assert judge.current(1).verdict is Verdict.PENDING
    gaps = np.diff(sampled)
    assert np.allclose(gaps, 1.0 / expected_hz)  # evenly: the jitter measure compares neighbours
    if camera_fps <= 15.0:
        assert len(sampled) == len(frames)  # the calibrated rate or slower: every frame


def test_no_landmarks_are_due_once_the_verdict_is_final_and_the_last_result_is_kept() -> None:
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, _turn(False, 30))
    assert results[-1].verdict is Verdict.LIVE
    assert not judge.due(1, clock())
    assert judge.current(1) == results[-1]
    assert judge.due(2, clock()) and judge.current(2).verdict is Verdict.PENDING  # a new track: due at once
    judge.end(1)
    assert judge.due(1, clock())


def test_sample_hz_zero_samples_every_frame() -> None:
    judge, _clock, _ = _judge("passive", sample_hz=0)
    for k, f in enumerate(_still(False, 30)):
        assert judge.due(1, k / 60.0)
        judge.observe(1, f, k / 60.0)


def _small_turn(yaw_to: float, noise_px: float = 0.1, n: int = 15, hold: int = 30) -> list[np.ndarray | None]:
    """An 18 degree turn gives a parallax of about 0.07 IOD: under the passive threshold (0.10)."""
    m, rng = synth.model(), np.random.default_rng(4)
    steps = [min(k, n - 1) / (n - 1) for k in range(n + hold)]
    return [synth.pose(m, yaw_to * s, noise_px=noise_px, rng=rng) for s in steps]


def _prompted_small_turn(**kw: object) -> tuple[list[LivenessResult], RecordingPrompter]:
    left, _ = _seeds()
    judge, clock, prompter = _judge(seed=left, **kw)
    _feed(judge, clock, _small_turn(0.0, n=2, hold=int(2.0 / DT)))
    assert prompter.shown == ["left"]
    results = _feed(judge, clock, _small_turn(18 * turn_sign("left"), hold=int(5.0 / DT)))
    return results, prompter


def test_a_prompted_turn_counts_a_smaller_parallax_once_the_turn_is_seen() -> None:
    results, prompter = _prompted_small_turn(challenge_live_residual=0.06)
    assert results[-1].verdict is Verdict.LIVE and results[-1].reason == "challenge_parallax"
    assert 0.06 <= results[-1].values["residual"] < LivenessSettings().min_live_residual
    assert prompter.shown == ["left", None]
    # the same turn against the passive threshold times out: the lower floor is what lets it in
    results, _ = _prompted_small_turn(challenge_live_residual=0.10)
    assert results[-1].verdict is Verdict.FLAT and results[-1].reason == "challenge_timeout"


def test_the_lower_challenge_floor_never_applies_without_a_prompted_turn() -> None:
    judge, clock, _ = _judge("passive", challenge_live_residual=0.06)
    results = _feed(judge, clock, _small_turn(18))
    assert all(r.verdict is Verdict.PENDING for r in results)  # passive: 0.10 still needed
    left, _ = _seeds()  # and a turn the other way is denied, however much parallax it shows
    judge, clock, _ = _judge(seed=left, challenge_live_residual=0.06)
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    results = _feed(judge, clock, _small_turn(18 * turn_sign("right")))
    assert results[-1].verdict is Verdict.FLAT and results[-1].reason == "wrong_direction"


def test_a_flat_picture_turned_the_prompted_way_stays_flat_with_the_lower_floor() -> None:
    left, _ = _seeds()
    judge, clock, _ = _judge(seed=left, challenge_live_residual=0.04)
    _feed(judge, clock, _still(True, int(2.0 / DT) + 1))
    results = _feed(judge, clock, _turn(True, 40 * turn_sign("left"), pitch_to=20, hold=30))
    assert all(r.verdict is not Verdict.LIVE for r in results)


@pytest.mark.parametrize(("bad", "key"), [({"challenge_live_residual": 0.01}, "challenge_live_residual"),
                                          ({"sample_hz": 1.0}, "sample_hz"),
                                          ({"max_live_ratio": 0.5}, "max_live_ratio")])
def test_settings_that_would_let_noise_in_or_starve_the_cues_are_refused(bad: dict[str, float], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        LivenessSettings(**bad)  # type: ignore[arg-type]


def test_a_lower_passive_threshold_is_also_the_challenge_floor() -> None:
    """A configuration with min_live_residual under 0.06 stays valid; the prompted turn never needs more."""
    results, _ = _prompted_small_turn(min_live_residual=0.05, challenge_live_residual=0.08)
    assert results[-1].verdict is Verdict.LIVE


def test_a_change_no_similarity_explains_better_than_a_homography_is_noise_not_parallax() -> None:
    """Isotropic landmark noise leaves residual/motion near sqrt((2N-8)/(2N-4)), about 0.97: a homography
    has only four more parameters than a similarity. A turning head leaves about 0.7. With every other
    guard against noise off, the ratio cap alone makes noise take several times longer to collect votes."""
    rng = np.random.default_rng(0)
    m = synth.model(True)
    frames = [synth.pose(m, noise_px=2.0, rng=rng) for _ in range(400)]
    loose = {"noise_factor": 0, "flat_ratio": 0.0, "min_motion": 1.0, "max_jump": 1.0, "min_live_residual": 0.02,
             "evidence_frames": 30}
    frames_to_live = []
    for cap in (0.95, 1.0):
        judge, _, _ = _judge("passive", max_live_ratio=cap, **loose)
        results = [judge.observe(1, f, k * DT) for k, f in enumerate(frames)]
        frames_to_live.append(next(k for k, r in enumerate(results) if r.verdict is Verdict.LIVE))
        ratios = [r.values["ratio"] for r in results[:frames_to_live[-1]] if "ratio" in r.values]
        assert np.median(ratios) > LivenessSettings().max_live_ratio
    assert frames_to_live[0] > 3 * frames_to_live[1]
    head, clock, _ = _judge("passive")  # and a real turn stays under the cap
    assert _feed(head, clock, _turn(False, 30))[-1].verdict is Verdict.LIVE


def _prompted(frames: list[np.ndarray | None], **kw: object) -> list[LivenessResult]:
    """Prompt 'left' after 2 s of a frontal head, then these frames."""
    left, _ = _seeds()
    judge, clock, prompter = _judge(seed=left, **kw)
    _feed(judge, clock, _small_turn(0.0, n=2, hold=int(2.0 / DT)))
    assert prompter.shown == ["left"]
    return _feed(judge, clock, frames)


def test_a_picture_swapped_for_a_picture_of_the_turned_head_is_no_turn() -> None:
    """Two still photos, frontal then turned 18 degrees the prompted way: the pose jumps with nothing
    in between, which a head cannot do; the same poses reached gradually are a turn."""
    m, rng = synth.model(), np.random.default_rng(6)
    frontal = [synth.pose(m, 0.0, noise_px=0.1, rng=rng) for _ in range(int(1.0 / DT))]
    turned = [synth.pose(m, 18 * turn_sign("left"), noise_px=0.1, rng=rng) for _ in range(int(4.5 / DT))]
    swapped = _prompted(frontal + turned)
    assert all(r.verdict is not Verdict.LIVE for r in swapped)
    assert swapped[-1].reason == "challenge_timeout"
    gradual = _prompted(_small_turn(18 * turn_sign("left"), hold=int(5.0 / DT)))
    assert gradual[-1].verdict is Verdict.LIVE


def test_parallax_without_the_prompted_turn_needs_the_passive_threshold() -> None:
    """A nod (pitch only) shows parallax of about 0.07 IOD but no turn: the lower floor never applies."""
    m, rng = synth.model(), np.random.default_rng(8)
    nod = [synth.pose(m, 0.0, -18 * min(k, 14) / 14, noise_px=0.1, rng=rng) for k in range(int(5.5 / DT))]
    results = _prompted(nod)
    assert max(r.values.get("residual", 0.0) for r in results) >= 0.06
    assert all(r.verdict is not Verdict.LIVE for r in results)
    assert results[-1].reason == "challenge_timeout"


def test_a_turn_whose_parallax_stays_under_the_challenge_floor_times_out() -> None:
    results = _prompted(_small_turn(11 * turn_sign("left"), hold=int(5.0 / DT)))
    assert results[-1].values["turn"] >= LivenessSettings().min_turn  # the turn was seen...
    assert max(r.values.get("residual", 0.0) for r in results) < 0.06  # ...its parallax was too small
    assert results[-1].verdict is Verdict.FLAT and results[-1].reason == "challenge_timeout"


def test_a_mesh_glitch_is_no_pose_for_the_turn() -> None:
    """A frame whose landmarks jump (a mesh failure) is ignored by the turn as by the flatness cue."""
    m, rng = synth.model(), np.random.default_rng(3)
    still = [synth.pose(m, 0.0, noise_px=0.1, rng=rng) for _ in range(10)]
    glitch = synth.pose(m, 35 * turn_sign("left"))
    results = _prompted([*still[:5], glitch, glitch, *still[5:]])  # two in a row: a median of 3 alone lets one in
    assert max(r.values.get("turn", 0.0) for r in results) < 0.05
    assert all(r.verdict is Verdict.PENDING for r in results)
