"""The lower parallax floor for a prompted turn, and the attacks it must not let through."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from kiosk.liveness.challenge import turn_sign
from kiosk.liveness.cues import LivenessResult, Verdict
from kiosk.liveness.settings import LivenessSettings
from tests import liveness_synth as synth
from tests.liveness_judging import DT, RecordingPrompter, _feed, _judge, _seeds, _still, _turn


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
    loose = {"noise_factor": 0, "flat_ratio": 0.0, "min_motion": 1.0, "max_jump": 1.0, "min_live_residual": 0.03,
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


def test_parallax_nobody_asked_for_must_stand_further_above_the_jitter() -> None:
    """A turn whose landmarks jitter (about 13 times under its parallax, like a phone photo FaceMesh
    reads depth into) gives no verdict unprompted, and is live when it answers the prompt."""
    turn = _turn(False, 30, noise_px=0.3, hold=20)
    judge, clock, _ = _judge("passive")
    results = _feed(judge, clock, turn)
    measured = [r.values["residual"] / r.values["noise"] for r in results
                if r.values.get("noise") and r.values.get("residual", 0.0) >= LivenessSettings().min_live_residual]
    assert measured and max(measured) < LivenessSettings().passive_noise_factor
    assert min(measured) >= LivenessSettings().noise_factor * 0.9
    assert all(r.verdict is Verdict.PENDING for r in results)
    # the same turn with the passive bar as low as a prompted turn's is live: the factor is what held it
    judge, clock, _ = _judge("passive", passive_noise_factor=LivenessSettings().noise_factor)
    assert _feed(judge, clock, turn)[-1].verdict is Verdict.LIVE
    # and made the prompted way, the same jitter is enough
    prompted = _prompted(_turn(False, 30 * turn_sign("left"), noise_px=0.3, hold=int(4.0 / DT)))
    assert prompted[-1].verdict is Verdict.LIVE and prompted[-1].reason == "challenge_parallax"


def test_noise_factor_zero_turns_the_passive_factor_off_too() -> None:
    assert LivenessSettings(noise_factor=0).passive_factor == 0.0
    assert LivenessSettings().passive_factor == LivenessSettings().passive_noise_factor
    assert LivenessSettings(passive_noise_factor=0).passive_factor == LivenessSettings().noise_factor


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


def test_turning_a_noise_guard_off_is_valid_but_never_silent() -> None:
    assert LivenessSettings().weakened() == []
    assert any("noise_factor" in w for w in LivenessSettings(noise_factor=0).weakened())
    assert any("max_live_ratio" in w for w in LivenessSettings(max_live_ratio=1.0).weakened())
    assert LivenessSettings(mode="off", noise_factor=0).weakened() == []  # off has its own louder warning


@pytest.mark.parametrize(("key", "value"), [("min_live_residual", 0.05), ("challenge_live_residual", 0.04),
                                            ("evidence_frames", 2), ("min_turn", 0.05), ("sample_hz", 0.0),
                                            ("challenge_timeout_s", 8.0), ("noise_factor", 6.0),
                                            ("passive_noise_factor", 12.0), ("live_ratio", 0.4),
                                            ("max_live_ratio", 0.99), ("planar_band_max", 0.012),
                                            ("max_jump", 0.5), ("sample_hz", 120.0), ("sample_hz", 30.0)])
def test_a_threshold_under_what_the_attacks_were_measured_at_is_valid_but_never_silent(key: str, value: float) -> None:
    warned = LivenessSettings(**{key: value}).weakened()  # type: ignore[arg-type]
    assert len(warned) == 1 and f"liveness.{key} = {value:g}" in warned[0]
    assert LivenessSettings(**{key: value, "mode": "off"}).weakened() == []  # type: ignore[arg-type]


def test_sampling_faster_or_keeping_mesh_glitches_is_warned_about_with_its_reason() -> None:
    """sample_hz 120 samples every frame of a 30 fps camera, as the warned 0 does; a raised max_jump keeps
    the rendered attacks' mesh glitches (up to 0.139) as evidence."""
    [fast] = LivenessSettings(sample_hz=120).weakened()
    assert "over the 15 " in fast and "sample every frame" in fast
    [jumpy] = LivenessSettings(max_jump=0.5).weakened()
    assert "over the 0.1 " in jumpy and "glitches up to 0.139" in jumpy
    assert LivenessSettings(sample_hz=15, max_jump=0.10).weakened() == []


def test_a_prompter_that_passive_mode_never_uses_is_warned_about() -> None:
    from kiosk.liveness.settings import MqttPrompterSettings

    [warning] = LivenessSettings(mode="passive", prompter=MqttPrompterSettings()).weakened()
    assert "never prompts" in warning
    assert LivenessSettings(mode="passive").weakened() == []  # the log prompter is the default


def test_the_passive_floor_cannot_take_the_prompted_floor_under_its_bound() -> None:
    """The prompted turn's floor is the lower of the two residual settings, so both share the bound."""
    with pytest.raises(ValidationError, match="min_live_residual"):
        LivenessSettings(min_live_residual=0.0)
    assert LivenessSettings(min_live_residual=0.03).min_live_residual == 0.03


@pytest.mark.models
def test_the_service_says_so_at_start_when_a_noise_guard_is_off(models: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kiosk.config import Settings
    from kiosk.service import build_liveness

    settings = Settings(models_dir=models, liveness=LivenessSettings(noise_factor=0))
    with ExitStack() as stack, caplog.at_level(logging.WARNING, logger="kiosk.service"):
        assert build_liveness(settings, time.monotonic, None, None, stack) is not None
    assert "liveness.noise_factor = 0" in caplog.text


@pytest.mark.models
def test_an_mqtt_prompt_the_broker_cannot_take_is_logged_and_repeated_on_reconnect(
        models: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A door that prompts only on a display: a prompt dropped while the broker is away is said in the
    log, and on reconnecting the display is told what is asked now."""
    import threading
    from types import SimpleNamespace

    from kiosk.config import Settings
    from kiosk.liveness.settings import MqttPrompterSettings
    from kiosk.service import build_liveness

    sent: list[tuple[str, str]] = []
    kiosk = SimpleNamespace(connected=threading.Event(), on_connected=[],
                            publish_state=lambda topic, payload, retain: sent.append((topic, payload)))
    settings = Settings(models_dir=models, liveness=LivenessSettings(prompter=MqttPrompterSettings()))
    with ExitStack() as stack, caplog.at_level(logging.WARNING, logger="kiosk.liveness.prompters"):
        built = build_liveness(settings, time.monotonic, None, SimpleNamespace(kiosk=kiosk), stack)
        assert built is not None
        judge = built[1]
        judge.prompter.prompt("left")  # the broker is away
        assert sent == [] and "could not publish the liveness prompt" in caplog.text
        kiosk.connected.set()
        assert kiosk.on_connected == [judge.repeat_prompt]
        kiosk.on_connected[0]()  # reconnected (the network thread): the loop says it at its next pass
        assert sent == []
        judge.in_view([], time.monotonic())  # no challenge running: the display is cleared
        assert len(sent) == 1 and sent[0][0].endswith("/prompt") and '"prompt": null' in sent[0][1]
