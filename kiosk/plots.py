"""ROC and score-histogram figure for ``kiosk eval --plot`` (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError
from kiosk.evaluation import Report, roc_curve


def plot_verification(scores: npt.NDArray[np.float64], same: npt.NDArray[np.bool_], report: Report, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise KioskError("--plot needs matplotlib: pip install 'face-kiosk[plot]'") from exc
    roc = roc_curve(scores, same)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.plot(roc.fpr, roc.tpr, color="tab:blue", label=f"ROC (AUC {report.auc:.4f})")
    at = np.argmin(np.abs(roc.thresholds - report.threshold))
    ax1.plot(roc.fpr[at], roc.tpr[at], "o", color="tab:red", label=f"threshold {report.threshold:.3f}")
    ax1.set_xscale("symlog", linthresh=1e-3)
    ax1.set_xlim(0, 1)
    ax1.set_ylim(0, 1.01)
    ax1.set_xlabel("false accept rate")
    ax1.set_ylabel("true accept rate")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="lower right")
    bins = np.linspace(min(-0.2, scores.min()), 1.0, 50)
    ax2.hist(scores[~same], bins=bins, alpha=0.6, color="tab:red", label=f"different ({int((~same).sum())})")
    ax2.hist(scores[same], bins=bins, alpha=0.6, color="tab:green", label=f"same ({int(same.sum())})")
    ax2.axvline(report.threshold, color="black", linestyle="--", label=f"threshold {report.threshold:.3f}")
    ax2.set_xlabel("cosine similarity")
    ax2.set_ylabel("pairs")
    ax2.legend()
    fig.suptitle(f"{report.n_pairs} pairs: accuracy {100 * report.accuracy_at_threshold:.2f}% at threshold, "
                 f"best {100 * report.best_accuracy:.2f}%")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise KioskError(f"cannot write {out}: {exc}") from exc
    finally:
        plt.close(fig)
