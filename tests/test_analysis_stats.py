"""Wilson intervals, the two-proportion test and Holm's adjustment, with property tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_builder.analysis.stats import holm_adjust, holm_adjust_columns, two_proportion_p, wilson_interval


@st.composite
def counts(draw, max_n=5000):
    n = draw(st.integers(min_value=1, max_value=max_n))
    k = draw(st.integers(min_value=0, max_value=n))
    return k, n


def test_wilson_known_value():
    # 8 of 10 at 95 %: the Wilson interval is about 0.4902 to 0.9433.
    lower, upper = wilson_interval(8, 10)
    assert float(lower) == pytest.approx(0.4902, abs=1e-4)
    assert float(upper) == pytest.approx(0.9433, abs=1e-4)


def test_wilson_empty_sample_is_nan():
    lower, upper = wilson_interval(np.array([0]), np.array([0]))
    assert math.isnan(lower[0])
    assert math.isnan(upper[0])


def test_wilson_rejects_k_above_n():
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(5, 4)


@given(counts())
def test_wilson_contains_estimate(kn):
    k, n = kn
    lower, upper = wilson_interval(k, n)
    assert 0.0 <= lower <= k / n <= upper <= 1.0


@given(counts())
def test_wilson_symmetric(kn):
    k, n = kn
    lower, upper = wilson_interval(k, n)
    flipped_lower, flipped_upper = wilson_interval(n - k, n)
    assert lower == pytest.approx(1 - flipped_upper, abs=1e-12)
    assert upper == pytest.approx(1 - flipped_lower, abs=1e-12)


@given(counts(max_n=1000), st.integers(min_value=2, max_value=20))
def test_wilson_narrows_with_more_data(kn, factor):
    k, n = kn
    lower, upper = wilson_interval(k, n)
    big_lower, big_upper = wilson_interval(k * factor, n * factor)
    assert big_upper - big_lower <= upper - lower + 1e-12


@given(counts(), counts())
@settings(max_examples=200)
def test_two_proportion_p_valid_and_symmetric(a, b):
    p = two_proportion_p(a[0], a[1], b[0], b[1])
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(two_proportion_p(b[0], b[1], a[0], a[1]), rel=1e-9, abs=1e-12)


@given(counts())
def test_two_proportion_equal_samples_not_significant(kn):
    k, n = kn
    assert two_proportion_p(k, n, k, n) == pytest.approx(1.0)


def test_two_proportion_clear_difference():
    assert two_proportion_p(80, 100, 20, 100) < 1e-10


def test_two_proportion_small_counts_use_fisher():
    # Fisher's exact test on [[3, 7], [0, 10]] gives p = 0.2105.
    assert two_proportion_p(3, 10, 0, 10) == pytest.approx(0.2105, abs=1e-4)


def test_two_proportion_empty_is_nan():
    assert math.isnan(two_proportion_p(0, 0, 1, 5))


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=15))
def test_holm_bounds_and_order(p_values):
    adjusted = holm_adjust(p_values)
    for raw, adj in zip(p_values, adjusted):
        assert raw <= adj + 1e-15
        assert adj <= 1.0
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    ranked = [adjusted[i] for i in order]
    assert ranked == sorted(ranked)


def test_holm_known_values():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_keeps_nan():
    adjusted = holm_adjust([math.nan, 0.02])
    assert math.isnan(adjusted[0])
    assert adjusted[1] == pytest.approx(0.02)


@given(st.lists(st.lists(st.one_of(st.floats(min_value=0, max_value=1), st.just(math.nan)), min_size=4, max_size=4),
                min_size=1, max_size=6))
def test_holm_columns_match_holm_adjust(columns):
    table = np.array(columns, dtype=float).T  # axis 0: the p-values of one family

    adjusted = holm_adjust_columns(table)

    for index, column in enumerate(columns):
        expected = holm_adjust(column)
        assert np.array_equal(adjusted[:, index], np.array(expected), equal_nan=True), (column, expected)
