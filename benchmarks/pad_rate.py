"""Liveness against the landmark rate a door really runs at: one table and one plot from runs at several rates.

    .venv/bin/kiosk pad eval --bona-fide ../shared/data/videos --fps R --json > bf_R.json
    .venv/bin/python -m benchmarks.pad_cooperative --fps R --json coop_R.json
    .venv/bin/kiosk pad eval --attacks DIR/print_still ... --fps R --json > att_R.json
    .venv/bin/python -m benchmarks.pad_cooperative --attacks DIR --no-bona-fide --fps R --json coop_att_R.json
    .venv/bin/python -m benchmarks.pad_rate --runs bf_*.json coop_*.json SET=att_*.json SET=coop_att_*.json \\
        [--json docs/pad_rate.json] [--plot docs/pad_rate.png]

The thresholds were calibrated at 15 landmark frames per second per face. A
Raspberry Pi whose loop cannot keep up, or a slow camera, gives fewer. Each
input file is one run at one rate (its ``fps``; 15 when the file predates the
option); this gathers, per rate: real people replayed without answering
(BPCER: called flat without a prompt), real people answering the prompt
(granted), and per attack species the door opened, replayed as recorded and
by an attacker who turns the artefact the prompted way. Every rate has its
sample size and 95 % Clopper-Pearson interval; nothing here is re-measured.
``SET=FILE`` names the attack set a run used (runs of different sets at one
rate are kept apart).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from kiosk.pad.metrics import clopper_pearson


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"k": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}


def read_run(path: Path, label: str = "") -> tuple[float, list[tuple[str, dict[str, Any]]]]:
    """The rate of one result file and what it holds, as (kind, rows): kinds bona_fide, cooperative, attacks,
    cooperative_attacks (a file may hold several: real clips and attacks in one eval)."""
    d = json.loads(path.read_text())
    fps = float(d.get("fps", 15.0))
    meta = {"file": path.name, "set": label or None, "commit": d.get("commit"), "command": d.get("command")}
    out: list[tuple[str, dict[str, Any]]] = []
    if "rows" in d:  # benchmarks.pad_cooperative
        done = [r for r in d["rows"] if r["error"] is None]
        if done:
            out.append(("cooperative", {**meta, "granted": _rate(sum(r["granted"] for r in done), len(done)),
                                        "clips": sorted({r["clip"] for r in done}),
                                        "time_to_grant_s": d.get("time_to_grant_s"),
                                        "rows": [{k: r[k] for k in ("clip", "prompt", "verdict", "reason", "turn",
                                                                      "residual", "noise")} for r in done]}))
        if d.get("attacks"):
            rows = d["attacks"].get("rows", [])
            att = {sp: {"door_opened": _rate(v["door_opened"], v["with_turn"]), "sequences": v["sequences"],
                        "reasons": v["reasons"],  # and which sequences opened the door, by name
                        "opened": [Path(r["sequence"]).name for r in rows
                                   if r.get("door_opened") and r.get("species") == sp]}
                   for sp, v in d["attacks"]["summary"].items()}
            out.append(("cooperative_attacks", {**meta, "species": att}))
        return fps, out
    s = d["summary"]
    if s.get("bona_fide"):
        b = s["bona_fide"]
        out.append(("bona_fide", {**meta, "bpcer": b["bpcer"], "granted": b["granted"],
                                  "time_to_verdict_s": b["time_to_verdict_s"]}))
    if s.get("species"):
        out.append(("attacks", {**meta, "species": {sp: {"apcer": v["apcer"], "iapar": v["iapar"]}
                                                    for sp, v in s["species"].items()}}))
    return fps, out


def _ci(d: dict[str, Any]) -> str:
    lo, hi = d["ci95"]
    return f"{d['k']}/{d['n']} [{100 * lo:.1f}, {100 * hi:.1f} %]"


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def table(runs: dict[float, dict[str, Any]]) -> str:
    lines = []
    for fps in sorted(runs, reverse=True):
        lines.append(f"{fps:g} landmark frames per second per face")
        for key, run in runs[fps].items():
            kind, where = _kind(key), f" ({run['set']})" if run["set"] else ""
            if kind == "bona_fide":
                lines.append(f"  real clips{where}, no answer: called flat without a prompt (BPCER) "
                             f"{_ci(run['bpcer'])}; granted on passive parallax {_ci(run['granted'])}")
            elif kind == "cooperative":
                t = run["time_to_grant_s"] or {}
                lines.append(f"  real people{where} answering the prompt: granted {_ci(run['granted'])}, "
                             f"time to grant median {t.get('median')} s")
            else:
                col, how = ("iapar", "replayed") if kind == "attacks" else ("door_opened", "turned")
                for sp, v in run["species"].items():
                    if v[col]["n"]:  # a species none of whose sequences held a turn was not played
                        lines.append(f"  {sp:<13} {how}{where}: door opened {_ci(v[col])}")
    return "\n".join(lines)


def plot(runs: dict[float, dict[str, Any]], out: Path, min_n: int = 5) -> None:
    """Two panels over the rate: real people (granted when answering, called flat when not), and the door
    opened per attack (series with fewer than ``min_n`` presentations left out: their intervals say nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    attacks: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for fps, r in sorted(runs.items()):
        for key, run in r.items():
            kind, where = _kind(key), f", {run['set']}" if run["set"] else ""
            if kind == "cooperative":
                real[f"answering the prompt{where}: granted"].append((fps, run["granted"]))
            elif kind == "bona_fide":
                real[f"not answering{where}: called flat (BPCER)"].append((fps, run["bpcer"]))
            else:
                col, how = ("iapar", "replayed") if kind == "attacks" else ("door_opened", "turned")
                for sp, v in run["species"].items():
                    if v[col]["n"] >= min_n:
                        attacks[f"{sp} ({how}{where})"].append((fps, v[col]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), sharey=True)
    strong = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("Dark2").colors)  # no pale colours
    for ax, series, title in ((left, real, "real people (../shared/data/videos, in-sample)"),
                              (right, attacks, "attacks (held-out renders): door opened")):
        for i, (label, pts) in enumerate(series.items()):
            xs = [x + 0.07 * (i - len(series) / 2) for x, _ in pts]  # spread the error bars apart
            ys = [d["k"] / d["n"] if d["n"] else 0.0 for _, d in pts]
            lo = [y - d["ci95"][0] for y, (_, d) in zip(ys, pts)]
            hi = [d["ci95"][1] - y for y, (_, d) in zip(ys, pts)]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="-o" if ax is left else "--s", capsize=3, label=label,
                        markersize=4, color=strong[i % len(strong)])
        ax.axvline(10.0, color="grey", linestyle=":", linewidth=1)
        ax.annotate("liveness.min_sample_hz", (10.05, 1.0), fontsize=8, color="grey", va="top")
        ax.set_xlabel("landmark frames per second per face (calibrated at 15)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left" if ax is left else "upper right")
    left.set_ylabel("fraction, with 95 % Clopper-Pearson interval")
    fig.suptitle("liveness at a slower door")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True,
                    help="result files, one run at one rate each; SET=FILE names the attack set")
    ap.add_argument("--json", type=Path, help="write the gathered table here")
    ap.add_argument("--plot", type=Path, help="write the plot here (PNG)")
    args = ap.parse_args(argv)
    runs: dict[float, dict[str, Any]] = defaultdict(dict)
    for entry in args.runs:
        label, _, name = entry.rpartition("=")
        path = Path(name)
        if not path.is_file():
            print(f"benchmarks.pad_rate: {path} is not a file", file=sys.stderr)
            return 1
        fps, held = read_run(path, label)
        if not held:
            print(f"benchmarks.pad_rate: {path} holds no results", file=sys.stderr)
            return 1
        for kind, rows in held:
            key = f"{kind}:{label}" if label else kind
            if key in runs[fps]:
                print(f"benchmarks.pad_rate: two {kind} runs at {fps:g} fps ({runs[fps][key]['file']}, {path.name})",
                      file=sys.stderr)
                return 1
            runs[fps][key] = rows
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps({f"{k:g}": v for k, v in sorted(runs.items(), reverse=True)}, indent=1) + "\n")
    if args.plot:
        plot(runs, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
