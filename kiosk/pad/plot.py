"""``kiosk pad eval --plot``: the flatness score of each presentation, bona fide vs each species (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kiosk.errors import KioskError
from kiosk.pad.meta import BONA_FIDE, SPECIES
from kiosk.pad.present import Outcome

# cue values to plot, most telling first: the residual over the shape change, then the residual itself
SCORE_KEYS = ("ratio", "residual")


def score_key(outcomes: list[Outcome]) -> str | None:
    keys = {k for o in outcomes for k in o.values}
    for want in SCORE_KEYS:
        for k in sorted(keys):
            if want in k:
                return k
    return None


def thresholds(liveness: Any, key: str) -> list[tuple[str, float]]:
    if liveness is None:
        return []
    if "ratio" in key:
        return [("flat at or below", float(liveness.flat_ratio)), ("live at or above", float(liveness.live_ratio))]
    return [("least live residual", float(liveness.min_live_residual))]


def groups(outcomes: list[Outcome]) -> list[tuple[str, int]]:
    """Bona fide, then each species presented, in the table's order, with the n the table gives it:
    presentations that ran (those that could not be run are listed apart, and counted nowhere)."""
    done = [o for o in outcomes if o.error is None]
    names = [BONA_FIDE] + [s for s in SPECIES if any(o.species == s for o in outcomes)] + sorted(
        {o.species for o in outcomes if o.attack and o.species not in SPECIES})
    return [(g, sum(o.species == g for o in done)) for g in names]


def plot_flatness(outcomes: list[Outcome], liveness: Any, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise KioskError("--plot needs matplotlib: pip install 'face-kiosk[plot]'") from exc
    key = score_key(outcomes) or ""
    columns = groups(outcomes)
    fig, ax = plt.subplots(figsize=(10, 5))
    rng = np.random.default_rng(0)
    colours = {"live": "tab:green", "flat": "tab:red", "none": "tab:grey"}
    for gi, (g, _) in enumerate(columns):
        for o in (o for o in outcomes if o.species == g and o.error is None and key in o.values):
            ax.scatter(gi + rng.uniform(-0.25, 0.25), o.values[key], s=14, color=colours.get(o.verdict, "tab:grey"),
                       marker="^" if o.challenged else "o", alpha=0.8)
    for label, value in thresholds(liveness, key or ""):
        ax.axhline(value, linestyle="--", color="black", linewidth=1)
        ax.annotate(f"{label} {value:g}", (len(columns) - 0.5, value), ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([f"{g}\n(n={n})" for g, n in columns])
    ax.set_ylabel(key or "no flatness values in the results")
    ax.set_title("flatness per presentation: green live, red flat, grey no verdict; triangles after a challenge")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise KioskError(f"cannot write {out}: {exc}") from exc
    finally:
        plt.close(fig)
