"""A block of measured figures to paste into docs/performance.md, run on the Pi itself.

    .venv/bin/python -m benchmarks.pi_block [--threads 4] [--quick] [--json out.json]

The machine is read from /proc/device-tree/model (e.g. "Raspberry Pi 5 Model B
Rev 1.0"). Anywhere else the block says it is not a Raspberry Pi, and still
prints the figures measured here, so they can never be mistaken for a Pi's.
The figures are the kiosk's per-stage benchmark (benchmarks/stages.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from benchmarks import stages
from benchmarks.report import save

MODEL_PATH = Path("/proc/device-tree/model")


def pi_model(path: Path = MODEL_PATH) -> str | None:
    """The board's name from the device tree, or None when this is not a Raspberry Pi."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    name = raw.rstrip(b"\0").decode("utf-8", "replace").strip()
    return name if name.startswith("Raspberry Pi") else None


def block(res: dict[str, Any], model: str | None, when: str) -> str:
    """Markdown for docs/performance.md from a ``stages.run`` result."""
    m = res["machine"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
    if model is None:
        title = f"### Not a Raspberry Pi: {m['cpu']} ({m['arch']}), measured {when}"
        note = ("> /proc/device-tree/model does not name a Raspberry Pi, so these figures are **not** Pi figures; "
                "run `python -m benchmarks.pi_block` on the Pi and paste its block instead.")
    else:
        title = f"### {model}, measured {when}"
        note = (f"> Measured on the board itself (/proc/device-tree/model: {model}); "
                "figures are medians of repeated runs in one process.")
    lines = [title, "", note, "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['arch']}, {m['os']}; Python {m['python']}; "
             f"{res['runtime']}; {res['threads']} threads; frame {res['frame']}. Packages: {pkgs}.", "",
             "| stage | median ms | min ms | max ms | runs |", "|---|---|---|---|---|"]
    for name, v in res["stages"].items():
        lines.append(f"| {name} | {v['median_ms']:.2f} | {v['min_ms']:.2f} | {v['max_ms']:.2f} | {v['n']} |")
    lines += ["", "Load ms: " + ", ".join(f"{k} {v}" for k, v in res["load_ms"].items()) + ".",
              "Ratios: " + ", ".join(f"{k} {v}x" for k, v in res["ratios"].items()) + ".",
              f"Command: `python -m benchmarks.pi_block --threads {res['threads']}"
              f"{' --quick' if res.get('quick') else ''}`."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=4, help="interpreter threads (a Pi 4 or 5 has 4 cores)")
    ap.add_argument("--quick", action="store_true", help="few repetitions (a smoke run, not figures to publish)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    model = pi_model()
    res = stages.run(args.quick, args.threads)
    res["quick"] = args.quick
    res["device_tree_model"] = model
    print(block(res, model, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")))
    save(res, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
