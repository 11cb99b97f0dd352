r"""The proxy study (``dsl-explore proxy``): how well DSL tracks topology metrics over
perturbations of targets (Gaussian noise, blur, quantisation, smooth warps), as Spearman rank
correlations between DSL, the exact sign-mismatch count, mismatched critical points, Betti error,
bottleneck distance (and MSE for reference).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import mismatched_critical_points
from dsl_explore.data import make_dataset
from dsl_explore.experiments.summary import fmt_number, fmt_rho
from dsl_explore.io import atomic_write_json, atomic_write_text
from dsl_explore.loss import directional_sign_loss
from dsl_explore.topology import betti_error, diagram_distance

__all__ = ["PERTURBATIONS", "PROXY_METRICS", "perturb", "proxy"]

PERTURBATIONS: dict[str, tuple[float, ...]] = {
    "noise": (0.005, 0.01, 0.02, 0.05, 0.1),
    "blur": (0.5, 1.0, 2.0, 3.0),
    "quantise": (64, 16, 8, 4),
    "warp": (0.5, 1.0, 2.0, 4.0),
}
"""Perturbation families and their levels: Gaussian noise std (data in [0, 1]), Gaussian blur
sigma (pixels), quantisation levels, smooth-warp displacement amplitude (pixels)."""

PROXY_METRICS = ("dsl", "count", "critical_mismatch", "betti_error", "bottleneck", "mse")


def perturb(y: np.ndarray, family: str, level: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    if family == "noise":
        return y + rng.normal(0.0, level, size=y.shape)
    if family == "blur":
        return ndimage.gaussian_filter(y, sigma=level, mode="nearest")
    if family == "quantise":
        n = int(level)
        return np.round(y * (n - 1)) / (n - 1)
    if family == "warp":
        # a smooth random displacement field (Gaussian-smoothed noise), amplitude in pixels
        smooth = max(2.0, min(y.shape) / 6)
        coords = np.meshgrid(*(np.arange(s, dtype=np.float64) for s in y.shape), indexing="ij")
        warped = []
        for c in coords:
            field = ndimage.gaussian_filter(rng.standard_normal(y.shape), smooth, mode="wrap")
            field *= level / max(np.abs(field).max(), 1e-12)
            warped.append(c + field)
        return ndimage.map_coordinates(y, warped, order=3, mode="nearest")
    raise ValueError(f"unknown perturbation {family!r}")


def proxy(
    *,
    n_targets: int = 8,
    size: int = 32,
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    spatial_dims: int = 2,
    data: str = "blobs",
    k: float = 20.0,
) -> dict[str, Any]:
    """Spearman correlation of DSL with the exact count and topology metrics over perturbations.

    For each of ``n_targets`` generated targets ``y`` (values in [0, 1]) and each perturbation
    of :data:`PERTURBATIONS` (every family and level), ``x = perturb(y)`` is scored with DSL
    (sharpness ``k``, mean reduction), the exact sign-mismatch count, the number of mismatched
    axis-wise critical points (spurious + lost + changed), the Betti error (total), the
    bottleneck distance and, for reference, the MSE. The Spearman rank correlation matrix of
    these scores over all pairs (``scipy.stats.spearmanr``) is written as ``proxy.md``,
    ``proxy.csv`` and ``proxy.json`` (with every raw score).

    Parameters
    ----------
    n_targets
        Number of targets (>= 1).
    size
        Spatial size per axis (>= 8).
    seed
        Seed of the targets and perturbations.
    out_dir
        Output directory (created).
    spatial_dims
        1, 2 or 3.
    data
        Generator name (:func:`dsl_explore.data.make_dataset`); ``"blobs"`` or ``"grf"`` work
        in every dimensionality.
    k
        DSL sharpness.

    Returns
    -------
    dict
        ``metrics``, ``spearman`` (matrix as nested lists), ``pvalues``, ``rows`` (raw scores)
        and ``per_family`` (the DSL row of the matrix per perturbation family).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = proxy(n_targets=1, size=8, out_dir=tmp, spatial_dims=1, data="sinusoids")
    >>> res["metrics"][0], round(res["spearman"][0][0], 6)
    ('dsl', 1.0)
    """
    from scipy.stats import spearmanr

    if isinstance(n_targets, bool) or not isinstance(n_targets, int) or n_targets < 1:
        raise ValueError(f"n_targets must be an int >= 1, got {n_targets!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    out = Path(out_dir)
    shape = (size,) * spatial_dims
    targets = make_dataset(data, n_targets, shape if spatial_dims > 1 else size, seed=seed)
    targets = targets[:, 0].astype(np.float64)
    rng = np.random.default_rng(seed + 1)
    rows: list[dict[str, Any]] = []
    for t, y in enumerate(targets):
        for family, levels in PERTURBATIONS.items():
            for level in levels:
                x = perturb(y, family, level, rng)
                cm = mismatched_critical_points(x, y)
                rows.append(
                    {
                        "target": t,
                        "family": family,
                        "level": float(level),
                        "dsl": float(directional_sign_loss(x, y, k=k, dims=tuple(range(y.ndim)))),
                        "count": int(sign_mismatch_count(x, y, dims=tuple(range(y.ndim)))),
                        "critical_mismatch": cm.n_spurious + cm.n_lost + cm.n_changed,
                        "betti_error": float(betti_error(x, y).total),
                        "bottleneck": float(diagram_distance(x, y)),
                        "mse": float(np.mean((x - y) ** 2)),
                    }
                )
    table = np.array([[r[m] for m in PROXY_METRICS] for r in rows], dtype=np.float64)
    rho, pval = _spearman_matrix(spearmanr, table)
    per_family = {}
    for family in PERTURBATIONS:
        sub = table[[r["family"] == family for r in rows]]
        rf, _ = _spearman_matrix(spearmanr, sub)
        per_family[family] = {m: rf[0][j] for j, m in enumerate(PROXY_METRICS)}
    result = {
        "settings": {
            "n_targets": n_targets, "size": size, "seed": seed, "spatial_dims": spatial_dims,
            "data": data, "k": k,
            "perturbations": {f: list(v) for f, v in PERTURBATIONS.items()},
        },
        "metrics": list(PROXY_METRICS),
        "spearman": rho,
        "pvalues": pval,
        "per_family": per_family,
        "n_pairs": len(rows),
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "proxy.json", result)
    csv_lines = ["metric," + ",".join(PROXY_METRICS)]
    for i, m in enumerate(PROXY_METRICS):
        csv_lines.append(m + "," + ",".join(fmt_number(v) for v in rho[i]))
    atomic_write_text(out / "proxy.csv", "\n".join(csv_lines) + "\n")
    md = [
        f"Spearman rank correlation over {len(rows)} (target, perturbation) pairs: "
        f"{n_targets} {spatial_dims}D '{data}' targets of size {size}, perturbed by "
        + ", ".join(f"{f} {list(v)}" for f, v in PERTURBATIONS.items())
        + f"; DSL with k={k}.",
        "",
        "| | " + " | ".join(PROXY_METRICS) + " |",
        "|---|" + "---|" * len(PROXY_METRICS),
    ]
    for i, m in enumerate(PROXY_METRICS):
        md.append(f"| {m} | " + " | ".join(fmt_rho(v) for v in rho[i]) + " |")
    md += ["", "DSL vs each metric within one perturbation family:", ""]
    md += ["| family | " + " | ".join(PROXY_METRICS[1:]) + " |"]
    md += ["|---|" + "---|" * (len(PROXY_METRICS) - 1)]
    for family, vals in per_family.items():
        md.append(
            f"| {family} | " + " | ".join(fmt_rho(vals[m]) for m in PROXY_METRICS[1:]) + " |"
        )
    atomic_write_text(out / "proxy.md", "\n".join(md) + "\n")
    return result


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
