"""The liveness judge on synthetic landmark sequences, with an injected clock and random generator."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from kiosk.liveness.challenge import Challenge, TurnState, turn_sign
from kiosk.liveness.cues import LivenessResult, Observation, Verdict
from kiosk.liveness.judge import SPENT, LivenessJudge
from kiosk.liveness.settings import LivenessSettings
from tests import liveness_synth as synth
from tests.clock import FakeClock
from tests.liveness_judging import DT, RecordingPrompter, _feed, _judge, _seeds, _still, _turn


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


def test_a_mesh_with_non_finite_points_is_no_evidence_not_a_crash() -> None:
    judge, clock, _ = _judge("passive")
    frames = _turn(False, 30)
    broken: list[np.ndarray | None] = []
    for k, f in enumerate(frames):
        g = None if f is None else f.copy()
        if g is not None and k % 2:
            g[1, 0] = np.nan if k % 4 == 1 else np.inf  # landmark 1 is the nose tip, a rigid point
        broken.append(g)
    results = _feed(judge, clock, broken)
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


def test_a_grant_spends_the_live_verdict_and_the_track_is_judged_afresh_after_the_rest() -> None:
    judge, clock, prompter = _judge("challenge")
    assert _feed(judge, clock, _turn(False, 30))[-1].verdict is Verdict.LIVE
    judge.spend(1, clock(), 10.0)
    assert not judge.due(1, clock())
    assert judge.current(1).reason == SPENT and judge.current(1).verdict is Verdict.PENDING
    asked = len(prompter.shown)
    resting = _feed(judge, clock, _still(True, int(9.0 / DT)))  # a print where the person stood
    assert {(r.verdict, r.reason) for r in resting} == {(Verdict.PENDING, SPENT)}
    assert prompter.shown[asked:] == []  # no landmarks judged and nothing asked while the verdict rests
    clock.advance(1.0)
    assert judge.due(1, clock())
    after = _feed(judge, clock, _still(True, int(9.0 / DT)))  # a new approach: passive, then prompted
    assert after[-1].verdict is Verdict.FLAT and after[-1].reason == "challenge_timeout"
    assert len(prompter.shown) > asked


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
    left = judge.end(1)  # left while prompted, before a verdict: the loop counts it as a denied approach
    assert left is not None and left.verdict is Verdict.PENDING and left.reason == "challenge_abandoned"
    assert left.values["challenge_left"] in (0.0, 1.0) and prompter.shown[-1] is None


def test_a_track_leaving_hands_back_its_flat_verdict_or_abandoned_challenge_and_nothing_else() -> None:
    judge, clock, _ = _judge()
    _feed(judge, clock, _still(False, int(1.5 / DT)))
    assert judge.end(1) is None  # gone before any prompt
    _feed(judge, clock, _still(True, int(8.0 / DT)), track=2)
    left = judge.end(2)  # the loop counts it, unless the decision already denied it
    assert left is not None and left.verdict is Verdict.FLAT and left.reason == "challenge_timeout"
    assert judge.end(3) is None  # never seen
    head = synth.model(False)
    _feed(judge, clock, [synth.pose(head, 30 * np.sin(np.pi * k / 30)) for k in range(60)], track=4)
    assert judge.current(4).verdict is Verdict.LIVE and judge.end(4) is None


def test_a_prompt_timed_out_on_a_face_too_small_to_judge_is_handed_back_when_it_leaves() -> None:
    judge, clock, _ = _judge()
    _feed(judge, clock, _still(True, int(2.5 / DT)))
    for _ in range(int(5.0 / DT)):  # the print steps back: detected, too small for the cues
        judge.in_view([], clock())
        clock.advance(DT)
    left = judge.end(1)
    assert left is not None and left.verdict is Verdict.FLAT and left.reason == "challenge_timeout"


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
    settings = LivenessSettings(mode="passive", planar_band_max=0.0)  # synthetic landmarks: no pixels
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
    # without the jump filter (and with the passive bar as low as a prompted turn's) the same glitches
    # would pass the print as live
    clock, prompter = FakeClock(), RecordingPrompter()
    lax = LivenessJudge(LivenessSettings(mode="passive", max_jump=1.0, planar_band_max=0.0, passive_noise_factor=12.0),
                        clock, prompter, random.Random(0))
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


def test_one_prompt_at_a_time_a_second_face_waits_for_the_first_to_end() -> None:
    """Two LEDs (or one display) can show one direction: a second face prompted over the first would
    turn the first person the wrong way."""
    judge, clock, prompter = _judge()
    a, b = _still(False, 200, seed=1), _still(False, 200, seed=2)
    k = 0
    while not prompter.shown:  # face 1 waits 2 s for its prompt
        judge.observe(1, a[k])
        clock.advance(DT)
        k += 1
    first = prompter.shown[-1]
    for _ in range(int(2.5 / DT)):  # face 2 arrives and waits past its own 2 s
        judge.observe(1, a[k])
        result = judge.observe(2, b[k])
        clock.advance(DT)
        k += 1
    assert prompter.shown == [first] and result.reason == "waiting_prompt"
    judge.end(1)  # face 1 leaves: its prompt is withdrawn, and face 2 is prompted at its next frame
    judge.observe(2, b[k])
    assert prompter.shown[1] is None and prompter.shown[2] in ("left", "right") and len(prompter.shown) == 3


def test_a_prompted_face_that_cannot_be_judged_still_times_out_and_its_prompt_goes() -> None:
    judge, clock, prompter = _judge()
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    assert prompter.shown[-1] in ("left", "right")
    for _ in range(int(6.0 / DT)):  # the face steps back: detected, too small for the cues
        judge.in_view([], clock())
        clock.advance(DT)
    assert prompter.shown[-1] is None
    assert judge.current(1).verdict is Verdict.FLAT and judge.current(1).reason == "challenge_timeout"


def test_the_prompt_can_be_said_again_for_a_display_that_reconnects() -> None:
    judge, clock, prompter = _judge()
    judge.repeat_prompt()
    assert prompter.shown == []  # said by the loop thread, at its next frame
    judge.in_view([], clock())
    assert prompter.shown == [None]
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    direction = prompter.shown[-1]
    judge.repeat_prompt()
    judge.in_view([1], clock())
    assert prompter.shown[-1] == direction and direction in ("left", "right")
    judge.in_view([1], clock())
    assert prompter.shown.count(direction) == 2  # said once per reconnection, not on every frame


def test_a_display_that_reconnects_while_no_frame_comes_is_told_what_is_asked_now() -> None:
    judge, clock, prompter = _judge()
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))
    direction = prompter.shown[-1]
    assert direction in ("left", "right")
    judge.repeat_prompt()
    judge.no_frame()  # the camera is late: the prompt still runs, and is said again
    assert prompter.shown[-1] == direction and prompter.shown.count(direction) == 2
    judge.end(1)  # the camera is lost and its tracks forgotten: a display away then misses this clear
    judge.repeat_prompt()
    judge.no_frame()  # the camera stays down: no frame will serve the reconnection
    assert prompter.shown[-2:] == [None, None]
    judge.no_frame()
    assert len(prompter.shown) == 4  # said once per reconnection, not on every pass


class _ThreadRecordingPrompter(RecordingPrompter):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def prompt(self, direction: str) -> None:
        self.threads.add(threading.current_thread().name)
        super().prompt(direction)

    def clear(self) -> None:
        self.threads.add(threading.current_thread().name)
        super().clear()


def test_a_reconnection_never_brings_back_a_prompt_the_loop_withdrew() -> None:
    """The MQTT network thread asks for the prompt again while the loop withdraws it: only the loop
    thread drives the prompter, so what it shows last is what the loop asks for now."""
    clock, prompter = FakeClock(), _ThreadRecordingPrompter()
    judge = LivenessJudge(LivenessSettings(planar_band_max=0.0), clock, prompter, random.Random(0))
    _feed(judge, clock, _still(True, int(2.5 / DT)))  # a still print: prompted at 2 s
    assert prompter.shown[-1] in ("left", "right")
    network = threading.Thread(target=judge.repeat_prompt, name="mqtt-network")
    network.start()  # the broker reconnected
    network.join(5)
    judge.end(1)  # the loop: the print left, its prompt is withdrawn
    judge.in_view([], clock())  # the loop's next frame
    assert prompter.shown[-2:] == [None, None]
    assert prompter.threads == {threading.current_thread().name}


def test_a_reconnected_display_is_told_no_prompt_whose_time_ran_out_while_no_frame_came() -> None:
    """A camera read that hangs keeps the tracks (only a read that fails forgets them) and no frame times the
    challenge out: a display reconnecting then must get a clear, not the direction of a challenge over."""
    judge, clock, prompter = _judge()
    _feed(judge, clock, _still(False, int(2.0 / DT) + 1))  # prompted at 2 s
    assert prompter.shown[-1] in ("left", "right")
    clock.advance(LivenessSettings().challenge_timeout_s + 5)
    judge.no_frame()
    judge.repeat_prompt()  # the display or the broker reconnects
    judge.no_frame()
    assert prompter.shown[-1] is None
