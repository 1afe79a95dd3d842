"""``kiosk pad render``'s command line: arguments checked before any work, and an output folder that a
second run neither overwrites nor passes off as its own (``kiosk.pad.outdir``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.errors import ConfigError, DatasetError, NoFaceError
from kiosk.pad.cli import add_pad_parser
from kiosk.pad.meta import read_meta
from kiosk.vision.boxes import Face
from tests.pad_fakes import face_photo, fake_detect


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kiosk")
    add_pad_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["pad", *argv])


def test_render_takes_a_bend_range() -> None:
    assert _parse("render", "--out", "x").bend is None  # print_bent's own range, BEND_WIDTHS (0.6, 1.2)
    assert _parse("render", "--out", "x", "--bend", "0.3,0.5").bend == (0.3, 0.5)
    assert _parse("render", "--out", "x").turn is None
    assert _parse("render", "--out", "x", "--turn", "40,60").turn == (40, 60)


def test_render_arguments_are_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need --photo P or --lfw DIR"):
        args = _parse("render", "--out", str(tmp_path))
        args.handler(args)
    with pytest.raises(ConfigError, match="tablet_video needs --video"):
        args = _parse("render", "--out", str(tmp_path), "--species", "tablet_video")
        args.handler(args)
    alone = tmp_path / "alone"
    alone.mkdir()
    photo = face_photo(alone / "x.jpg")
    with pytest.raises(ConfigError, match="give --enroll"):
        args = _parse("render", "--photo", str(photo), "--out", str(tmp_path / "o"))
        args.handler(args)
    with pytest.raises(ConfigError, match="--bend shapes print_bent only"):
        args = _parse("render", "--photo", str(photo), "--species", "print_still", "--bend", "0.4,0.6",
                      "--out", str(tmp_path / "o"))
        args.handler(args)
    with pytest.raises(ConfigError, match="--turn moves print_turned and phone_photo only"):
        args = _parse("render", "--photo", str(photo), "--species", "print_bent", "--turn", "40,60",
                      "--out", str(tmp_path / "o"))
        args.handler(args)
    with pytest.raises(DatasetError, match="no video files"):
        args = _parse("render", "--video", str(alone), "--species", "tablet_video", "--out", str(tmp_path / "o"))
        args.handler(args)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [["render", "--out", "x", "--species", "mask"], ["render", "--out", "x", "--count", "0"],
                                  ["render", "--photo", "p.jpg"], ["eval", "--max-seconds", "soon"],
                                  ["render", "--out", "x", "--bend", "0.5"], ["render", "--out", "x", "--bend", "0.1,0.3"],
                                  ["render", "--out", "x", "--bend", "0.8,0.4"], ["render", "--out", "x", "--turn", "50,90"],
                                  ["render", "--out", "x", "--turn", "nan,40"]])
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parse(*argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.fixture()
def fake_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kiosk pad render`` with the fake detector: the command's own checks, without the model."""
    import types

    import kiosk.vision.pipeline

    monkeypatch.setattr(kiosk.vision.pipeline, "build_detector", lambda *a, **k: types.SimpleNamespace(detect=fake_detect))


def _render(*argv: str) -> int:
    args = _parse("render", "--species", "print_still", "--frames", "2", *argv)
    return int(args.handler(args))


def test_a_second_render_with_other_options_is_refused_and_the_first_is_kept(
        tmp_path: Path, fake_detector: None) -> None:
    (tmp_path / "obama").mkdir()
    one, two, three = (face_photo(tmp_path / "obama" / f"{i}.jpg") for i in (1, 2, 3))
    out = tmp_path / "out"
    assert _render("--photo", str(one), "--out", str(out)) == 0
    seq = out / "print_still" / "000_obama"
    first = {p.name: p.read_bytes() for p in seq.iterdir()}
    for other in (["--photo", str(two)], ["--photo", str(one), "--seed", "7"], ["--photo", str(one), "--frames", "3"]):
        with pytest.raises(ConfigError, match="rendered with other options"):
            _render(*other, "--out", str(out))
    assert {p.name: p.read_bytes() for p in seq.iterdir()} == first
    assert _render("--photo", str(one), "--out", str(out)) == 0  # the same options: the same sequences again
    assert {p.name: p.read_bytes() for p in seq.iterdir()} == first
    assert json.loads((out / "render.json").read_text())["options"]["enroll"] == [str(two), str(three)]


def test_render_refuses_an_out_it_cannot_own_or_write(tmp_path: Path, fake_detector: None) -> None:
    (tmp_path / "p").mkdir()
    photo, _ = face_photo(tmp_path / "p" / "1.jpg"), face_photo(tmp_path / "p" / "2.jpg")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        _render("--photo", str(photo), "--out", str(busy))
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="not an empty folder"):
        _render("--photo", str(photo), "--out", str(busy / "notes.txt"))
    with pytest.raises(ConfigError, match="is the photo attacked with"):
        _render("--photo", str(photo), "--enroll", str(photo), "--out", str(tmp_path / "o"))
    with pytest.raises(SystemExit):
        _parse("render", "--out", "x", "--seed", "-1")


def test_a_render_that_fails_before_its_first_sequence_claims_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import kiosk.vision.pipeline

    def detect(rgb: np.ndarray) -> list[Face]:  # a blank photo shows no face
        return [] if rgb.max() == rgb.min() else fake_detect(rgb)

    monkeypatch.setattr(kiosk.vision.pipeline, "build_detector", lambda *a, **k: types.SimpleNamespace(detect=detect))
    (tmp_path / "p").mkdir()
    blank = tmp_path / "p" / "0.jpg"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 90, np.uint8))
    one, two = face_photo(tmp_path / "p" / "1.jpg"), face_photo(tmp_path / "p" / "2.jpg")
    out = tmp_path / "out"
    with pytest.raises(NoFaceError):
        _render("--photo", str(blank), "--enroll", str(two), "--out", str(out))
    assert _render("--photo", str(one), "--enroll", str(two), "--out", str(out)) == 0  # the corrected run


def test_render_records_absolute_paths_and_takes_equivalent_options_as_the_same(
        tmp_path: Path, fake_detector: None, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "obama"
    folder.mkdir()
    for i in (1, 2, 3):
        face_photo(folder / f"{i}.jpg")
    monkeypatch.chdir(folder)
    out = tmp_path / "out"
    assert _render("--photo", "1.jpg", "--enroll", "2.jpg", "3.jpg", "--out", str(out)) == 0
    meta = read_meta(out / "print_still" / "000_obama")
    assert meta.source == str(folder / "1.jpg") and meta.enroll_photos == [str(folder / "2.jpg"), str(folder / "3.jpg")]
    assert _render("--photo", str(folder / "1.jpg"), "--enroll", "3.jpg", "2.jpg", "--subject", "obama",
                   "--out", str(out)) == 0
    assert [p.name for p in (out / "print_still").iterdir()] == ["000_obama"]


@pytest.mark.parametrize("record", ['{"options": ["photo"]}', '{"options": "abc"}',
                                    '{"options": {}, "species": 5}', '{"options": {}, "species": "print_bent"}'])
def test_a_render_record_of_the_wrong_shape_is_refused_not_trusted(
        record: str, tmp_path: Path, fake_detector: None) -> None:
    (tmp_path / "p").mkdir()
    photo, _ = face_photo(tmp_path / "p" / "1.jpg"), face_photo(tmp_path / "p" / "2.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "render.json").write_text(record)
    with pytest.raises(ConfigError, match=r"render\.json is unreadable"):
        _render("--photo", str(photo), "--out", str(out))


def test_a_second_render_with_another_detector_is_refused_and_the_first_is_kept(
        tmp_path: Path, fake_detector: None) -> None:
    (tmp_path / "obama").mkdir()
    one, _ = (face_photo(tmp_path / "obama" / f"{i}.jpg") for i in (1, 2))
    out = tmp_path / "out"
    assert _render("--photo", str(one), "--out", str(out), "--detector", "full") == 0
    seq = out / "print_still" / "000_obama"
    first = {p.name: p.read_bytes() for p in seq.iterdir()}
    assert json.loads((out / "render.json").read_text())["options"]["detector"] == "full"
    for other in (["--detector", "short"], []):  # no --detector is auto, not full
        with pytest.raises(ConfigError, match=r"rendered with other options \(detector\)"):
            _render("--photo", str(one), "--out", str(out), *other)
    assert {p.name: p.read_bytes() for p in seq.iterdir()} == first


def test_render_help_gives_its_own_detector_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("render", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "default: auto" in text and "configuration" not in text


def test_an_interrupted_render_says_how_far_it_got_and_the_same_command_finishes_it(
        tmp_path: Path, fake_detector: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import kiosk.pad.render

    (tmp_path / "obama").mkdir()
    one, _ = (face_photo(tmp_path / "obama" / f"{i}.jpg") for i in (1, 2))
    out = tmp_path / "out"
    real, calls = kiosk.pad.render.render_photo, []

    def ctrl_c_at_the_third(*a: object, **k: object) -> Path:
        calls.append(a)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(kiosk.pad.render, "render_photo", ctrl_c_at_the_third)
    argv = ("--photo", str(one), "--count", "4", "--out", str(out))
    assert _render(*argv) == 130
    err = capsys.readouterr().err
    assert f"interrupted: 2 sequences written under {out}; run the same command again to finish" in err
    assert len(list(out.rglob("meta.json"))) == 2
    monkeypatch.setattr(kiosk.pad.render, "render_photo", real)
    assert _render(*argv) == 0
    assert len(list(out.rglob("meta.json"))) == 4
