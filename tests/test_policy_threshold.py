"""The score model, the derived threshold and the margin rule, on synthetic tables and on the shipped one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.policy.margin import Outcome, decide
from kiosk.policy.scoremodel import TABLE_PATH, ScoreModel, ScoreTableError, default_model
from kiosk.policy.threshold import approach_acceptance, derive, explicit, per_comparison_far

PAIRS = 1_000_000
GRID = [round(0.05 * i, 2) for i in range(21)]  # 0.00 .. 1.00


def synthetic(slope: float = -10.0, pairs: int = PAIRS, genuine: Any = None) -> dict[str, Any]:
    """Impostor FAR(t) = 10^(-1 + slope * t); genuine TAR(t) = 1 - t (or as given)."""
    counts = [round(pairs * 10 ** (-1 + slope * t)) for t in GRID]
    tar = genuine or (lambda t: 1.0 - t)
    gen = [round(10_000 * tar(t)) for t in GRID]
    return {"cosine": GRID, "impostor": {"single": {"pairs": pairs, "at_or_above": counts}},
            "genuine": {"single": {"pairs": 10_000, "at_or_above": gen},
                        "template3": {"pairs": 10_000, "at_or_above": gen}},
            "provenance": {"sets": [{"name": "synthetic"}]}}


def test_far_is_read_from_the_counts_on_grid_points() -> None:
    m = ScoreModel(synthetic())
    d = m.far_detail(0.2)
    assert d.measured and d.count == 1000 and d.far == pytest.approx(1e-3)


def test_far_between_grid_points_is_interpolated_in_log_space() -> None:
    m = ScoreModel(synthetic())
    # halfway between 1e-3 (t=0.20) and 1e-3.5 (t=0.25): the geometric mean
    assert m.far(0.225) == pytest.approx(10 ** -3.25, rel=0.01)


def test_far_beyond_the_data_is_extrapolated_and_labelled() -> None:
    m = ScoreModel(synthetic())
    # counts >= 10 up to FAR 1e-5 (t = 0.40): measured; above, the fitted tail
    assert m.measured_limit() == pytest.approx(0.40)
    assert m.far_detail(0.40).measured
    beyond = m.far_detail(0.6)
    assert not beyond.measured and beyond.count is None
    assert beyond.far == pytest.approx(1e-7, rel=0.05)  # the tail recovers the exponential
    assert m.tails["single"].slope == pytest.approx(-10.0, rel=0.02)


def test_inverse_gives_the_lowest_threshold_holding_the_rate() -> None:
    m = ScoreModel(synthetic())
    for far in (1e-2, 3e-4, 1e-5, 1e-7):
        t = m.threshold_for(far)
        assert m.far(t) <= far * (1 + 1e-6)
        assert m.far(t - 1e-4) > far
        assert t == pytest.approx((math.log10(far) + 1) / -10.0, abs=2e-3)


def test_unreachable_rate_gives_cosine_one() -> None:
    m = ScoreModel(synthetic(slope=-3.0))  # FAR(1.0) = 1e-4: nothing stricter exists
    assert m.threshold_for(1e-6) == 1.0


def test_largest_impostor_curve_governs_unless_one_is_named() -> None:
    table = synthetic()
    table["impostor"]["template3"] = {"pairs": PAIRS, "at_or_above": [2 * c for c in
                                                                        table["impostor"]["single"]["at_or_above"]]}
    m = ScoreModel(table)
    assert m.far(0.2) == pytest.approx(2e-3)
    assert m.far(0.2, "single") == pytest.approx(1e-3)


def test_true_accept_rate_is_read_from_the_genuine_curve() -> None:
    m = ScoreModel(synthetic())
    assert m.tar(0.3) == pytest.approx(0.7)
    assert m.genuine_quantile(0.25) == pytest.approx(0.25, abs=1e-6)


@pytest.mark.parametrize("breakage", ["missing", "length", "order"])
def test_a_mangled_table_is_refused_with_a_clear_error(breakage: str) -> None:
    t = synthetic()
    if breakage == "missing":
        del t["impostor"]
    elif breakage == "length":
        t["genuine"]["single"]["at_or_above"] = t["genuine"]["single"]["at_or_above"][:-1]
    else:
        t["cosine"] = list(reversed(t["cosine"]))
    with pytest.raises(ScoreTableError, match="score table"):
        ScoreModel(t)


def test_a_missing_table_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ScoreTableError, match=r"benchmarks\.score_model"):
        ScoreModel.load(tmp_path / "nope.json")


def test_per_comparison_rate_follows_the_gallery_size() -> None:
    assert per_comparison_far(1e-4, 1) == pytest.approx(1e-4)
    assert per_comparison_far(1e-4, 100) == pytest.approx(1 - (1 - 1e-4) ** (1 / 100), rel=1e-9)
    assert approach_acceptance(per_comparison_far(1e-4, 1000), 1000) == pytest.approx(1e-4, rel=1e-9)


@given(st.integers(1, 100_000), st.integers(1, 100_000))
def test_threshold_never_falls_as_the_gallery_grows(a: int, b: int) -> None:
    m = ScoreModel(synthetic())
    small, big = sorted((a, b))
    assert per_comparison_far(1e-4, big) <= per_comparison_far(1e-4, small)
    assert derive(m, big).threshold >= derive(m, small).threshold


def test_derived_threshold_matches_the_table() -> None:
    m = ScoreModel(synthetic())
    for n in (1, 10, 100):
        level = derive(m, n, 1e-3)
        assert level.threshold == pytest.approx(m.threshold_for(per_comparison_far(1e-3, n)))
        assert level.expected_tar == pytest.approx(1.0 - level.threshold, abs=1e-3)
    assert not derive(m, 1, 1e-3).extrapolated
    assert derive(m, 1000, 1e-3).extrapolated  # 1e-6 per comparison lies beyond the data


def test_warns_with_the_expected_true_accept_rate_when_the_level_is_not_useful() -> None:
    m = ScoreModel(synthetic())
    ok = derive(m, 1, 1e-2)  # threshold 0.1, TAR 90 %
    assert ok.warning is None
    poor = derive(m, 100, 1e-4)  # 1e-6 per comparison: threshold 0.5, TAR 50 %; ask for 60 %
    assert derive(m, 100, 1e-4, min_tar=0.6).warning is not None
    assert "50%" in (derive(m, 100, 1e-4, min_tar=0.6).warning or "")
    assert poor.expected_tar == pytest.approx(0.5, abs=1e-3)
    assert "WARNING" in derive(m, 100, 1e-4, min_tar=0.6).describe()


def test_an_unreachable_level_warns_that_nobody_would_get_in() -> None:
    level = derive(ScoreModel(synthetic(slope=-3.0)), 1000, 1e-4)
    assert level.threshold == 1.0 and level.warning and "cannot be reached" in level.warning


def test_an_explicit_cosine_reports_the_level_it_gives() -> None:
    m = ScoreModel(synthetic())
    level = explicit(m, 100, 0.2)
    assert level.explicit
    assert level.far_per_comparison == pytest.approx(1e-3)
    assert level.target == pytest.approx(1 - (1 - 1e-3) ** 100, rel=1e-9)
    assert "set by hand" in level.describe()


def test_the_shipped_table_states_its_provenance_and_holds_its_own_counts() -> None:
    table = json.loads(TABLE_PATH.read_text())
    prov = table["provenance"]
    names = [s["name"] for s in prov["sets"]]
    assert names[0].startswith("lfw-view1") and "johns" in names and "5-celebrity" in names
    assert len(prov["model_sha256"]) == 64 and prov["command"].startswith("python -m benchmarks.score_model")
    m = default_model()
    assert m.impostor["single"].pairs > 10_000_000
    for far in (1e-3, 1e-4, 1e-5):  # measured region: the threshold's FAR is what the counts say
        t = m.threshold_for(far)
        assert m.far_detail(t).measured
        assert m.far(t) <= far * 1.000001


@pytest.mark.parametrize(("best", "second", "outcome", "person"), [
    (0.80, 0.20, Outcome.GRANTED, "ann"),
    (0.70, 0.20, Outcome.UNKNOWN, None),  # under the threshold
    (0.80, 0.77, Outcome.AMBIGUOUS, None),  # the second best is within the margin
    (0.80, 0.75, Outcome.GRANTED, "ann"),  # exactly the margin
    (0.75, -1.0, Outcome.GRANTED, "ann"),  # nobody else enrolled
])
def test_margin_rule(best: float, second: float, outcome: Outcome, person: str | None) -> None:
    v = decide("ann", best, second, threshold=0.75, margin=0.05)
    assert v.outcome is outcome and v.person == person and v.granted == (outcome is Outcome.GRANTED)


def test_margin_rule_with_an_empty_gallery_is_unknown() -> None:
    assert decide(None, -1.0, -1.0, 0.5, 0.05).outcome is Outcome.UNKNOWN
    with pytest.raises(ValueError):
        decide("ann", 0.9, 0.1, 0.5, -0.1)
