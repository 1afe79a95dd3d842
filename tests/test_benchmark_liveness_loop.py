"""The loop benchmark's report: what it says of the goal follows the figures it measured."""

from __future__ import annotations

from typing import Any

from benchmarks.liveness_loop import table


def _res(sampled: float, camera: float) -> dict[str, Any]:
    def fig(x: float) -> dict[str, float]:
        return {"median_ms": x, "min_ms": x - 0.5, "max_ms": x + 0.5}

    return {"paced": True, "frames": 160, "clip": "d3.mp4", "fps": 30.0, "rounds": 9, "frames_meshed": 80,
            "mesh_threads": {"at_once": 1, "in_turn": 2}, "threads": 2, "goal_ms": 2.0,
            "added_per_sampled_frame": {"at_once": fig(sampled), "in_turn": fig(3.0)},
            "added_per_camera_frame": {"at_once": fig(camera), "in_turn": fig(1.5)},
            "frame_median_ms": {"off": fig(14.0), "at_once": fig(16.0), "in_turn": fig(17.0)}}


def test_the_report_says_within_or_over_the_goal_from_the_loops_way() -> None:
    met = table(_res(1.9, 0.9)).splitlines()[-1]
    assert "adds 1.90 ms per sampled frame (within the 2.0 ms goal)" in met and "0.90 ms per camera frame (within" in met
    over = table(_res(2.1, 0.9)).splitlines()[-1]
    assert "(over the 2.0 ms goal)" in over and "paced" in over
    assert "in turn, 2 thread(s) (the baseline)" in table(_res(1.0, 0.5))
