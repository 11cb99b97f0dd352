r"""The metric registry: one :class:`Metric` entry per number that training logs or reports.

Everything that shows a metric reads it from :data:`METRICS`: the columns of a run's history
(:func:`history_keys`, :func:`step_columns`), the snapshot the dashboard polls, the progress bar,
the experiment tables (:func:`table_metrics`) and the exported run figures. Adding a metric is
one entry here (with its ``compute`` for an evaluation metric).

An entry has a ``kind``:

- ``"eval"``: computed from a reconstruction and its target, ``(N, C, *spatial)`` host arrays, by
  ``compute(batch)`` on an :class:`EvalBatch` (which caches the critical points and Betti errors
  that several metrics share). Those with a ``history_key`` are logged in ``history["evals"]``
  at every evaluation of the fixed validation batch.
- ``"loss"``: a per-step loss term logged in ``history["steps"]`` (computed by the step,
  :mod:`dsl_explore.training.step`), for the objectives in ``losses``.
- ``"setting"``: a config value logged with every step (``lr``, ``lam``).
- ``"run"``: a property of the run (timing).

The sign-mismatch rate
----------------------
``count_rate`` is a rate in [0, 1]: the *mean over the spatial axes* of each axis' fraction of
finite differences whose signs differ,

.. math::

    r(x, y) = \frac{1}{d} \sum_{a=1}^{d} \frac{M_a(x, y)}{N_a},

with :math:`M_a` the exact mismatch count along axis :math:`a` over the batch
(:func:`~dsl_explore.counting.sign_mismatch_count`) and :math:`N_a` the number of differences
along it. Histories written before :data:`METRICS_VERSION` 2 held the *sum* over axes (in
[0, d]); :func:`upgrade_history` rescales them.

Examples
--------
>>> [m.history_key for m in METRICS if m.kind == "eval" and m.history_key]
['val_mse', 'count_rate', 'spurious', 'lost', 'changed', 'betti_per_dim', 'betti_total']
>>> metric("count_rate").label, metric("count_rate").upper
('sign-mismatch rate', 1.0)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import CriticalMismatch, mismatched_critical_points
from dsl_explore.loss import directional_sign_loss
from dsl_explore.topology import BettiError, betti_error, diagram_distance
from dsl_explore.training.config import LOSSES

__all__ = [
    "METRICS",
    "METRICS_VERSION",
    "EvalBatch",
    "Metric",
    "compute_metrics",
    "history_keys",
    "metric",
    "sign_mismatch_rate",
    "step_columns",
    "table_metrics",
    "upgrade_history",
]

METRICS_VERSION = 2
"""Version of the metric definitions; 2 made ``count_rate`` a rate in [0, 1] (mean over axes)."""

KINDS = ("eval", "loss", "setting", "run")


class EvalBatch:
    """A reconstruction and its target on the host, with the work several metrics share cached.

    Parameters
    ----------
    recon, target : numpy.ndarray
        Arrays ``(N, C, *spatial)`` of one shape (1-3 spatial axes).
    betti_thresholds : int
        Thresholds of :func:`~dsl_explore.topology.betti_error`.
    bottleneck : bool
        Whether ``bottleneck`` is computed (a persistence diagram per sample).
    k : float or None
        DSL sharpness of the ``dsl`` metric; ``None`` leaves it out.
    """

    def __init__(
        self, recon: np.ndarray, target: np.ndarray, *, betti_thresholds: int = 16,
        bottleneck: bool = False, k: float | None = None,
    ) -> None:
        self.recon, self.target = recon, target
        self.axes = tuple(range(2, recon.ndim))
        self.n = recon.shape[0] * recon.shape[1]
        self.betti_thresholds, self.bottleneck, self.k = betti_thresholds, bottleneck, k

    @functools.cached_property
    def mse(self) -> float:
        diff = self.recon.astype(np.float64) - self.target.astype(np.float64)
        return float(np.mean(diff**2))

    @functools.cached_property
    def critical(self) -> CriticalMismatch:
        return mismatched_critical_points(self.recon, self.target, dims=self.axes)

    @functools.cached_property
    def betti(self) -> BettiError:
        return betti_error(self.recon, self.target, thresholds=self.betti_thresholds,
                           dims=self.axes)


def sign_mismatch_rate(recon: np.ndarray, target: np.ndarray) -> float:
    """The exact sign-mismatch rate in [0, 1]: the mean over spatial axes of each axis' rate.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).random((2, 1, 8, 8))
    >>> sign_mismatch_rate(-y, y), sign_mismatch_rate(y, y)
    (1.0, 0.0)
    """
    axes = tuple(range(2, recon.ndim))
    per_axis = sign_mismatch_count(recon, target, dims=axes, reduction="mean", per_axis=True)
    return float(np.mean(per_axis))


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric: where it is logged, how it is labelled, formatted and (maybe) computed.

    Attributes
    ----------
    key : str
        Its name in :func:`~dsl_explore.training.evaluate_model`'s dict, ``results.json`` and
        the tables (loss terms and settings: the ``history["steps"]`` column).
    kind : {"eval", "loss", "setting", "run"}
        See the module docstring.
    label : str
        Human label (table header, axis title); ``{q}`` is the homology dimension of a
        ``per_dim`` metric.
    unit : str
        What a value counts, e.g. ``"dB"`` or ``"fraction of differences"``.
    lower, upper : float or None
        The range of the values (``None``: unbounded).
    higher_is_better : bool
        ``False`` for errors, ``True`` for PSNR.
    fmt : str
        Format spec of a value in tables.
    compute : callable or None
        ``compute(batch: EvalBatch)`` of an ``"eval"`` metric; ``None`` means "not asked for".
    history_key : str or None
        Its column in ``history["evals"]`` (``"eval"``) or ``history["steps"]``; ``None``: not
        logged during training.
    losses : tuple of str
        Loss terms and settings: the objectives whose history has the column.
    table : bool
        A column of the experiment tables.
    per_dim : bool
        A list with one value per homology dimension (tables: one column per dimension).
    short, short_fmt : str or None, str
        Name and format on the progress bar (``None``: not shown).
    legacy : callable or None
        ``legacy(value, spatial_dims)``: a value logged before :data:`METRICS_VERSION` 2 in
        today's definition.
    """

    key: str
    kind: str
    label: str
    unit: str = ""
    lower: float | None = 0.0
    upper: float | None = None
    higher_is_better: bool = False
    fmt: str = ".3g"
    compute: Callable[[EvalBatch], Any] | None = None
    history_key: str | None = None
    losses: tuple[str, ...] = LOSSES
    table: bool = False
    per_dim: bool = False
    short: str | None = None
    short_fmt: str = ".3g"
    legacy: Callable[[float, int], float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def _betti_per_dim(b: EvalBatch) -> list[float]:
    per_dim = np.asarray(b.betti.per_dim, dtype=np.float64).reshape(-1, len(b.axes))
    return [float(v) for v in per_dim.mean(axis=0)]


def _bottleneck(b: EvalBatch) -> float | None:
    if not b.bottleneck:
        return None
    return float(np.mean(diagram_distance(b.recon, b.target, dims=b.axes)))


def _dsl(b: EvalBatch) -> float | None:
    return None if b.k is None else float(directional_sign_loss(b.recon, b.target, k=b.k))


_DSL_PH = ("mse+dsl", "mse+ph")

METRICS: tuple[Metric, ...] = (
    # evaluations of a reconstruction against its target
    Metric("mse", "eval", "MSE", "mean squared error", compute=lambda b: b.mse,
           history_key="val_mse", table=True),
    Metric("psnr", "eval", "PSNR (dB)", "dB (peak 1)", lower=None, higher_is_better=True,
           compute=lambda b: float(10 * np.log10(1.0 / max(b.mse, 1e-30))), table=True),
    Metric("count_rate", "eval", "sign-mismatch rate", "fraction of differences, mean over axes",
           upper=1.0, compute=lambda b: sign_mismatch_rate(b.recon, b.target),
           history_key="count_rate", table=True, short="rate", short_fmt=".3f",
           legacy=lambda v, dims: v / dims),
    Metric("spurious", "eval", "spurious CP", "critical points per sample",
           compute=lambda b: b.critical.n_spurious / b.n, history_key="spurious", table=True),
    Metric("lost", "eval", "lost CP", "critical points per sample",
           compute=lambda b: b.critical.n_lost / b.n, history_key="lost", table=True),
    Metric("changed", "eval", "changed CP", "critical points per sample",
           compute=lambda b: b.critical.n_changed / b.n, history_key="changed"),
    Metric("betti_per_dim", "eval", "Betti err H{q}", "mean |Δβ_q| over thresholds",
           compute=_betti_per_dim, history_key="betti_per_dim", table=True, per_dim=True),
    Metric("betti_total", "eval", "Betti err total", "mean Σ_q |Δβ_q| over thresholds",
           compute=lambda b: float(np.mean(b.betti.total)), history_key="betti_total",
           table=True, short="betti", short_fmt=".2f"),
    Metric("betti_relative", "eval", "relative Betti err", "fraction of the target's Betti sum",
           compute=lambda b: float(np.mean(np.asarray(b.betti.relative)))),
    Metric("bottleneck", "eval", "bottleneck", "bottleneck distance", compute=_bottleneck,
           table=True),
    Metric("dsl", "eval", "DSL", "directional sign loss (mean)", compute=_dsl),
    # per-step loss terms and settings
    Metric("mse", "loss", "MSE", "per step", history_key="mse"),
    Metric("dsl", "loss", "DSL", "per step", history_key="dsl", losses=("mse+dsl",)),
    Metric("ph", "loss", "PH loss", "per step", history_key="ph", losses=("mse+ph",)),
    Metric("total", "loss", "total loss", "per step", history_key="total"),
    Metric("lr", "setting", "learning rate", history_key="lr"),
    Metric("lam", "setting", "λ", history_key="lam", losses=_DSL_PH),
    # the run
    Metric("seconds_per_step", "run", "s/step", "s", table=True),
)
"""The registry, in the order of history columns and table columns."""


def metric(key: str, kind: str = "eval") -> Metric:
    """The entry of ``key`` among the metrics of ``kind`` (KeyError naming the known keys)."""
    for m in METRICS:
        if m.key == key and m.kind == kind:
            return m
    known = ", ".join(m.key for m in METRICS if m.kind == kind)
    raise KeyError(f"no {kind} metric {key!r}; known: {known}")


def step_columns(loss: str) -> tuple[str, ...]:
    """The loss-term columns of ``history["steps"]`` for an objective, in buffer order.

    >>> step_columns("mse+dsl")
    ('mse', 'dsl', 'total')
    """
    return tuple(m.key for m in METRICS if m.kind == "loss" and loss in m.losses)


def history_keys(kind: str, loss: str | None = None) -> tuple[str, ...]:
    """The history columns of the metrics of ``kind`` (``"eval"``, or ``"loss"``/``"setting"``
    for the objective ``loss``), in registry order."""
    return tuple(
        m.history_key for m in METRICS
        if m.kind == kind and m.history_key and (loss is None or loss in m.losses)
    )


def table_metrics() -> tuple[Metric, ...]:
    """The metrics that are columns of the experiment tables, in column order."""
    return tuple(m for m in METRICS if m.table)


def compute_metrics(batch: EvalBatch, *, live: bool = False) -> dict[str, Any]:
    """Every ``"eval"`` metric of ``batch`` (those not asked for are left out).

    With ``live``, only those logged in the history, keyed by their ``history_key``.
    """
    out: dict[str, Any] = {}
    for m in METRICS:
        if m.kind != "eval" or m.compute is None or (live and not m.history_key):
            continue
        value = m.compute(batch)
        if value is not None:
            out[(m.history_key or m.key) if live else m.key] = value
    return out


def upgrade_history(history: Mapping[str, Any], *, spatial_dims: int, version: int) -> None:
    """Rewrite, in place, the evaluation columns of a history logged under metrics ``version``
    into today's definitions (e.g. the sign-mismatch rate of version 1 divided by the axes)."""
    if version >= METRICS_VERSION:
        return
    evals = history.get("evals")
    if not isinstance(evals, dict):
        return
    for m in METRICS:
        if m.kind == "eval" and m.legacy is not None and m.history_key in evals:
            legacy = m.legacy
            evals[m.history_key] = [
                None if v is None else legacy(float(v), spatial_dims)
                for v in evals[m.history_key]
            ]
