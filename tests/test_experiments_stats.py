"""Tests of dsl_explore.experiments.stats: Spearman, partial Spearman and the cluster bootstrap,
against independent references (scipy, rank regressions, a plain loop) and by properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from dsl_explore.experiments.stats import (
    bootstrap_mean,
    partial_spearman,
    relative_change,
    spearman,
    spearman_interval,
)

# integer-valued data: every strictly increasing map below keeps distinct values distinct in
# float64, so the ranks are exactly those of the input
_values = st.lists(st.integers(-1000, 1000), min_size=3, max_size=40)


@st.composite
def _pairs(draw):
    a = draw(_values)
    b = draw(st.lists(st.integers(-1000, 1000), min_size=len(a), max_size=len(a)))
    return np.array(a, np.float64), np.array(b, np.float64)


@st.composite
def _clustered(draw):
    """Scores in clusters of equal or unequal size, with a random dependence on a driver."""
    n_clusters = draw(st.integers(2, 12))
    equal = draw(st.booleans())
    sizes = [draw(st.integers(1, 4))] * n_clusters if equal else [
        draw(st.integers(1, 4)) for _ in range(n_clusters)]
    groups = np.repeat(np.arange(n_clusters), sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = groups.size
    c = rng.random(n)
    noise = draw(st.floats(0.0, 2.0))
    a = c + noise * rng.standard_normal(n)
    b = draw(st.sampled_from([1.0, -1.0])) * c + noise * rng.standard_normal(n)
    return a, b, c, groups


@settings(max_examples=60, deadline=None)
@given(_pairs())
def test_spearman_matches_scipy(ab):
    a, b = ab
    got = spearman(a, b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(sps.spearmanr(a, b).statistic, abs=1e-12)


_MONOTONE = [
    lambda v: 2.5 * v - 7.0,
    lambda v: v**3,
    lambda v: np.arctan(v / 1000.0),
    lambda v: np.exp(v / 100.0),
]


@settings(max_examples=60, deadline=None)
@given(_pairs(), st.sampled_from(range(len(_MONOTONE))), st.sampled_from(range(len(_MONOTONE))))
def test_spearman_is_invariant_under_increasing_maps(ab, i, j):
    a, b = ab
    rho = spearman(a, b)
    moved = spearman(_MONOTONE[i](a), _MONOTONE[j](b))
    flipped = spearman(-_MONOTONE[i](a), b)
    if math.isnan(rho):
        assert math.isnan(moved) and math.isnan(flipped)
    else:
        assert moved == pytest.approx(rho, abs=1e-12)
        assert flipped == pytest.approx(-rho, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(_pairs(), st.lists(st.integers(-1000, 1000), min_size=40, max_size=40))
def test_partial_spearman_is_the_correlation_of_rank_residuals(ab, cs):
    a, b = ab
    c = np.array(cs[: a.size], np.float64)
    ra, rb, rc = (sps.rankdata(v) for v in (a, b, c))
    design = np.column_stack([np.ones_like(rc), rc])

    def residual(r):
        return r - design @ np.linalg.lstsq(design, r, rcond=None)[0]

    ea, eb = residual(ra), residual(rb)
    got = partial_spearman(a, b, c)
    if min(np.linalg.norm(ea), np.linalg.norm(eb)) < 1e-6 * len(a) or np.ptp(c) == 0:
        return  # c explains a or b (the formula's nan zone); nothing to compare
    expected = float(ea @ eb / (np.linalg.norm(ea) * np.linalg.norm(eb)))
    assert got == pytest.approx(expected, abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 3.0), st.floats(0.01, 3.0))
def test_partial_spearman_of_independent_noise_given_the_driver_is_near_zero(seed, sa, sb):
    rng = np.random.default_rng(seed)
    n = 4000
    c = rng.random(n)
    a = c + sa * rng.standard_normal(n)
    b = c + sb * rng.standard_normal(n)
    # 0.1 is more than 5 standard errors (1/sqrt(n) ~ 0.016) away from 0
    assert abs(partial_spearman(a, b, c)) < 0.1
    if sa < 0.3 and sb < 0.3:
        assert spearman(a, b) > 0.3  # the driver alone makes them correlate


@settings(max_examples=60, deadline=None)
@given(_clustered(), st.booleans())
def test_spearman_interval_contains_its_value_and_is_deterministic(data, partial):
    a, b, c, groups = data
    kw = {"groups": groups, "given": c if partial else None, "n_resamples": 300}
    iv = spearman_interval(a, b, seed=3, **kw)
    assert iv == spearman_interval(a, b, seed=3, **kw) or (
        math.isnan(iv.value) and math.isnan(spearman_interval(a, b, seed=3, **kw).value))
    expected = partial_spearman(a, b, c) if partial else spearman(a, b)
    if math.isnan(expected):
        assert math.isnan(iv.value)
        return
    assert iv.value == pytest.approx(expected, abs=1e-12)
    assert iv.n == np.unique(groups).size
    if math.isfinite(iv.low):
        assert iv.low <= iv.value <= iv.high


def _reference_interval(a, b, groups, *, seed, n_resamples, confidence=0.95):
    """The cluster bootstrap written as a plain loop over resamples."""
    clusters = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in clusters]
    picks = np.random.default_rng(seed).integers(0, clusters.size, (n_resamples, clusters.size))
    draws = []
    for pick in picks:
        idx = np.concatenate([members[i] for i in pick])
        x, y = a[idx], b[idx]
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            draws.append(sps.spearmanr(x, y).statistic)
    alpha = (1 - confidence) / 2
    return np.quantile(draws, [alpha, 1 - alpha])


@pytest.mark.parametrize("sizes", [[3] * 9, [1, 2, 3, 4, 1, 2, 3, 4]])
def test_spearman_interval_matches_a_plain_loop(sizes):
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    a = rng.random(groups.size)
    b = a + 0.5 * rng.standard_normal(groups.size)
    iv = spearman_interval(a, b, groups=groups, seed=11, n_resamples=500)
    low, high = _reference_interval(a, b, groups, seed=11, n_resamples=500)
    assert (iv.low, iv.high) == pytest.approx((low, high), abs=1e-12)
    assert iv.value == pytest.approx(sps.spearmanr(a, b).statistic, abs=1e-12)
    other = spearman_interval(a, b, groups=groups, seed=12, n_resamples=500)
    assert (other.low, other.high) != (iv.low, iv.high)  # the seed is used


def test_spearman_interval_resamples_clusters_not_observations():
    # two clusters that disagree completely: the interval must span both of their signs
    groups = np.repeat([0, 1], 10)
    a = np.arange(20.0)
    b = np.concatenate([np.arange(10.0), -np.arange(10.0) + 100.0])
    iv = spearman_interval(a, b, groups=groups, n_resamples=400)
    assert iv.low == pytest.approx(-1.0) and iv.high == pytest.approx(1.0)
    assert iv.n == 2


def test_spearman_interval_with_one_cluster_has_no_interval():
    iv = spearman_interval([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], groups=[0, 0, 0])
    assert iv.value == pytest.approx(0.5) and math.isnan(iv.low) and math.isnan(iv.high)


def test_stats_reject_bad_arguments():
    with pytest.raises(ValueError, match="a and b must be 1-D of equal length"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="a and c must be 1-D of equal length"):
        partial_spearman([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="one entry per observation"):
        spearman_interval([1.0, 2.0], [1.0, 2.0], groups=[0, 1, 2])
    with pytest.raises(ValueError, match="confidence must be in"):
        spearman_interval([1.0, 2.0], [1.0, 2.0], groups=[0, 1], confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples must be an int >= 1"):
        spearman_interval([1.0, 2.0], [1.0, 2.0], groups=[0, 1], n_resamples=0)
    with pytest.raises(ValueError, match="base and treat"):
        relative_change([1.0, 2.0], [1.0])


def test_relative_change_and_bootstrap_mean():
    ch = relative_change([2.0, 2.2, 1.8, 2.1, 1.9], [1.0, 1.2, 0.9, 1.1, 0.8])
    assert ch.percent == pytest.approx(-50.0)
    assert ch.low <= ch.percent <= ch.high and ch.excludes_zero and ch.n == 5
    assert relative_change([1.0, 2.0], [1.0, 2.0], seed=1) == relative_change(
        [1.0, 2.0], [1.0, 2.0], seed=1)
    assert math.isnan(relative_change([0.0, 0.0], [1.0, 2.0]).percent)
    iv = bootstrap_mean([1.0, float("nan"), 3.0])
    assert iv.value == 2.0 and iv.n == 2
