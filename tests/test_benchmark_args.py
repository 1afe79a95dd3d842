"""Benchmarks refuse bad options when they are parsed, before minutes of rendering or replays."""

from __future__ import annotations

import argparse
from types import ModuleType

import pytest

from benchmarks import pad, pad_camera, pad_cooperative, partial
from kiosk.pad.camera_shift import PRESETS


def test_cameras_are_named_presets_or_all() -> None:
    assert pad_camera.cameras("all") == list(PRESETS.values())
    assert [c.name for c in pad_camera.cameras("far, low light")] == ["far", "low light"]
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown camera fisheye; choose from as recorded"):
        pad_camera.cameras("far,fisheye")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown camera"):
        pad_camera.cameras(" , ")


def test_share_gives_the_count_and_its_exact_interval() -> None:
    assert pad_camera.share(0, 25) == {"k": 0, "n": 25, "ci95": [0.0, 0.1372]}
    assert pad_camera.share(0, 0)["ci95"] == [0.0, 1.0]


@pytest.mark.parametrize("module, argv, message", [
    (pad_camera, ["--cameras", "fisheye"], "unknown camera"),
    (pad_camera, ["--no-passive", "--no-cooperative"], "not allowed with"),
    (partial, ["--camera", "fisheye"], "invalid choice"),
    (pad_cooperative, ["--camera", "fisheye"], "invalid choice"),
    (pad, ["--render-only"], "--render-only needs --work"),
    (pad, ["--render-only", "--work", "w", "--from-json", "r.json", "--doc", "d.md"], "not with --from-json"),
])
def test_a_bad_option_stops_the_benchmark_at_once(module: ModuleType, argv: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        module.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_camera_report_names_the_gate_that_kept_a_clip_out(capsys: pytest.CaptureFixture[str]) -> None:
    shared = pad_camera.share(0, 2)
    clips = [{"clip": "a", "usable_frames": 0, "gate_failures": {"blurred": 64}},
             {"clip": "b", "usable_frames": 30, "gate_failures": {"too_small": 2}}]
    pad_camera.report([{"camera": "soft lens", "passive": {"bpcer": shared, "bpnrr": shared, "recognisable":
                                                           pad_camera.share(1, 2), "clips": clips}}])
    out = capsys.readouterr().out
    assert "clips never usable: 1, stopped by blurred" in out and "too_small" not in out
