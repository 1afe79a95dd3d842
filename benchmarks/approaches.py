"""The attackers of the benchmarks on live heads: real people from ../shared/data/videos who answer the prompt.

Each clip with a clear head turn is played as someone who answers the head-turn prompt
(``kiosk.pad.cooperative``), once prompted left and once right, through the real loop; the
approaches that end with a live verdict are the real heads an attacker brings to the door.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, NamedTuple

from kiosk.pad.metrics import clopper_pearson


class Approach(NamedTuple):
    clip: Path
    prompt: str  # "left" or "right"
    seed: int  # the presentation seed that draws that prompt
    live_s: float  # when the live verdict came, on the replay's clock


def prompt_seeds() -> dict[str, int]:
    """A presentation seed per prompt direction: the first that draws it."""
    from kiosk.liveness.challenge import choose_direction

    return {d: next(s for s in range(100) if choose_direction(random.Random(s)) == d) for d in ("left", "right")}


def live_approaches(pipeline: Any, threshold: float, config: Any, landmarker: Any, clips: list[Path],
                    fps: float = 15.0, max_s: float = 12.0, wrap: Any = None) -> list[Approach]:
    """Every (clip, prompt) whose cooperative replay, alone, ends live (``wrap``: through that source
    wrapper, e.g. another camera)."""
    from kiosk.pad.present import Presenter, from_video
    from kiosk.progress import Progress

    live: list[Approach] = []
    seeds = prompt_seeds()
    bar = Progress(len(seeds) * len(clips), "attacker alone")
    for n, clip in enumerate(clips):
        for k, (direction, seed) in enumerate(seeds.items()):
            o = Presenter(pipeline, threshold, config, landmarker, seed=seed).present_cooperative(
                from_video(clip, fps, max_s), wrap=wrap)
            if o.error is None and o.verdict == "live" and o.verdict_s is not None:
                live.append(Approach(clip, direction, seed, o.verdict_s))
            bar(len(seeds) * n + k + 1)
    return live


def rate(rows: list[dict[str, Any]], key: str = "door_opened") -> dict[str, Any]:
    """How many of the rows (errors left out) have ``key`` true, with the 95 % Clopper-Pearson interval."""
    own = [r for r in rows if r.get("error") is None]
    k = sum(1 for r in own if r[key])
    lo, hi = clopper_pearson(k, len(own)) if own else (0.0, 1.0)
    return {"presented": len(own), key: k, "ci95": [lo, hi]}


def short_clip(clip: Path) -> str:
    return str(clip).split("videos/")[-1]


def victim_arguments(ap: Any) -> None:
    """The options both attack benchmarks on live heads take."""
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--people", type=int, default=10, help="victims drawn from lfw-view1")
    ap.add_argument("--seed", type=int, default=2026, help="which lfw-view1 people")


def data_missing(data: Path, name: str) -> bool:
    """True (after saying so) when ../shared/data lacks the real clips or lfw-view1."""
    import sys

    if (data / "videos").is_dir() and (data / "lfw-view1").is_dir():
        return False
    print(f"{name}: the shared data is missing at {data}", file=sys.stderr)
    return True


def commit() -> str:
    """The commit of the code this run loads, with ``-dirty`` when tracked Python files differ from it
    (the results then come from code no commit holds)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=root).stdout.strip() or "unknown"
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "*.py"],
                             capture_output=True, text=True, cwd=root).stdout.strip()
    return head + "-dirty" if changed and head != "unknown" else head
