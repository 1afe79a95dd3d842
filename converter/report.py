"""Float-vs-int8 parity, verification accuracy and the recommended threshold (pure numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.evaluation import all_pairs, best_threshold, roc_curve, threshold_at_far, verification_report

F32 = npt.NDArray[np.float32]

# The door must not open for a stranger: never recommend a threshold whose
# false-accept rate on the labelled sets exceeds this.
MAX_FAR = 0.001
MIN_FLOAT_AUC = 0.9


def parity(float_emb: F32, int8_emb: F32) -> dict[str, float]:
    cos = np.sum(float_emb * int8_emb, axis=1)
    return {"mean_cosine": round(float(cos.mean()), 6), "min_cosine": round(float(cos.min()), 6), "n": int(cos.size)}


def pair_scores(emb: F32, labels: list[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    i, j, same = all_pairs(labels)
    return np.sum(emb[i] * emb[j], axis=1).astype(np.float64), same


def choose_threshold(scores: npt.NDArray[np.float64], same: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """Best-accuracy threshold, raised if needed until FAR <= MAX_FAR on these pairs."""
    _acc, thr = best_threshold(scores, same)
    far_thr = threshold_at_far(roc_curve(scores, same), MAX_FAR)
    value = max(thr, far_thr)
    return {
        "value": round(value, 4),
        "method": (f"cosine similarity; the best-accuracy threshold on all labelled pairs of the evaluation sets "
                   f"({thr:.4f}), raised to the lowest with false-accept rate <= {MAX_FAR} ({far_thr:.4f}) "
                   "when that is higher"),
        "best_accuracy_threshold": round(thr, 4),
        "far_threshold": round(far_thr, 4),
        "max_far": MAX_FAR,
        "pairs": int(scores.size),
    }


def accuracy_block(emb: F32, labels: list[str], threshold: float) -> dict[str, Any]:
    scores, same = pair_scores(emb, labels)
    return verification_report(scores, same, threshold).as_dict()


def score_model_block(table: dict[str, Any], table_sha256: str, model_sha256: str, table_file: str) -> dict[str, Any]:
    """The score table's summary and provenance for the model card (``kiosk/policy/score_table.json``).

    ``current`` says whether the table was measured with this very model; a
    table measured with another model (or none) must be recomputed with
    ``python -m benchmarks.score_model`` before its thresholds mean anything.
    """
    from kiosk.policy.scoremodel import ScoreModel

    prov = dict(table.get("provenance", {}))
    current = prov.get("model_sha256") == model_sha256
    return {
        "file": table_file,
        "sha256": table_sha256,
        "current": current,
        "note": ("measured with this model" if current else
                 "measured with another model: run `python -m benchmarks.score_model`, then "
                 "`kiosk-convert --attach-score-table`"),
        "measured_vs_extrapolated": ("FAR(t) is measured where at least 10 impostor pairs score >= t (interpolated in "
                                     "log space); above that it is an exponential tail fitted to the last two "
                                     "measured decades (extrapolated)"),
        "summary": ScoreModel(table).summary(),
        "provenance": prov,
    }
