"""ISO/IEC 30107-3 rates and exact binomial intervals, against values computed independently."""

from __future__ import annotations

import math

import pytest

from kiosk.pad.metrics import Rate, beta_ppf, betainc, clopper_pearson, percentiles, rate


def test_incomplete_beta_matches_the_binomial_tail_for_integer_parameters() -> None:
    # I_x(a, b) = P(Binomial(a + b - 1, x) >= a)
    for a, b, x in [(2, 3, 0.5), (1, 1, 0.3), (5, 2, 0.8), (3, 7, 0.1)]:
        n = a + b - 1
        tail = sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))
        assert betainc(a, b, x) == pytest.approx(tail, abs=1e-12)


def test_incomplete_beta_edges_and_inverse() -> None:
    assert betainc(2.0, 3.0, 0.0) == 0.0
    assert betainc(2.0, 3.0, 1.0) == 1.0
    assert betainc(2.0, 3.0, beta_ppf(0.3, 2.0, 3.0)) == pytest.approx(0.3, abs=1e-9)
    with pytest.raises(ValueError, match="a > 0"):
        betainc(0.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        betainc(1.0, 1.0, 1.5)


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    (0, 50, 0.0, 0.0711),  # the target: 0 of 50 keeps the upper bound under 7.2 %
    (0, 60, 0.0, 0.0596),  # 0 of 60: under 6 %
    (5, 20, 0.0866, 0.4910),
    (1, 10, 0.0025, 0.4450),
    (50, 50, 0.9289, 1.0),
])
def test_clopper_pearson_known_intervals(k: int, n: int, lo: float, hi: float) -> None:
    got = clopper_pearson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


def test_zero_errors_upper_bound_has_the_closed_form() -> None:
    for n in (1, 7, 50, 300):
        assert clopper_pearson(0, n)[1] == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-9)


def test_clopper_pearson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(3, 2)
    with pytest.raises(ValueError, match="n > 0"):
        clopper_pearson(0, 0)


def test_rate_reports_count_interval_and_text() -> None:
    r = rate([False] * 49 + [True])
    assert (r.k, r.n, r.value) == (1, 50, 0.02)
    d = r.as_dict()
    assert d["rate"] == 0.02 and r.interval is not None and r.interval[1] == pytest.approx(0.1065, abs=1e-4)
    assert d["ci95"] == [0.0005, 0.1065]
    assert str(r).startswith("2.0 % (1/50, 95 % CI 0.1-10.6 %)")
    empty = Rate(0, 0)
    assert empty.value is None and empty.as_dict()["ci95"] is None and str(empty) == "n/a (n=0)"


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) == {"n": 0, "median": None, "p90": None}
    p = percentiles([float(v) for v in range(1, 11)])
    assert p == {"n": 10, "median": 5.5, "p90": 9.0}
