"""Figure for ``kiosk eval --open-set --plot`` (needs matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.errors import KioskError


def plot_open_set(report: dict[str, Any], out: Path) -> None:
    """Left: acceptance vs gallery size at the chosen level. Right: enrolled vs stranger acceptance per level."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise KioskError("--plot needs matplotlib: pip install 'face-kiosk[plot]'") from exc
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    rows = report["photos"]
    ns = [r["n"] for r in rows]
    for key, color, label in (("enrolled_acceptance", "tab:green", "enrolled (photos)"),
                              ("stranger_acceptance", "tab:red", "strangers (photos)")):
        rate = [r[key]["rate"] for r in rows]
        lo = [r[key]["rate"] - r[key]["ci95"][0] for r in rows]
        hi = [r[key]["ci95"][1] - r[key]["rate"] for r in rows]
        ax1.errorbar(ns, rate, yerr=[lo, hi], marker="o", color=color, capsize=3, label=label)
    vids = report.get("videos") or []
    for key, color, label in (("enrolled_acceptance", "tab:olive", "enrolled (clips, multi-frame)"),
                              ("stranger_acceptance", "tab:purple", "strangers (clips, multi-frame)")):
        if vids:
            ax1.plot([x["n"] for x in vids], [x.get(key, {}).get("rate", 0.0) for x in vids],
                     marker="s", linestyle="--", color=color, label=label)
    ax1.axhline(report["target"], color="black", linestyle=":", label=f"tolerated {report['target']:g}")
    ax1.set_xscale("log")
    ax1.set_yscale("symlog", linthresh=1e-5)
    ax1.set_ylim(0, 1.05)
    ax1.set_xlabel("people enrolled (N)")
    ax1.set_ylabel("acceptance per approach (95% CI)")
    ax1.set_title(f"threshold derived per N for {report['target']:g} per approach")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="center right")
    for r in rows:
        tr = r["tradeoff"]
        ax2.plot([max(t["stranger_acceptance"], 1e-6) for t in tr], [t["enrolled_acceptance"] for t in tr],
                 marker="o", label=f"N={r['n']} photos")
    for r in report.get("videos") or []:
        tr = r["tradeoff"]
        ax2.plot([max(t["stranger_acceptance"], 1e-6) for t in tr], [t["enrolled_acceptance"] for t in tr],
                 marker="s", linestyle="--", label=f"N={r['n']} clips")
    ax2.set_xscale("log")
    ax2.set_xlim(5e-7, 1)
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("measured stranger acceptance per approach (0 drawn at 1e-6)")
    ax2.set_ylabel("enrolled acceptance per approach")
    ax2.set_title("trade-off: one point per tolerated level")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
