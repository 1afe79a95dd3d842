"""The self-test's plumbing: collecting presentations, reading liveness off frame results, the rates table,
and rendered attacks replayed through the real loop with a mock relay."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.camera.base import Frame
from kiosk.decision import Decision, DecisionConfig
from kiosk.errors import DatasetError
from kiosk.pad.eval import collect, limit_per_group, summarise, table
from kiosk.pad.observe import liveness_of
from kiosk.pad.present import Outcome, PresentConfig, Presenter, _Watcher, from_folder, from_video
from kiosk.vision.boxes import Face
from tests.pad_fixtures import sequence as _sequence


@dataclass(frozen=True)
class _Live:
    verdict: str
    reason: str = ""
    values: dict[str, float] = field(default_factory=dict)


def _face(side: float) -> Face:
    return Face((0.0, 0.0, side, side), 0.9, np.zeros((6, 2)))


@dataclass
class _Result:
    frame: Frame
    faces: list[Face]
    gates: list[str | None]
    decision: Decision | None = None
    liveness: list[Any] = field(default_factory=list)


def _result(t: float, live: list[Any], gates: list[str | None] | None = None, decision: Decision | None = None) -> Any:
    faces = [_face(100.0 + 50 * i) for i in range(len(live))]
    return _Result(Frame(np.zeros((4, 4, 3), np.uint8), t, int(t * 15)), faces, gates or [None] * len(live), decision,
                   live)


def test_liveness_is_read_from_the_largest_judged_face() -> None:
    assert liveness_of(_result(0.0, [])) is None
    assert liveness_of(_result(0.0, [None, None])) is None
    v = liveness_of(_result(0.0, [_Live("pending"), _Live("flat", "flat", {"ratio": 0.1})]))
    assert v is not None and (v.verdict, v.values) == ("flat", {"ratio": 0.1})


def test_watcher_keeps_the_first_verdict_notes_a_challenge_and_stops_on_a_pa_denial() -> None:
    o = Outcome("s", "print_still", "A", True, 3)
    stop = threading.Event()
    w = _Watcher(o, stop, max_seconds=10.0)
    w(_result(0.0, [None], gates=["too_small"]))
    w(_result(0.2, [_Live("pending", "no_motion", {"ratio": 0.3})]))
    w(_result(2.0, [_Live("pending", "challenge_left", {"ratio": 0.3})]))
    assert not stop.is_set() and o.first_usable_s == 0.2 and o.challenged
    w(_result(4.0, [_Live("flat", "challenge_flat", {"ratio": 0.05})],
              decision=Decision(False, None, 0.0, "presentation_attack")))
    w(_result(4.1, [_Live("live", "parallax")]))
    assert stop.is_set()
    assert (o.verdict, o.verdict_s, o.denied_attack, o.granted, o.values) == ("flat", 4.0, True, False, {"ratio": 0.05})
    assert o.time_to_verdict_s == pytest.approx(3.8) and o.usable_frames == 4 and o.frames == 5
    assert o.gate_failures == {"too_small": 1}


def test_watcher_counts_the_gate_that_stopped_the_largest_face() -> None:
    o = Outcome("s", "bona_fide", "A", False, 3)
    w = _Watcher(o, threading.Event(), max_seconds=10.0)
    w(_result(0.0, [None, None], gates=["too_small", "blurred"]))  # the second face is the larger
    w(_result(0.1, [None, None], gates=["too_small", "blurred"]))
    w(_result(0.2, [None, None], gates=["too_small", None]))  # a face passed: usable, no failure counted
    assert o.gate_failures == {"blurred": 2} and o.usable_frames == 1


def test_watcher_stops_at_the_time_limit() -> None:
    stop = threading.Event()
    w = _Watcher(Outcome("s", "bona_fide", "A", False, 3), stop, max_seconds=1.0)
    w(_result(0.9, [None]))
    assert not stop.is_set()
    w(_result(1.0, [None]))
    assert stop.is_set()


def _outcome(species: str, verdict: str, challenged: bool = False, opened: bool = False, subject: str = "A",
             t: float | None = 1.0) -> Outcome:
    o = Outcome(f"{species}/{subject}", species, subject, species != "bona_fide", 3, first_usable_s=0.0,
                verdict=verdict, verdict_s=None if verdict == "none" else t, challenged=challenged, door_opened=opened,
                granted=opened, granted_s=t if opened else None, denied_attack=verdict == "flat")
    return o


def test_summary_counts_each_rate_per_species() -> None:
    outcomes = ([_outcome("print_still", "flat", subject=f"P{i}") for i in range(48)]
                + [_outcome("print_still", "flat", challenged=True, t=7.0), _outcome("print_still", "live", opened=True)]
                + [_outcome("tablet_video", "live", opened=True), _outcome("tablet_video", "none", challenged=True)]
                + [_outcome("bona_fide", "live", opened=True, t=1.5), _outcome("bona_fide", "flat"),
                   _outcome("bona_fide", "flat", challenged=True), _outcome("bona_fide", "none")]
                + [Outcome("broken", "print_bent", "B", True, 0, error="no face")])
    s = summarise(outcomes)
    still = s["species"]["print_still"]
    assert still["n"] == 50 and still["subjects"] == 49
    assert still["apcer"]["k"] == 1 and still["iapar"]["k"] == 1 and still["apnrr"]["k"] == 1
    assert still["apcer"]["ci95"][1] == pytest.approx(0.1065, abs=1e-4)
    assert still["time_to_verdict_s"] == {"n": 50, "median": 1.0, "p90": 1.0}
    assert s["species"]["tablet_video"]["apcer"] == {"k": 1, "n": 2, "rate": 0.5, "ci95": [0.0126, 0.9874]}
    assert "print_bent" not in s["species"] and s["errors"] == [{"name": "broken", "error": "no face"}]
    b = s["bona_fide"]
    # a flat verdict after a challenge is a recording that could not answer the prompt: non-response, not BPCER
    assert (b["bpcer"]["k"], b["bpnrr"]["k"], b["granted"]["k"], b["n"]) == (1, 2, 1, 4)
    assert b["time_to_grant_s"]["median"] == 1.5
    text = table(s)
    assert "print_still" in text and "  2.0 % [ 0.1,  10.6]" in text and "BPCER" in text and "broken: no face" in text


def test_collect_finds_sequences_and_refuses_mixed_up_folders(tmp_path: Path) -> None:
    _sequence(tmp_path / "attacks" / "print_still" / "000_A", "print_still")
    _sequence(tmp_path / "attacks" / "phone_photo" / "000_A", "phone_photo")
    _sequence(tmp_path / "live" / "000_A", "bona_fide")
    got = collect([tmp_path / "live"], [tmp_path / "attacks"])
    assert [(p.species, p.loop) for p in got] == [("bona_fide", False), ("phone_photo", True), ("print_still", True)]
    assert [p.species for p in limit_per_group(got + got, 1)] == ["bona_fide", "phone_photo", "print_still"]
    with pytest.raises(DatasetError, match="listed under --bona-fide"):
        collect([tmp_path / "attacks"], [])
    with pytest.raises(DatasetError, match="listed under --attacks"):
        collect([], [tmp_path / "live"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files and no sequence folders"):
        collect([tmp_path / "empty"], [])
    with pytest.raises(DatasetError, match="kiosk pad render"):
        collect([], [tmp_path / "empty"])
    with pytest.raises(DatasetError, match="does not exist"):
        collect([tmp_path / "nowhere"], [])


def test_without_liveness_a_printed_photo_opens_the_door(printed: Path, pipeline: Any) -> None:
    presenter = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=False), max_seconds=3))
    o = presenter.present(from_folder(printed))
    assert o.attack and o.enrolled_from == 2 and o.usable_frames > 0
    assert o.granted and o.door_opened and o.time_to_grant_s is not None and o.verdict == "none"


def test_a_decision_that_needs_a_live_verdict_keeps_the_relay_still_without_one(printed: Path, pipeline: Any) -> None:
    presenter = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=True), max_seconds=2))
    o = presenter.present(from_folder(printed))
    assert not o.granted and not o.door_opened and o.frames == 31  # 0.0 .. 2.0 s at 15 fps, the sequence looped


def test_a_real_clip_is_presented_from_its_first_part_and_enrolled_from_its_last(data: Path, pipeline: Any) -> None:
    clip = data / "videos" / "LivePortrait" / "driving" / "d12.mp4"
    p = from_video(clip, max_seconds=1.0)
    assert callable(p.frames) and p.species == "bona_fide" and not p.loop
    assert len(p.frames()) == 15  # decoded only when presented
    o = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=False))).present(p)
    assert o.enrolled_from == 3 and o.granted and o.door_opened


def test_with_liveness_the_printed_photo_is_denied_and_the_relay_never_moves(printed: Path, pipeline: Any) -> None:
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.settings import LivenessSettings

    config = PresentConfig(DecisionConfig(), liveness=LivenessSettings(), max_seconds=12)
    o = Presenter(pipeline[0], pipeline[1].threshold, config, build_landmarker()).present(from_folder(printed))
    assert o.verdict == "flat" and o.denied_attack and o.challenged  # held still: only the challenge decides
    assert not o.granted and not o.door_opened
    assert o.verdict_reason in ("challenge_timeout", "flat_homography", "wrong_direction")
    assert o.time_to_verdict_s is not None and o.time_to_verdict_s <= 2.0 + 5.0 + 0.5  # prompt after 2 s, 5 s to turn


def test_a_real_head_is_never_called_flat_without_a_challenge_and_is_let_in_only_when_live(data: Path,
                                                                                       pipeline: Any) -> None:
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.settings import LivenessSettings

    clip = data / "videos" / "SadTalker" / "ref_video" / "WDA_KatieHill_000.mp4"
    config = PresentConfig(DecisionConfig(), liveness=LivenessSettings(), max_seconds=6)
    o = Presenter(pipeline[0], pipeline[1].threshold, config, build_landmarker()).present(from_video(clip))
    assert o.usable_frames > 0 and o.values  # the clip was judged
    assert not (o.verdict == "flat" and not o.challenged)  # no passive attack verdict on a real head
    assert o.door_opened == o.granted == (o.verdict == "live")
    if o.granted:
        assert o.time_to_grant_s is not None and o.time_to_verdict_s is not None
        assert o.time_to_grant_s >= o.time_to_verdict_s


def test_pad_eval_command_prints_the_rates_as_json(printed: Path, pipeline: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import json

    from kiosk.pad.cli import add_pad_parser

    parser = argparse.ArgumentParser(prog="kiosk")
    add_pad_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pad", "eval", "--attacks", str(printed.parent), "--json", "--max-seconds", "9"])
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["summary"]["species"]["print_still"]
    assert row["n"] == 1 and row["apcer"]["k"] == 0 and row["iapar"]["k"] == 0
    assert report["liveness"]["mode"] == "challenge" and report["presentations"][0]["denied_attack"]


def test_flatness_plot_is_written(tmp_path: Path) -> None:
    from kiosk.liveness.settings import LivenessSettings
    from kiosk.pad.plot import plot_flatness, score_key

    outcomes = [Outcome("a", "bona_fide", "A", False, 3, verdict="live", values={"ratio": 0.8, "motion": 0.1}),
                Outcome("b", "print_bent", "B", True, 3, verdict="flat", values={"ratio": 0.1}, challenged=True)]
    assert score_key(outcomes) == "ratio"
    plot_flatness(outcomes, LivenessSettings(), tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_counts_each_group_as_the_table_does() -> None:
    from kiosk.pad.plot import groups

    outcomes = [_outcome("bona_fide", "live"), _outcome("print_still", "flat"), _outcome("print_still", "flat"),
                Outcome("broken", "print_still", "B", True, 0, error="no face"),
                Outcome("gone", "print_bent", "C", True, 0, error="no face"), _outcome("mask_3d", "flat")]
    s = summarise(outcomes)
    assert groups(outcomes) == [("bona_fide", 1), ("print_still", 2), ("print_bent", 0), ("mask_3d", 1)]
    assert (s["bona_fide"]["n"], s["species"]["print_still"]["n"], s["species"]["mask_3d"]["n"]) == (1, 2, 1)


def test_repeated_folder_options_keep_every_folder() -> None:
    """`--attacks A --attacks B` must not silently drop A (argparse's default keeps only the last)."""
    import argparse

    from kiosk.pad.cli import add_pad_parser

    parser = argparse.ArgumentParser(prog="kiosk")
    add_pad_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pad", "eval", "--attacks", "a", "--attacks", "b", "c", "--bona-fide", "x",
                              "--bona-fide", "y"])
    assert args.attacks == [Path("a"), Path("b"), Path("c")]
    assert args.bona_fide == [Path("x"), Path("y")]


def test_a_slower_door_is_given_to_every_presentation_recorded_faster(tmp_path: Path) -> None:
    """``kiosk pad eval --fps``: each replay runs at its own rate and the loop reads it through a
    SlowerSource; at the recorded rate nothing is wrapped."""
    from kiosk.camera.replay import ReplaySource
    from kiosk.pad.eval import run_all
    from kiosk.pad.rate import SlowerSource

    _sequence(tmp_path / "print_still" / "000_A", "print_still")
    presentations = collect([], [tmp_path])

    wraps: list[Any] = []

    class Recorder:
        def present(self, p: Any, wrap: Any = None) -> Outcome:
            wraps.append(wrap)
            return Outcome(p.name, p.species, p.subject, p.attack, 1)

    run_all(Recorder(), presentations, fps=7.5)  # type: ignore[arg-type]
    run_all(Recorder(), presentations, fps=15.0)  # type: ignore[arg-type]
    run_all(Recorder(), presentations)  # type: ignore[arg-type]
    slow, same, default = wraps
    assert same is None and default is None
    source = slow(ReplaySource([np.zeros((2, 2, 3), np.uint8)] * 4, fps=15.0))
    assert isinstance(source, SlowerSource) and source.period == pytest.approx(1 / 7.5)


def test_pad_eval_refuses_a_frame_rate_out_of_range() -> None:
    import argparse

    from kiosk.pad.cli import add_pad_parser

    parser = argparse.ArgumentParser(prog="kiosk")
    add_pad_parser(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["pad", "eval", "--attacks", "a", "--fps", "7.5"]).fps == 7.5
    for bad in ("0", "16", "fast"):
        with pytest.raises(SystemExit):
            parser.parse_args(["pad", "eval", "--attacks", "a", "--fps", bad])


def test_a_slower_door_reads_the_frame_nearest_each_of_its_ticks_and_the_clock_runs_on() -> None:
    from kiosk.camera.replay import ReplaySource, SimClock
    from kiosk.pad.rate import SlowerSource

    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(30)]
    clock = SimClock()
    slow = SlowerSource(ReplaySource(frames, fps=15.0, clock=clock), 7.5, 15.0)
    slow.open()
    got = []
    while (f := slow.read()) is not None:
        got.append((f.index, round(f.t, 4)))
        assert clock.now == f.t  # the replay's clock is where the frame the loop gets was taken
    assert [i for i, _ in got] == list(range(0, 30, 2))
    ten = SlowerSource(ReplaySource(frames, fps=15.0), 10.0, 15.0)
    ten.open()
    times = []
    while (f := ten.read()) is not None:
        times.append(f.t)
    assert len(times) == 20 and all(abs(t - k / 10) <= 0.5 / 15 + 1e-9 for k, t in enumerate(times))
    with pytest.raises(DatasetError, match="only slower"):
        SlowerSource(ReplaySource(frames, fps=15.0), 30.0, 15.0)
    with pytest.raises(DatasetError, match="runs at 25 fps, not 15"):
        SlowerSource(ReplaySource(frames, fps=25.0), 10.0, 15.0)
