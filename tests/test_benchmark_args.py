"""Benchmarks refuse bad options when they are parsed, before minutes of rendering or replays."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks import pad, pad_camera, pad_cooperative, pad_rate, partial
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
    (pad_cooperative, ["--fps", "30"], "a door can only be slower"),
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


def test_runs_at_several_rates_are_gathered_per_rate_and_a_rate_run_twice_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = {"k": 0, "n": 25, "rate": 0.0, "ci95": [0.0, 0.1372]}
    bona = {"fps": 7.5, "commit": "c", "summary": {"bona_fide": {"bpcer": rate, "granted": {**rate, "k": 1},
                                                                 "time_to_verdict_s": {"n": 0}}, "species": {}}}
    coop = {"fps": 7.5, "commit": "c", "time_to_grant_s": {"median": 4.4},
            "rows": [{"clip": "a.mp4", "prompt": p, "verdict": v, "reason": None, "turn": 0.2, "residual": 0.07,
                      "noise": 0.005, "granted": v == "live", "error": None} for p, v in (("left", "live"),
                                                                                         ("right", "flat"))]
            + [{"clip": "b.mp4", "error": "no head turn in the clip"}], "attacks": {}}
    attacks = {"summary": {"bona_fide": {}, "species": {"print_still": {"apcer": rate, "iapar": rate}}}}  # no fps: 15
    files = []
    for name, d in (("bf.json", bona), ("coop.json", coop), ("att.json", attacks)):
        files.append(tmp_path / name)
        files[-1].write_text(json.dumps(d))
    assert pad_rate.main(["--runs", str(files[0]), str(files[1]), f"held-out={files[2]}",
                          "--json", str(tmp_path / "out.json"),
                          "--plot", str(tmp_path / "out.png")]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert list(out) == ["15", "7.5"]
    assert out["7.5"]["cooperative"]["granted"] == {"k": 1, "n": 2, "ci95": [0.0126, 0.9874]}
    assert out["7.5"]["bona_fide"]["bpcer"]["k"] == 0
    assert out["15"]["attacks:held-out"]["species"]["print_still"]["iapar"]["n"] == 25
    printed = capsys.readouterr().out
    assert "granted 1/2" in printed and "print_still   replayed (held-out): door opened 0/25" in printed
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
    assert pad_rate.main(["--runs", str(files[0]), str(files[0])]) == 1
    assert "two bona_fide runs at 7.5 fps" in capsys.readouterr().err


def test_an_eval_of_real_clips_and_attacks_together_keeps_both(tmp_path: Path) -> None:
    rate = {"k": 0, "n": 10, "rate": 0.0, "ci95": [0.0, 0.3085]}
    both = {"fps": 10.0, "summary": {"bona_fide": {"bpcer": rate, "granted": rate, "time_to_verdict_s": {"n": 0}},
                                     "species": {"print_still": {"apcer": rate, "iapar": {**rate, "k": 3}}}}}
    (tmp_path / "both.json").write_text(json.dumps(both))
    fps, held = pad_rate.read_run(tmp_path / "both.json")
    assert fps == 10.0 and [k for k, _ in held] == ["bona_fide", "attacks"]
    assert held[1][1]["species"]["print_still"]["iapar"]["k"] == 3
    (tmp_path / "empty.json").write_text(json.dumps({"summary": {"bona_fide": {}, "species": {}}}))
    assert pad_rate.main(["--runs", str(tmp_path / "empty.json")]) == 1
