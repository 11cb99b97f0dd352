r"""Intervals and correlations of the experiments: paired bootstrap over seeds, Spearman
correlations with a cluster bootstrap, and partial Spearman correlations.

The relative change of a metric of a treatment ``t`` (e.g. MSE + DSL) against a baseline ``b``
(MSE) over ``n`` seeds, each seed giving one pair ``(b_i, t_i)`` that shares data, split and
initialisation, is

.. math:: \Delta = 100\,\frac{\bar t - \bar b}{\bar b}\ \%,

and its interval is the percentile interval of :math:`\Delta` over bootstrap resamples of the
*seeds* (pairs kept together), computed with :func:`scipy.stats.bootstrap`. With five seeds
the percentile interval is used rather than BCa: BCa's jackknife acceleration estimate rests on
five leave-one-out values and its interval is no more trustworthy there; either way an interval
from five seeds is wide, and it says so.

Correlations between scores of (target, perturbation) pairs are Spearman's :math:`\rho`; their
interval resamples *targets* (all perturbations of a target together), because the pairs of one
target are not independent. The partial Spearman correlation of ``a`` and ``b`` given ``c`` is
the Pearson partial correlation of their ranks,

.. math:: \rho_{ab\cdot c} = \frac{\rho_{ab} - \rho_{ac}\rho_{bc}}
          {\sqrt{(1 - \rho_{ac}^2)(1 - \rho_{bc}^2)}}.

Examples
--------
>>> ch = relative_change([2.0, 2.2, 1.8, 2.1, 1.9], [1.0, 1.2, 0.9, 1.1, 0.8])
>>> round(ch.percent, 1), ch.excludes_zero
(-50.0, True)

Two scores that both follow a third correlate, and stop correlating once it is controlled for:

>>> rng = np.random.default_rng(0)
>>> c = np.arange(20.0)
>>> a, b = c + 3 * rng.standard_normal(20), c + 3 * rng.standard_normal(20)
>>> round(spearman(a, b), 2), round(partial_spearman(a, b, c), 2)
(0.8, -0.46)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "Interval",
    "RelativeChange",
    "bootstrap_mean",
    "partial_spearman",
    "relative_change",
    "spearman",
    "spearman_interval",
]

N_RESAMPLES = 9999
"""Bootstrap resamples of every interval."""


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval (``nan`` where undefined)."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of zero."""
        return bool(self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "value": self.value, "low": self.low, "high": self.high, "n": self.n,
            "confidence": self.confidence, "excludes_zero": self.excludes_zero,
        }


@dataclasses.dataclass(frozen=True)
class RelativeChange(Interval):
    """A relative change in percent (:func:`relative_change`) with its bootstrap interval."""

    @property
    def percent(self) -> float:
        return self.value


def _finite_pairs(base: Sequence[float], treat: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(base, dtype=np.float64)
    t = np.asarray(treat, dtype=np.float64)
    if b.shape != t.shape or b.ndim != 1:
        raise ValueError(
            f"base and treat must be 1-D sequences of equal length (one value per seed), "
            f"got shapes {b.shape} and {t.shape}"
        )
    keep = np.isfinite(b) & np.isfinite(t)
    return b[keep], t[keep]


def _percentile_interval(data: tuple[np.ndarray, ...], statistic, *, paired: bool,
                         confidence: float, seed: int) -> tuple[float, float]:
    n = data[0].shape[0]
    if n < 2:
        return math.nan, math.nan
    res = stats.bootstrap(
        data, statistic, n_resamples=N_RESAMPLES, paired=paired, vectorized=True,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def relative_change(
    base: Sequence[float], treat: Sequence[float], *, confidence: float = 0.95, seed: int = 0
) -> RelativeChange:
    """Relative change (%) of the mean of ``treat`` against the mean of ``base``, paired by seed.

    Parameters
    ----------
    base, treat
        One value per seed, in the same seed order (non-finite pairs are dropped).
    confidence
        Level of the percentile bootstrap interval.
    seed
        Seed of the resampling (the interval is deterministic).

    Returns
    -------
    RelativeChange
        ``percent`` = :math:`100 (\\bar t - \\bar b) / \\bar b`, the interval over seed
        resamples, ``n`` seeds; ``nan`` where the baseline mean is 0 or fewer than 2 seeds
        leave no interval.

    Raises
    ------
    ValueError
        If the two sequences differ in length or are not 1-D.
    """
    b, t = _finite_pairs(base, treat)
    n = int(b.size)
    if n == 0 or b.mean() == 0:
        return RelativeChange(math.nan, math.nan, math.nan, n, confidence)

    def stat(bb: np.ndarray, tt: np.ndarray, axis: int = -1) -> np.ndarray:
        mb = bb.mean(axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * (tt.mean(axis=axis) - mb) / mb

    value = float(stat(b, t))
    low, high = _percentile_interval((b, t), stat, paired=True, confidence=confidence, seed=seed)
    return RelativeChange(value, low, high, n, confidence)


def bootstrap_mean(values: Sequence[float], *, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Mean of the finite ``values`` with its percentile bootstrap interval.

    Examples
    --------
    >>> iv = bootstrap_mean([1.0, 2.0, 3.0, 4.0])
    >>> iv.value, iv.low <= 2.5 <= iv.high
    (2.5, True)
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(float(x))], np.float64)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    low, high = _percentile_interval(
        (v,), lambda a, axis=-1: a.mean(axis=axis), paired=False, confidence=confidence, seed=seed
    )
    return Interval(float(v.mean()), low, high, int(v.size), confidence)


def _ranks(a: np.ndarray) -> np.ndarray:
    return stats.rankdata(a, axis=-1)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / den, np.nan)


def _partial_rows(r_ab: np.ndarray, r_ac: np.ndarray, r_bc: np.ndarray) -> np.ndarray:
    """The partial correlation formula, row-wise; ``nan`` where ``c`` explains ``a`` or ``b``."""
    with np.errstate(invalid="ignore"):
        den = np.sqrt(np.clip((1.0 - r_ac**2) * (1.0 - r_bc**2), 0.0, None))
        ok = den > _PARTIAL_EPS  # False for nan too
        return np.where(ok, (r_ab - r_ac * r_bc) / np.where(ok, den, 1.0), np.nan)


_PARTIAL_EPS = 1e-12
"""Below this denominator ``c`` explains ``a`` or ``b`` (numerically) completely: ``nan``."""


def _check_pair(x: np.ndarray, y: np.ndarray, names: str = "a and b") -> None:
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{names} must be 1-D of equal length, got {x.shape} and {y.shape}")


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's rho (average ranks for ties); ``nan`` when either input is constant.

    Raises
    ------
    ValueError
        If ``a`` and ``b`` are not 1-D of equal length.

    Examples
    --------
    >>> spearman([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0])
    1.0
    """
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    _check_pair(x, y)
    return float(_pearson_rows(_ranks(x), _ranks(y)))


def partial_spearman(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike) -> float:
    r"""Spearman correlation of ``a`` and ``b`` with the (rank-linear) effect of ``c`` removed.

    :math:`\rho_{ab\cdot c}` of the module docstring, from the three Spearman correlations.
    ``nan`` when ``c`` explains ``a`` or ``b`` completely (or any input is constant).

    Only the part of ``a`` and ``b`` that is *linear in the ranks of* ``c`` is removed. Where
    ``a`` depends on ``c`` monotonically but not rank-linearly (e.g. ``a = c + noise`` with a
    skewed ``c`` and noise comparable to its spread), the leftover dependence shows up as a
    partial correlation even for independent noises; conditioning by design (holding ``c``
    fixed) has no such bias.

    Raises
    ------
    ValueError
        If the three inputs are not 1-D of equal length.

    Examples
    --------
    >>> a, b = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    >>> spearman(a, b), round(partial_spearman(a, b, [1, 3, 2, 5, 4]), 2)
    (0.8, 0.98)
    >>> partial_spearman(a, b, [10, 20, 30, 40, 50])  # c ranks like a: it explains a
    nan
    """
    x, y, z = (np.asarray(v, np.float64) for v in (a, b, c))
    _check_pair(x, y)
    _check_pair(x, z, "a and c")
    rx, ry, rz = _ranks(x), _ranks(y), _ranks(z)
    return float(
        _partial_rows(_pearson_rows(rx, ry), _pearson_rows(rx, rz), _pearson_rows(ry, rz))
    )


_CHUNK_ELEMENTS = 1 << 21
"""Resampled values held at once by the vectorised cluster bootstrap (per score)."""


def _resampled_correlations(
    x: np.ndarray, y: np.ndarray, z: np.ndarray | None, idx: np.ndarray
) -> np.ndarray:
    """(Partial) Spearman rho of every row of the index matrix ``idx`` (resamples x obs)."""
    rx, ry = _ranks(x[idx]), _ranks(y[idx])
    r_xy = _pearson_rows(rx, ry)
    if z is None:
        return r_xy
    rz = _ranks(z[idx])
    return _partial_rows(r_xy, _pearson_rows(rx, rz), _pearson_rows(ry, rz))


def spearman_interval(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    groups: npt.ArrayLike,
    given: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 2000,
) -> Interval:
    """Spearman's rho of ``a`` and ``b`` (partial, given ``given``) with a cluster bootstrap.

    A resample draws as many clusters as there are, with replacement, and keeps every
    observation of a drawn cluster; rho is recomputed on the concatenation. The interval is the
    percentile interval of these values. When every cluster has the same size (the proxy study:
    one row per perturbation of every target) all resamples are evaluated as one matrix, in
    chunks; otherwise one by one. Both give the same values for the same ``seed``.

    Parameters
    ----------
    a, b
        Scores, one per observation.
    groups
        The cluster of each observation (e.g. the target a perturbation was applied to): a
        resample draws whole clusters with replacement.
    given
        If set, the partial correlation given this score (:func:`partial_spearman`).
    confidence, seed, n_resamples
        Interval level in (0, 1), resampling seed, number of resamples (>= 1).

    Returns
    -------
    Interval
        ``value`` from all observations; ``low``/``high`` the percentile interval of the
        resampled values (resamples where it is undefined, e.g. a constant resample, are
        dropped); ``n`` the number of clusters. ``low``/``high`` are ``nan`` with fewer than 2
        clusters or when no resample is defined.

    Raises
    ------
    ValueError
        If the inputs are not 1-D with one entry per observation, ``confidence`` is not in
        (0, 1) or ``n_resamples`` < 1.

    Examples
    --------
    >>> g = np.repeat(np.arange(10), 3)
    >>> a = np.arange(30.0)
    >>> iv = spearman_interval(a, a**3, groups=g, n_resamples=200)
    >>> iv.value, iv.low, iv.high, iv.n
    (1.0, 1.0, 1.0, 10)
    """
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    g = np.asarray(groups)
    z = None if given is None else np.asarray(given, np.float64)
    if x.ndim != 1 or not (x.shape == y.shape == g.shape) or (
        z is not None and z.shape != x.shape
    ):
        raise ValueError(
            "a, b, groups (and given) must be 1-D with one entry per observation, got shapes "
            f"{x.shape}, {y.shape}, {g.shape}" + ("" if z is None else f", {z.shape}")
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be an int >= 1, got {n_resamples!r}")

    value = float(_resampled_correlations(x, y, z, np.arange(x.size)[None])[0])
    clusters = np.unique(g)
    if clusters.size < 2:
        return Interval(value, math.nan, math.nan, int(clusters.size), confidence)
    members = [np.flatnonzero(g == c) for c in clusters]
    picks = np.random.default_rng(seed).integers(0, clusters.size, (n_resamples, clusters.size))
    sizes = {m.size for m in members}
    if len(sizes) == 1:
        table = np.stack(members)  # (clusters, size)
        per_chunk = max(1, _CHUNK_ELEMENTS // x.size)
        draws = np.concatenate([
            _resampled_correlations(x, y, z, table[picks[i:i + per_chunk]].reshape(len(
                picks[i:i + per_chunk]), -1))
            for i in range(0, n_resamples, per_chunk)
        ])
    else:
        draws = np.array([
            _resampled_correlations(x, y, z, np.concatenate([members[i] for i in pick])[None])[0]
            for pick in picks
        ])
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return Interval(value, math.nan, math.nan, int(clusters.size), confidence)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(d, [alpha, 1.0 - alpha])
    return Interval(value, float(low), float(high), int(clusters.size), confidence)
