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
from kiosk.pad.meta import SequenceMeta, write_meta
from kiosk.pad.observe import liveness_of
from kiosk.pad.present import Outcome, PresentConfig, Presenter, _Watcher, from_folder, from_video
from kiosk.pad.render import RenderSettings, render_photo
from kiosk.vision.boxes import Face


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


def _sequence(folder: Path, species: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "frame_00000.jpg").write_bytes(b"")
    write_meta(folder, SequenceMeta(species, "A", "/x.jpg", 0, 15.0, 1, enroll_photos=["/y.jpg"]))
    return folder


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


@pytest.fixture(scope="module")
def printed(data: Path, pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = sorted((data / "lfw-view1" / "images" / "Abdullah_Gul").glob("*.jpg"))
    return render_photo("print_still", photos[0], photos[1:], "Abdullah_Gul", tmp_path_factory.mktemp("pad") / "seq", 4,
                        pipeline[0].detect, RenderSettings(frames=20))


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


def _eval_args(*argv: str) -> Any:
    import argparse

    from kiosk.pad.cli import add_pad_parser

    parser = argparse.ArgumentParser(prog="kiosk")
    add_pad_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["pad", "eval", *argv])


@pytest.mark.parametrize("plot", ["nodir/p.png", "p.txt", "."])
def test_a_plot_path_that_cannot_be_written_is_refused_before_anything_runs(plot: str, tmp_path: Path) -> None:
    from kiosk.errors import ConfigError

    args = _eval_args("--attacks", str(tmp_path), "--plot", str(tmp_path / plot))
    with pytest.raises(ConfigError, match="--plot"):  # not the empty --attacks folder: nothing was looked at yet
        args.handler(args)


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_a_presentation_length_that_is_no_length_is_refused(seconds: str) -> None:
    with pytest.raises(SystemExit):
        _eval_args("--attacks", "x", "--max-seconds", seconds)


def test_a_sequence_with_frames_missing_is_refused_and_a_corrupt_frame_ends_only_its_presentation(
        printed: Path, pipeline: Any, tmp_path: Path) -> None:
    import shutil

    from kiosk.pad.eval import run_all

    short = tmp_path / "print_still" / "000_short"
    shutil.copytree(printed, short)
    sorted(short.glob("frame_*.jpg"))[-1].unlink()  # an interrupted render
    with pytest.raises(DatasetError, match=r"19 image files, but meta\.json says 20 frames"):
        from_folder(short)
    broken = tmp_path / "print_still" / "001_broken"
    shutil.copytree(printed, broken)
    (broken / "frame_00003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    presenter = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=True), max_seconds=2))
    [o] = run_all(presenter, [from_folder(broken)])
    assert o.error is not None and "frame_00003.jpg" in o.error


def test_the_results_are_printed_before_the_plot_and_survive_it_failing(
        printed: Path, pipeline: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import kiosk.pad.plot

    def fail(*a: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(kiosk.pad.plot, "plot_flatness", fail)
    args = _eval_args("--attacks", str(printed.parent), "--json", "--max-seconds", "3", "--plot", str(tmp_path / "f.png"))
    assert args.handler(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["species"]["print_still"]["n"] == 1


def test_an_attack_folder_with_an_unfinished_sequence_is_refused_up_front(tmp_path: Path) -> None:
    _sequence(tmp_path / "attacks" / "print_still" / "000_A", "print_still")
    unfinished = tmp_path / "attacks" / "print_turned" / "000_A"
    unfinished.mkdir(parents=True)
    (unfinished / "frame_00000.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"frames but no meta\.json"):
        collect([], [tmp_path / "attacks"])


def test_with_liveness_off_the_report_says_its_apcer_means_nothing(
        printed: Path, pipeline: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kiosk.pad.eval import LIVENESS_OFF

    config = tmp_path / "kiosk.toml"
    config.write_text('[liveness]\nmode = "off"\n')
    args = _eval_args("--attacks", str(printed.parent), "--json", "--max-seconds", "3", "--config", str(config))
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warning"] == LIVENESS_OFF and report["liveness"] is None
    assert report["summary"]["species"]["print_still"]["iapar"]["k"] == 1  # the print opened the door


def _clip(path: Path, frames: int = 15) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 8 * i, np.uint8))
    writer.release()
    return path


def test_a_sequence_reached_through_two_given_folders_is_presented_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    attacks = tmp_path / "attacks"
    _sequence(attacks / "print_still" / "000_A", "print_still")
    _sequence(attacks / "phone_photo" / "000_A", "phone_photo")
    clip = _clip(tmp_path / "live" / "walk.avi")
    _sequence(tmp_path / "live" / "seq" / "000_A", "bona_fide")
    got = collect([tmp_path / "live", tmp_path / "live", clip], [attacks, attacks / "print_still", tmp_path / "attacks/."])
    assert sorted(p.name for p in got) == sorted(
        str(p) for p in [clip, tmp_path / "live" / "seq" / "000_A", attacks / "phone_photo" / "000_A",
                         attacks / "print_still" / "000_A"])
    assert "presented once" in caplog.text and str(attacks / "print_still" / "000_A") in caplog.text
    assert str(clip) in caplog.text


def test_a_raw_h264_recording_is_refused_by_name_and_other_files_skipped_are_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    live = tmp_path / "live"
    _clip(live / "walk.avi")
    (live / "notes.txt").write_text("taken on Tuesday")
    assert [p.name for p in collect([live], [])] == [str(live / "walk.avi")]
    assert "skipped" in caplog.text and str(live / "notes.txt") in caplog.text
    (live / "attempt.h264").write_bytes(b"\x00\x00\x00\x01\x67 raw stream")
    with pytest.raises(DatasetError, match=r"attempt\.h264.*attempt\.mp4"):
        collect([live], [])
    with pytest.raises(DatasetError, match=r"attempt\.h264"):
        collect([live / "attempt.h264"], [])


@pytest.fixture()
def fake_loop(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``kiosk pad eval`` without models: each presentation denied as flat, until one named ``stop`` is
    reached, where the user presses Ctrl-C. Returns the names presented."""
    import types

    import kiosk.liveness.landmarks
    import kiosk.pad.eval
    import kiosk.vision.pipeline

    presented: list[str] = []

    class Presenter:
        def __init__(self, *a: Any) -> None:
            pass

        def present(self, p: Any, wrap: Any = None) -> Outcome:
            if p.name.endswith("stop"):
                raise KeyboardInterrupt
            presented.append(p.name)
            return Outcome(p.name, p.species, p.subject, p.attack, 1, verdict="flat", denied_attack=True)

    monkeypatch.setattr(kiosk.vision.pipeline, "build_pipeline",
                        lambda *a, **k: (None, types.SimpleNamespace(threshold=0.5)))
    monkeypatch.setattr(kiosk.liveness.landmarks, "build_landmarker", lambda **k: None)
    monkeypatch.setattr(kiosk.pad.eval, "Presenter", Presenter)
    return presented


def test_an_interrupted_eval_prints_what_was_presented_marked_as_partial(
        tmp_path: Path, fake_loop: list[str], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    import json

    for name in ("000_A", "001_B", "002_stop", "003_D"):
        _sequence(tmp_path / "print_still" / name, "print_still")
    args = _eval_args("--attacks", str(tmp_path), "--plot", str(tmp_path / "f.png"))
    assert args.handler(args) == 130
    out = capsys.readouterr().out
    assert out.startswith("interrupted after 2 of 4 presentations") and "print_still" in out
    assert "interrupted after 2 of 4" in caplog.text and not (tmp_path / "f.png").exists()
    args = _eval_args("--attacks", str(tmp_path), "--json")
    assert args.handler(args) == 130
    report = json.loads(capsys.readouterr().out)
    assert report["interrupted"] == {"presented": 2, "of": 4}
    assert report["summary"]["species"]["print_still"]["n"] == 2 and len(report["presentations"]) == 2


def test_results_that_cannot_be_printed_give_an_error_and_the_plot_is_still_written(
        tmp_path: Path, fake_loop: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from kiosk.errors import OutputError

    def full(*a: Any, **k: Any) -> None:
        raise OSError(28, "No space left on device")

    _sequence(tmp_path / "print_still" / "000_A", "print_still")
    args = _eval_args("--attacks", str(tmp_path), "--json", "--plot", str(tmp_path / "f.png"))
    monkeypatch.setattr(builtins, "print", full)
    with pytest.raises(OutputError, match=r"standard output.*No space left on device"):
        args.handler(args)
    monkeypatch.undo()
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_pad_eval_on_a_full_disk_exits_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    """The command as run, standard output on /dev/full: one line, the output error's exit code."""
    import os
    import subprocess
    import sys

    from kiosk.errors import OutputError

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    code = ("import sys, types, kiosk.pad.eval as e, kiosk.vision.pipeline as vp, kiosk.liveness.landmarks as lm\n"
            "from kiosk.pad.present import Outcome\n"
            "class P:\n def __init__(self, *a): pass\n"
            " def present(self, p, wrap=None): return Outcome(p.name, p.species, p.subject, p.attack, 1)\n"
            "vp.build_pipeline = lambda *a, **k: (None, types.SimpleNamespace(threshold=0.5))\n"
            "lm.build_landmarker = lambda **k: None\n"
            "e.Presenter = P\n"
            "from kiosk.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    _sequence(tmp_path / "print_still" / "000_A", "print_still")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-c", code, "pad", "eval", "--attacks", str(tmp_path), "--json"],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert r.returncode == OutputError.exit_code
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    assert "kiosk: error: the results could not be written to standard output" in r.stderr
