import numpy as np
import pytest

from kiosk.evaluation import (
    accuracy_at,
    all_pairs,
    auc,
    best_threshold,
    roc_curve,
    tar_at_far,
    threshold_at_far,
    verification_report,
)


def test_perfectly_separated_scores_have_auc_one_and_full_accuracy() -> None:
    scores = [0.9, 0.8, 0.7, 0.2, 0.1]
    same = [True, True, True, False, False]
    roc = roc_curve(scores, same)
    assert auc(roc) == pytest.approx(1.0)
    acc, thr = best_threshold(scores, same)
    assert acc == 1.0 and 0.2 < thr < 0.7
    assert tar_at_far(roc, 0.0) == 1.0


def test_reversed_scores_have_auc_zero() -> None:
    assert auc(roc_curve([0.1, 0.2, 0.8, 0.9], [True, True, False, False])) == pytest.approx(0.0)


def test_tar_at_far_and_threshold_at_far_on_a_known_ranking() -> None:
    # 4 different pairs, one of them scoring above two same pairs
    scores = [0.95, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    same = [True, False, True, True, False, False, False, True]
    roc = roc_curve(scores, same)
    assert tar_at_far(roc, 0.0) == pytest.approx(0.25)
    assert tar_at_far(roc, 0.25) == pytest.approx(0.75)
    assert threshold_at_far(roc, 0.0) == pytest.approx(0.95)
    assert accuracy_at(scores, same, 0.45) == pytest.approx(6 / 8)


def test_report_needs_both_kinds_of_pair() -> None:
    with pytest.raises(ValueError, match="both same and different"):
        verification_report([0.5, 0.6], [True, True], 0.5)


def test_report_fields() -> None:
    r = verification_report([0.9, 0.1, 0.8, 0.3], [True, False, True, False], 0.5, n_skipped=2).as_dict()
    assert r["n_pairs"] == 4 and r["n_skipped"] == 2 and r["accuracy_at_threshold"] == 1.0
    assert set(r["tar_at_far"]) == {"0.01", "0.001"}


def test_all_pairs_enumerates_each_unordered_pair_once() -> None:
    i, j, same = all_pairs(["a", "a", "b", "b", "b"])
    assert len(i) == 10 and np.all(i < j)
    assert int(same.sum()) == 1 + 3
