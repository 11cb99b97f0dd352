r"""The proxy study (``dsl-explore proxy``): does DSL measure topology, or only error size?

Targets are perturbed (:mod:`~dsl_explore.experiments.perturb`) and every (target,
perturbation) pair is scored with DSL, the exact sign-mismatch count, mismatched critical
points, Betti error, bottleneck distance and MSE (:func:`score`). Three questions, each with
95% cluster-bootstrap intervals over *targets*
(:func:`~dsl_explore.experiments.stats.spearman_interval`):

1. How well does DSL rank pairs like each topology metric does (Spearman's :math:`\rho`),
   pooled over the classic families and within each family?
2. Does it still, once MSE is controlled for? Partial :math:`\rho_{\mathrm{DSL},T\cdot
   \mathrm{MSE}}` against :math:`\rho_{\mathrm{MSE},T\cdot\mathrm{DSL}}` for each topology
   metric :math:`T`.
3. Where MSE and topology are decoupled by construction: at a fixed MSE (topology varies),
   MSE cannot rank anything, so DSL's correlation with topology there is the evidence; under
   monotone maps (topology fixed, MSE grows) a topology proxy should stay flat.

The report (:mod:`~dsl_explore.experiments.proxy_report`) writes ``proxy.json``, ``proxy.md``
and ``proxy.csv``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import mismatched_critical_points
from dsl_explore.data import make_dataset
from dsl_explore.experiments.perturb import (
    FIXED_MSE_VARIANTS,
    FIXED_TOPOLOGY_VARIANTS,
    PERTURBATIONS,
    fixed_mse,
    monotone,
    perturb,
)
from dsl_explore.experiments.proxy_report import write_report
from dsl_explore.experiments.stats import Interval, spearman_interval
from dsl_explore.experiments.summary import machine_info
from dsl_explore.loss import directional_sign_loss
from dsl_explore.topology import betti_error, diagram_distance

__all__ = [
    "DECOUPLING",
    "PERTURBATIONS",
    "PROXY_DEFAULTS",
    "PROXY_METRICS",
    "PROXY_QUICK",
    "TOPOLOGY_METRICS",
    "correlations",
    "perturb",
    "proxy",
    "score",
]

PROXY_METRICS = ("dsl", "count", "critical_mismatch", "betti_error", "bottleneck", "mse")
TOPOLOGY_METRICS = ("count", "critical_mismatch", "betti_error", "bottleneck")
DECOUPLING = ("fixed_mse", "fixed_topology")
"""The families that decouple MSE and topology (after the classic :data:`PERTURBATIONS`)."""

PROXY_DEFAULTS: dict[str, Any] = {"n_targets": 48, "size": 32, "n_resamples": 2000}
PROXY_QUICK: dict[str, Any] = {"n_targets": 4, "size": 16, "n_resamples": 200}
"""Sizes of the default study and of ``--quick`` (a CI smoke test in seconds)."""

CONFIDENCE = 0.95


def score(x: np.ndarray, y: np.ndarray, *, k: float) -> dict[str, float]:
    """The :data:`PROXY_METRICS` of a reconstruction ``x`` against a target ``y`` (bare fields).

    DSL (sharpness ``k``, mean reduction), the exact sign-mismatch count, mismatched axis-wise
    critical points (spurious + lost + changed), total Betti error at 16 target quantiles,
    bottleneck distance of the persistence diagrams, MSE.

    Examples
    --------
    >>> y = np.array([0.0, 1.0, 0.0, 1.0])
    >>> s = score(y[::-1].copy(), y, k=20.0)
    >>> s["count"], s["critical_mismatch"], s["mse"]
    (3, 4, 1.0)
    """
    dims = tuple(range(y.ndim))
    cm = mismatched_critical_points(x, y)
    return {
        "dsl": float(directional_sign_loss(x, y, k=k, dims=dims)),
        "count": int(sign_mismatch_count(x, y, dims=dims)),
        "critical_mismatch": cm.n_spurious + cm.n_lost + cm.n_changed,
        "betti_error": float(betti_error(x, y).total),
        "bottleneck": float(diagram_distance(x, y)),
        "mse": float(np.mean((x - y) ** 2)),
    }


def _scored_rows(targets: np.ndarray, *, seed: int, k: float, fixed_rms: float) -> list[dict]:
    rows: list[dict[str, Any]] = []

    def add(t: int, family: str, variant: str, level: float, x: np.ndarray, y: np.ndarray):
        rows.append({"target": t, "family": family, "variant": variant, "level": float(level),
                     **score(x, y, k=k)})

    rng = np.random.default_rng(seed + 1)  # the classic rows are those of the earlier study
    for t, y in enumerate(targets):
        for family, levels in PERTURBATIONS.items():
            for level in levels:
                add(t, family, family, level, perturb(y, family, level, rng), y)
    rng = np.random.default_rng(seed + 2)
    for t, y in enumerate(targets):
        for kind, sigma in FIXED_MSE_VARIANTS:
            add(t, "fixed_mse", kind, sigma, fixed_mse(y, kind, sigma, rms=fixed_rms, rng=rng), y)
        for kind, param in FIXED_TOPOLOGY_VARIANTS:
            add(t, "fixed_topology", kind, param, monotone(y, kind, param), y)
    return rows


def _constant(v: np.ndarray) -> bool:
    """Constant up to float rounding (the MSE of the fixed-MSE family)."""
    return bool(np.ptp(v) <= 1e-9 * np.max(np.abs(v)))


def _interval(cols: dict[str, np.ndarray], a: str, b: str, given: str | None, *,
              n_resamples: int, seed: int) -> Interval:
    used = [a, b] + ([given] if given else [])
    if any(_constant(cols[m]) for m in used):
        return Interval(math.nan, math.nan, math.nan, int(np.unique(cols["target"]).size))
    return spearman_interval(
        cols[a], cols[b], groups=cols["target"], given=None if given is None else cols[given],
        confidence=CONFIDENCE, seed=seed, n_resamples=n_resamples,
    )


def correlations(
    rows: list[dict[str, Any]], *, n_resamples: int = 2000, seed: int = 0, partial: bool = True
) -> dict[str, Any]:
    """Spearman rho with cluster-bootstrap intervals (over targets) of one set of scored pairs.

    Parameters
    ----------
    rows
        Scored pairs: dicts with ``target`` and every metric of :data:`PROXY_METRICS`.
    n_resamples, seed
        Of the bootstrap.
    partial
        Also the partial correlations of DSL given MSE and of MSE given DSL.

    Returns
    -------
    dict
        ``n_pairs``, ``n_targets``; ``dsl``: {metric: interval} of DSL with every other metric;
        ``mse``: {metric: interval} of MSE with every topology metric; with ``partial``,
        ``dsl_given_mse`` and ``mse_given_dsl``: {topology metric: interval}. An interval is an
        :meth:`~dsl_explore.experiments.stats.Interval.to_dict`; its value is ``nan`` where a
        score is constant (to rounding) over ``rows``.

    Examples
    --------
    >>> rows = [{"target": t, "dsl": d, "count": d, "critical_mismatch": d, "betti_error": d,
    ...          "bottleneck": d, "mse": 1.0} for t in range(3) for d in (0.1, 0.2)]
    >>> c = correlations(rows, n_resamples=50)
    >>> c["dsl"]["count"]["value"], c["dsl"]["mse"]["value"]
    (1.0, nan)
    """
    cols = {m: np.array([r[m] for r in rows], np.float64) for m in (*PROXY_METRICS, "target")}
    kw = {"n_resamples": n_resamples, "seed": seed}
    out: dict[str, Any] = {
        "n_pairs": len(rows),
        "n_targets": int(np.unique(cols["target"]).size),
        "dsl": {m: _interval(cols, "dsl", m, None, **kw).to_dict() for m in PROXY_METRICS[1:]},
        "mse": {m: _interval(cols, "mse", m, None, **kw).to_dict() for m in TOPOLOGY_METRICS},
    }
    if partial:
        out["dsl_given_mse"] = {
            m: _interval(cols, "dsl", m, "mse", **kw).to_dict() for m in TOPOLOGY_METRICS
        }
        out["mse_given_dsl"] = {
            m: _interval(cols, "mse", m, "dsl", **kw).to_dict() for m in TOPOLOGY_METRICS
        }
    return out


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def proxy(
    *,
    n_targets: int | None = None,
    size: int | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    spatial_dims: int = 2,
    data: str = "blobs",
    k: float = 20.0,
    n_resamples: int | None = None,
    fixed_rms: float = 0.02,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the proxy study and write ``proxy.json``, ``proxy.md`` and ``proxy.csv``.

    For each of ``n_targets`` generated targets ``y`` (values in [0, 1]) every perturbation of
    the classic :data:`PERTURBATIONS` and of the two decoupling families (:data:`DECOUPLING`)
    is scored (:func:`score`). Reported: the Spearman matrix of all metrics pooled over the
    classic families (with ``scipy.stats.spearmanr`` p-values); DSL's and MSE's correlations
    with every topology metric, pooled and per family, and the partial correlations (DSL given
    MSE, MSE given DSL), each with a 95% cluster-bootstrap interval over targets
    (:func:`correlations`); per-variant means of the decoupling families and a sentence on
    each, computed from the numbers.

    Parameters
    ----------
    n_targets
        Number of targets (>= 1; >= 2 for intervals). Default 48 (4 with ``quick``).
    size
        Spatial size per axis (>= 8). Default 32 (16 with ``quick``).
    seed
        Seed of the targets, perturbations and bootstrap.
    out_dir
        Output directory (created).
    spatial_dims
        1, 2 or 3.
    data
        Generator name (:func:`dsl_explore.data.make_dataset`); ``"blobs"`` or ``"grf"`` work
        in every dimensionality.
    k
        DSL sharpness.
    n_resamples
        Bootstrap resamples per interval (>= 1). Default 2000 (200 with ``quick``).
    fixed_rms
        RMS error of every pair of the fixed-MSE family (> 0; data in [0, 1]).
    quick
        Small defaults (a CI smoke test); explicit values still win.

    Returns
    -------
    dict
        ``settings``, ``metrics``, ``spearman`` (pooled classic matrix as nested lists),
        ``pvalues``, ``per_family`` (DSL's rho with every metric per family, decoupling
        families included), ``n_pairs`` (classic pairs, those of the matrix), ``rows`` (every
        scored pair, decoupling families included, with ``family``, ``variant``, ``level``),
        ``correlations`` ({"pooled" or family: :func:`correlations`}), ``decoupling`` (per
        family: ranges, per-variant means, finding), ``findings``, ``wall_seconds``,
        ``machine``, ``load_average`` (1, 5, 15 min, at the end; ``None`` where unknown).

    Raises
    ------
    ValueError
        If a size, count or ``fixed_rms`` is out of range, or ``spatial_dims`` not 1-3.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = proxy(n_targets=1, size=8, out_dir=tmp, spatial_dims=1, data="sinusoids")
    >>> res["metrics"][0], round(res["spearman"][0][0], 6)
    ('dsl', 1.0)
    """
    from scipy.stats import spearmanr

    sizes = PROXY_QUICK if quick else PROXY_DEFAULTS
    n_targets = _check_int("n_targets", sizes["n_targets"] if n_targets is None else n_targets, 1)
    size = _check_int("size", sizes["size"] if size is None else size, 8)
    n_resamples = _check_int(
        "n_resamples", sizes["n_resamples"] if n_resamples is None else n_resamples, 1
    )
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    if not (isinstance(fixed_rms, (int, float)) and 0 < fixed_rms < math.inf):
        raise ValueError(f"fixed_rms must be a finite number > 0, got {fixed_rms!r}")
    start = time.perf_counter()
    shape = (size,) * spatial_dims
    targets = make_dataset(data, n_targets, shape if spatial_dims > 1 else size, seed=seed)
    rows = _scored_rows(targets[:, 0].astype(np.float64), seed=seed, k=k, fixed_rms=fixed_rms)
    classic = [r for r in rows if r["family"] in PERTURBATIONS]
    table = np.array([[r[m] for m in PROXY_METRICS] for r in classic], dtype=np.float64)
    rho, pval = _spearman_matrix(spearmanr, table)
    families = (*PERTURBATIONS, *DECOUPLING)
    by_family = {f: [r for r in rows if r["family"] == f] for f in families}
    corr = {"pooled": correlations(classic, n_resamples=n_resamples, seed=seed)}
    for f in families:
        corr[f] = correlations(by_family[f], n_resamples=n_resamples, seed=seed,
                               partial=f in PERTURBATIONS)
    result: dict[str, Any] = {
        "settings": {
            "n_targets": n_targets, "size": size, "seed": seed, "spatial_dims": spatial_dims,
            "data": data, "k": k, "n_resamples": n_resamples, "confidence": CONFIDENCE,
            "fixed_rms": fixed_rms, "quick": quick,
            "perturbations": {f: list(v) for f, v in PERTURBATIONS.items()},
            "fixed_mse_variants": [list(v) for v in FIXED_MSE_VARIANTS],
            "fixed_topology_variants": [list(v) for v in FIXED_TOPOLOGY_VARIANTS],
        },
        "metrics": list(PROXY_METRICS),
        "spearman": rho,
        "pvalues": pval,
        "per_family": {
            f: {"dsl": 1.0, **{m: corr[f]["dsl"][m]["value"] for m in PROXY_METRICS[1:]}}
            for f in families
        },
        "n_pairs": len(classic),
        "rows": rows,
        "correlations": corr,
        "decoupling": {
            f: _variant_summary(by_family[f], classic, n_resamples=n_resamples, seed=seed)
            for f in DECOUPLING
        },
    }
    result["wall_seconds"] = time.perf_counter() - start
    result["machine"] = machine_info()
    result["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    write_report(result, Path(out_dir))
    return result


def _variant_summary(rows: list[dict[str, Any]], classic: list[dict[str, Any]], *,
                     n_resamples: int, seed: int) -> dict:
    """Ranges, per-variant means, DSL's rho with the count and critical points *within* each
    variant (across targets), and where the family's DSL/MSE sit among the classic pairs."""
    col = {m: np.array([r[m] for r in rows], np.float64) for m in PROXY_METRICS}
    ref = {m: np.array([r[m] for r in classic], np.float64) for m in ("dsl", "mse")}
    variants = list(dict.fromkeys((r["variant"], r["level"]) for r in rows))
    means = []
    for v, lv in variants:
        sub = [r for r in rows if (r["variant"], r["level"]) == (v, lv)]
        cols = {m: np.array([r[m] for r in sub], np.float64) for m in (*PROXY_METRICS, "target")}
        within = {m: _interval(cols, "dsl", m, None, n_resamples=n_resamples, seed=seed).to_dict()
                  for m in ("count", "critical_mismatch")}
        means.append({"variant": v, "level": lv, "dsl_within": within,
                      **{m: float(np.mean(cols[m])) for m in PROXY_METRICS}})
    return {
        "range": {m: [float(col[m].min()), float(col[m].max())] for m in PROXY_METRICS},
        "mse_relative_spread": float(np.ptp(col["mse"]) / np.mean(col["mse"])),
        # percent of classic pairs with a DSL (MSE) at most this family's largest
        "classic_percentile_of_max": {
            m: float(100.0 * np.mean(ref[m] <= col[m].max())) if ref[m].size else math.nan
            for m in ("dsl", "mse")
        },
        "by_variant": means,
    }


def _spearman_matrix(spearmanr: Any, table: np.ndarray) -> tuple[list, list]:
    m = table.shape[1]
    rho = np.full((m, m), np.nan)
    pv = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(m):
            a, b = table[:, i], table[:, j]
            if table.shape[0] < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
                if i == j:
                    rho[i, j], pv[i, j] = 1.0, 0.0
                continue
            r = spearmanr(a, b)
            rho[i, j], pv[i, j] = float(r.statistic), float(r.pvalue)
    return rho.tolist(), pv.tolist()
