"""Exact binomial intervals in pure Python, checked against closed forms and published values."""

from __future__ import annotations

import math

import pytest

from kiosk.policy.stats import betainc, clopper_pearson, format_rate


def test_zero_successes_upper_end_is_the_closed_form() -> None:
    for n in (1, 10, 4507, 1_000_000):
        lo, hi = clopper_pearson(0, n)
        assert lo == 0.0
        assert hi == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-12)


def test_all_successes_lower_end_is_the_closed_form() -> None:
    lo, hi = clopper_pearson(20, 20)
    assert hi == 1.0
    assert lo == pytest.approx(0.025 ** (1 / 20), rel=1e-12)


def test_interval_matches_published_values() -> None:
    # R: binom.test(5, 10)$conf.int -> 0.1870860 0.8129140; binom.test(1, 1e5) -> 2.531780e-07 5.571516e-05
    assert clopper_pearson(5, 10) == pytest.approx((0.1870860, 0.8129140), abs=1e-7)
    lo, hi = clopper_pearson(1, 100_000)
    assert lo == pytest.approx(2.531780e-07, rel=1e-5)
    assert hi == pytest.approx(5.571516e-05, rel=1e-5)


def test_interval_is_symmetric_under_swapping_successes_and_failures() -> None:
    lo, hi = clopper_pearson(3, 17)
    lo2, hi2 = clopper_pearson(14, 17)
    assert lo == pytest.approx(1 - hi2, abs=1e-12)
    assert hi == pytest.approx(1 - lo2, abs=1e-12)


def test_interval_contains_the_point_estimate_and_narrows_with_more_trials() -> None:
    widths = []
    for n in (100, 1000, 10_000):
        k = n // 100
        lo, hi = clopper_pearson(k, n)
        assert lo < k / n < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]


def test_regularised_incomplete_beta_matches_closed_forms() -> None:
    assert betainc(1.0, 1.0, 0.3) == pytest.approx(0.3, abs=1e-14)  # uniform
    assert betainc(2.0, 1.0, 0.3) == pytest.approx(0.09, abs=1e-14)  # x^2
    assert betainc(1.0, 3.0, 0.2) == pytest.approx(1 - 0.8**3, abs=1e-14)
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5, abs=1e-12)
    assert betainc(2.5, 4.0, 0.0) == 0.0 and betainc(2.5, 4.0, 1.0) == 1.0
    assert math.isfinite(betainc(1e4, 1e4, 0.5))


@pytest.mark.parametrize(("k", "n"), [(-1, 10), (11, 10), (0, 0)])
def test_impossible_counts_are_refused(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        clopper_pearson(k, n)


def test_rate_text_carries_counts_and_interval() -> None:
    assert format_rate(0, 4507) == "0/4507 = 0.00e+00 [0.00e+00, 8.18e-04]"
