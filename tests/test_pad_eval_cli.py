"""`kiosk pad eval` as a command: what it refuses before anything runs, what it reads, and what it prints
when interrupted or unable to print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.decision import DecisionConfig
from kiosk.errors import DatasetError
from kiosk.pad.eval import collect
from kiosk.pad.present import Outcome, PresentConfig, Presenter, from_folder
from tests.pad_fixtures import sequence as _sequence


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
