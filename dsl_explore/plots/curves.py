"""Curves: a training run's history over steps, and DSL against the sharpness k."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsl_explore._validation import (
    check_choice,
    check_finite,
    check_pair,
    check_real_floating,
    resolve_dims,
    resolve_weights,
    to_numpy,
)
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.loss import SURROGATES, directional_sign_loss
from dsl_explore.plots import style
from dsl_explore.plots.compute import as_tensor, sign_limit
from dsl_explore.plots.traces import fmt

__all__ = ["EVENT_MERGE_FRACTION", "KSweep", "event_groups", "k_sweep", "plot_history",
           "plot_k_sweep"]

SURROGATE_COLORS: dict[str, str] = {
    "tanh": style.OKABE_ITO["reddish_purple"],
    "softsign": style.OKABE_ITO["sky_blue"],
    "arctan": style.OKABE_ITO["bluish_green"],
    "erf": style.OKABE_ITO["blue"],
    "sigmoid": style.OKABE_ITO["orange"],
}
"""One colour per surrogate in :func:`plot_k_sweep`."""


# --------------------------------------------------------------------------------------------
# k sweep


@dataclass(frozen=True)
class KSweep:
    """DSL (``reduction="sum"``) over a range of k, with its exact counterparts.

    Attributes
    ----------
    ks : numpy.ndarray
        The sharpness values, float64.
    dsl : dict of str to numpy.ndarray
        ``surrogate -> DSL(k)`` for each k, float64.
    count : float
        The exact (weighted) sign-mismatch count, :func:`~dsl_explore.counting.
        sign_mismatch_count`.
    limit : float
        The k -> infinity limit of DSL: ``sum_a w_a sum |sgn D_a x - sgn D_a y| / 2``. It equals
        ``count`` unless some difference is zero on exactly one side (those count 1/2 here).
    scale : float
        ``median |D target|`` over all axes (nonzero differences); ``k * scale ~ 1`` is where the
        surrogate starts to saturate for typical differences.
    """

    ks: np.ndarray
    dsl: dict[str, np.ndarray]
    count: float
    limit: float
    scale: float


def k_sweep(
    target: Any,
    recon: Any,
    *,
    ks: Sequence[float] | np.ndarray | None = None,
    surrogates: Sequence[str] = ("tanh",),
    dims: int | Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
) -> KSweep:
    """DSL with ``reduction="sum"`` for each k and surrogate, and the exact count (pure function).

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        Floating arrays of one shape and kind.
    ks : sequence of float, optional
        Sharpness values (> 0); default ``numpy.logspace(-1, 4, 40)``.
    surrogates : sequence of str
        Names from :data:`dsl_explore.loss.SURROGATES`.
    dims : int or sequence of int, optional
        The difference axes; ``None`` means every axis of a bare 1-3D field (unlike the loss,
        whose default is the ``(N, C, *spatial)`` layout).
    weights : sequence of float, optional
        Per-axis weights.

    Returns
    -------
    KSweep
        The values, computed by :func:`~dsl_explore.loss.directional_sign_loss` and
        :func:`~dsl_explore.counting.sign_mismatch_count` themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import k_sweep
    >>> y = np.array([0.0, 1.0, 0.0, 1.0]); x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> sw = k_sweep(y, x, ks=[0.1, 1.0, 1e4])
    >>> sw.count, sw.limit, round(float(sw.dsl["tanh"][-1]), 6)
    (1.0, 1.0, 1.0)
    """
    check_pair(recon, target, names=("recon", "target"))
    check_real_floating(recon, "recon")
    check_real_floating(target, "target")
    check_finite(recon, "recon")
    check_finite(target, "target")
    axes = resolve_dims(target.ndim, dims, default="all")
    w = resolve_weights(weights, len(axes))
    ks_arr = np.logspace(-1, 4, 40) if ks is None else np.asarray(ks, dtype=np.float64).ravel()
    if ks_arr.size == 0 or not np.all(np.isfinite(ks_arr)) or np.any(ks_arr <= 0):
        raise ValueError("ks must be a non-empty sequence of finite values > 0")
    if isinstance(surrogates, str):
        surrogates = (surrogates,)
    for s in surrogates:
        check_choice(s, "surrogates entry", tuple(SURROGATES))
    dsl = {
        s: np.array([
            float(directional_sign_loss(recon, target, k=float(k), weights=w, dims=axes,
                                        surrogate=s, reduction="sum"))
            for k in ks_arr
        ])
        for s in surrogates
    }
    count = float(sign_mismatch_count(recon, target, dims=axes, weights=w))
    limit = sign_limit(recon, target, axes=axes, weights=w)
    yt = as_tensor(target)
    diffs = [np.abs(np.diff(to_numpy(yt), axis=a)).ravel() for a in axes if yt.shape[a] > 1]
    d = np.concatenate(diffs) if diffs else np.zeros(0)
    d = d[d > 0]
    scale = float(np.median(d)) if d.size else float("nan")
    return KSweep(ks_arr, dsl, count, limit, scale)


def plot_k_sweep(
    target: Any,
    recon: Any,
    *,
    ks: Sequence[float] | np.ndarray | None = None,
    surrogates: Sequence[str] = ("tanh",),
    dims: int | Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    title: str | None = None,
    width: int = 1000,
    height: int = 600,
) -> go.Figure:
    """DSL (``reduction="sum"``) against k on a log axis, with the exact count as its limit.

    One line per surrogate (from :func:`k_sweep`); a dashed black line at the exact count (the
    k -> infinity limit on data without zero differences, a dotted one at the actual limit when
    they differ), and a dotted grey vertical line at ``k = 1 / median |D target|``, where
    typical differences start to saturate the surrogate.

    Parameters
    ----------
    target, recon, ks, surrogates, dims, weights
        As in :func:`k_sweep`.
    title : str, optional
        Figure title.
    width, height : int
        Default size in px.

    Returns
    -------
    plotly.graph_objects.Figure
        Lines with ``meta={"role": "dsl", "surrogate": name}``, ``{"role": "count"}`` and
        (when it differs) ``{"role": "limit"}``, and the scale line ``{"role": "scale"}``.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_k_sweep
    >>> y = np.array([0.0, 1.0, 0.0, 1.0]); x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> fig = plot_k_sweep(y, x, surrogates=("tanh", "erf"))
    >>> [t.meta["role"] for t in fig.data]
    ['dsl', 'dsl', 'count', 'scale']
    """
    sw = k_sweep(target, recon, ks=ks, surrogates=surrogates, dims=dims, weights=weights)
    fig = go.Figure()
    for name, values in sw.dsl.items():
        fig.add_trace(go.Scatter(
            x=sw.ks, y=values, mode="lines+markers", name=f"DSL, {name} surrogate",
            line={"color": SURROGATE_COLORS.get(name, style.DSL_COLOR), "width": 2.5},
            marker={"size": 5},
            hovertemplate=f"{name}: k=%{{x:.3g}}, DSL=%{{y:.4g}}<extra></extra>",
            meta={"role": "dsl", "surrogate": name},
        ))
    lo, hi = float(sw.ks.min()), float(sw.ks.max())
    fig.add_trace(go.Scatter(
        x=[lo, hi], y=[sw.count, sw.count], mode="lines",
        name=f"exact count = {fmt(sw.count)}",
        line={"color": style.EXACT_COLOR, "dash": "dash", "width": 2},
        meta={"role": "count"},
    ))
    if sw.limit != sw.count:
        fig.add_trace(go.Scatter(
            x=[lo, hi], y=[sw.limit, sw.limit], mode="lines",
            name=f"k → ∞ limit = {fmt(sw.limit)} (zero differences count ½)",
            line={"color": "#777777", "dash": "dot", "width": 2},
            meta={"role": "limit"},
        ))
    if np.isfinite(sw.scale) and lo <= 1.0 / sw.scale <= hi:
        top = max([sw.count, sw.limit] + [float(v.max()) for v in sw.dsl.values()])
        fig.add_trace(go.Scatter(
            x=[1.0 / sw.scale] * 2, y=[0.0, top * 1.05], mode="lines",
            name=f"k = 1 / median |D target| = {1.0 / sw.scale:.3g}",
            line={"color": "#999999", "width": 1.5, "dash": "dot"},
            hoverinfo="skip", meta={"role": "scale"},
        ))
    fig.update_xaxes(type="log", title_text="sharpness k (log scale)", **_log_ticks(lo, hi))
    fig.update_yaxes(title_text="DSL, reduction = sum (differences)", rangemode="tozero")
    default = "DSL → exact sign-mismatch count as k → ∞"
    style.apply_style(fig, title=title if title is not None else default,
                      width=width, height=height)
    return fig


# --------------------------------------------------------------------------------------------
# history

_SETTING_KEYS = {
    "step", "epoch", "time", "t", "wall", "wall_time", "elapsed", "seconds", "lr",
    "learning_rate", "lambda", "lam", "k", "steps_per_s", "sps", "weights", "surrogate",
    "batch", "samples",
}
_LOSS_ORDER = ("total", "loss", "mse", "dsl", "ph")
_CRIT_KEYS = ("spurious", "lost", "changed")
_CRIT_COLORS = {k: style.KIND_STYLES[k].color for k in _CRIT_KEYS}
_LOSS_COLORS = {
    "total": style.OKABE_ITO["black"], "loss": style.OKABE_ITO["black"],
    "mse": style.OKABE_ITO["blue"], "dsl": style.DSL_COLOR,
    "ph": style.OKABE_ITO["bluish_green"],
}
_CYCLE = (style.OKABE_ITO["sky_blue"], style.OKABE_ITO["orange"],
          style.OKABE_ITO["vermillion"], style.OKABE_ITO["yellow"])


def _is_number(v: object) -> TypeGuard[float]:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(float(v))


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or not _is_number(rec.get(key)):
            continue
        step = rec.get("step", i)
        xs.append(float(step) if _is_number(step) else float(i))
        ys.append(float(rec[key]))
    return xs, ys


def _numeric_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for rec in records:
        if isinstance(rec, Mapping):
            for key, v in rec.items():
                if isinstance(key, str) and _is_number(v):
                    seen.setdefault(key, None)
    return list(seen)


def _records(section: object) -> list[dict[str, Any]]:
    """A history section as a list of flat records.

    Accepts a list of dicts, or a dict of equal-length columns (the layout of
    :attr:`dsl_explore.training.TrainingRun.history`); anything else gives ``[]``. List values
    are expanded: ``betti_per_dim=[a, b]`` becomes ``betti_0=a, betti_1=b``, another
    ``key=[...]`` becomes ``key_0, key_1, ...``.
    """
    if isinstance(section, Mapping):
        cols = {k: v for k, v in section.items()
                if isinstance(v, Sequence) and not isinstance(v, (str, bytes))}
        n = max((len(v) for v in cols.values()), default=0)
        rows: list[Mapping[str, Any]] = [
            {k: v[i] for k, v in cols.items() if i < len(v)} for i in range(n)
        ]
    elif isinstance(section, Sequence) and not isinstance(section, (str, bytes)):
        rows = [r for r in section if isinstance(r, Mapping)]
    else:
        return []
    out = []
    for r in rows:
        flat: dict[str, Any] = {}
        for key, v in r.items():
            if isinstance(v, (list, tuple)) and v and all(_is_number(e) for e in v):
                stem = "betti" if key == "betti_per_dim" else str(key)
                for i, e in enumerate(v):
                    flat[f"{stem}_{i}"] = e
            else:
                flat[key] = v
        out.append(flat)
    return out


def _event_label(ev: Mapping[str, Any]) -> str:
    for key in ("label", "message", "name", "event", "kind", "type", "what"):
        if isinstance(ev.get(key), str):
            head = ev[key]
            break
    else:
        head = "event"
    changes = ev.get("changes") or ev.get("settings") or ev.get("values")
    if isinstance(changes, Mapping) and changes:
        parts = []
        for k2, v in changes.items():
            parts.append(f"{k2}={v:g}" if _is_number(v) else f"{k2}={v}")
        head += ": " + ", ".join(parts)
    elif not isinstance(changes, Mapping):
        extras = [f"{k2}={v:g}" for k2, v in ev.items()
                  if k2 not in ("step", "time", "wall_time") and _is_number(v)]
        if extras:
            head += ": " + ", ".join(extras)
    return head


EVENT_MERGE_FRACTION = 0.025
"""Events closer than this fraction of the step axis share one label in :func:`plot_history`."""

_EVENT_LABEL_CHARS = 70


def event_groups(
    events: Sequence[Mapping[str, Any]], span: float
) -> list[tuple[float, list[float], list[str]]]:
    """Events grouped for labelling: ``(label_step, steps, labels)`` per group, in step order.

    Consecutive events less than ``EVENT_MERGE_FRACTION * span`` steps apart join a group, so
    settings changed in quick succession get one readable label instead of a pile of
    overlapping ones. Events without a numeric step are skipped.

    Examples
    --------
    >>> evs = [{"step": 10, "kind": "set k"}, {"step": 12, "kind": "set lam"},
    ...        {"step": 500, "kind": "set lr"}]
    >>> [(g[0], g[2]) for g in event_groups(evs, 1000)]
    [(10.0, ['set k', 'set lam']), (500.0, ['set lr'])]
    """
    pts = sorted((float(ev["step"]), _event_label(ev)) for ev in events
                 if _is_number(ev.get("step")))
    gap = EVENT_MERGE_FRACTION * span if span > 0 else 0.0
    groups: list[tuple[float, list[float], list[str]]] = []
    for step, label in pts:
        if groups and step - groups[-1][1][-1] < gap:
            groups[-1][1].append(step)
            groups[-1][2].append(label)
        else:
            groups.append((step, [step], [label]))
    return groups


def _group_text(labels: Sequence[str]) -> str:
    text = labels[0] if len(labels) == 1 else f"{len(labels)} changes: " + "; ".join(labels)
    if len(text) > _EVENT_LABEL_CHARS:
        text = text[: _EVENT_LABEL_CHARS - 1] + "…"
    return text


def _log_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Tick settings for a log axis over ``[lo, hi]`` (data units): one label per decade when
    the range spans two decades or more, else labels at 1, 2 and 5 only (plotly's default labels
    every digit of a short range: 2 3 4 5 6 7 8 9 crowd)."""
    if lo > 0 and hi > 0 and math.log10(hi / lo) >= 2:
        return {"dtick": 1, "exponentformat": "power", "minor": {"ticks": "inside",
                                                                  "dtick": "D1"}}
    return {"dtick": "D2", "exponentformat": "power"}


def plot_history(
    history: Mapping[str, Any],
    *,
    title: str | None = None,
    log_loss: bool | None = None,
    width: int = 1100,
    height: int = 950,
    x_span: float | None = None,
) -> go.Figure:
    """A training run over steps: loss terms, exact-count rate, Betti error, critical points.

    Four rows on a shared step axis. The input is the plain history structure of a run:
    ``{"steps": [{"step", "mse", "dsl", "total", ...}], "evals": [{"step", "count_rate",
    "spurious", "lost", "changed", "betti_total", "betti_0", ...}], "events": [{"step",
    "event", "changes", ...}]}``; each section may also be a dict of columns (``{"step": [...],
    "mse": [...]}``, as :attr:`dsl_explore.training.TrainingRun.history` keeps it), and
    ``betti_per_dim`` lists become ``betti_0``, ``betti_1``, ... It is read tolerantly: missing
    sections, records or keys are skipped (a row without data says so), non-numeric values
    ignored.

    - Row 1: every numeric key of the step records that is not a setting or a counter
      (``total``/``loss``, ``mse``, ``dsl``, ``ph`` first, then others), and ``val_mse`` of
      the evaluations; log scale when all are positive.
    - Row 2: ``count_rate`` of the evaluations (the exact sign-mismatch rate).
    - Row 3: ``betti_total`` and ``betti_<q>`` / other ``betti*`` keys.
    - Row 4: ``spurious``, ``lost``, ``changed`` critical-point counts.
    - Events (e.g. a change of lambda or k): dotted vertical lines through every row, labelled.

    Parameters
    ----------
    history : Mapping
        The history, see above.
    title : str, optional
        Figure title.
    log_loss : bool, optional
        Log scale for row 1; default: when every loss value is > 0.
    width, height : int
        Default size in px.
    x_span : float, optional
        The step range the x axis will show, for merging event labels (:func:`event_groups`);
        default: the range of the data and events.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces with ``meta={"role": "loss" | "count_rate" | "betti" | "critical", "key": key}``.

    Examples
    --------
    >>> from dsl_explore.plots import plot_history
    >>> h = {"steps": [{"step": 0, "mse": 0.5, "dsl": 0.2}, {"step": 1, "mse": 0.3}],
    ...      "evals": [{"step": 1, "spurious": 4}], "events": [{"step": 1, "kind": "set k"}]}
    >>> fig = plot_history(h)
    >>> sorted(t.meta["key"] for t in fig.data)
    ['dsl', 'mse', 'spurious']
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a mapping (a dict), got {type(history).__name__}")

    steps, evals = _records(history.get("steps")), _records(history.get("evals"))
    events = _records(history.get("events"))
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06,
        row_heights=[0.34, 0.22, 0.22, 0.22],
        subplot_titles=("loss terms (per step)", "exact sign-mismatch rate (evaluations)",
                        "Betti error (evaluations)",
                        "mismatched critical points (evaluations)"),
    )
    # row 1: losses
    keys = [k for k in _numeric_keys(steps) if k not in _SETTING_KEYS]
    keys = [k for k in _LOSS_ORDER if k in keys] + [k for k in keys if k not in _LOSS_ORDER]
    all_pos = True
    for i, key in enumerate(keys):
        xs, ys = _series(steps, key)
        all_pos &= all(v > 0 for v in ys)
        color = _LOSS_COLORS.get(key, _CYCLE[i % len(_CYCLE)])
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", name=key, legendgroup="loss",
            line={"color": color, "width": 2.5 if key in ("total", "loss") else 1.8,
                  "dash": "dot" if key in ("total", "loss") else "solid"},
            meta={"role": "loss", "key": key},
        ), row=1, col=1)
    xs, val_ys = _series(evals, "val_mse")
    if val_ys:
        all_pos &= all(v > 0 for v in val_ys)
        fig.add_trace(go.Scatter(
            x=xs, y=val_ys, mode="lines+markers", name="val mse (evaluations)",
            legendgroup="loss",
            line={"color": style.OKABE_ITO["blue"], "width": 1.5, "dash": "dash"},
            marker={"size": 6, "symbol": "circle-open"},
            meta={"role": "loss", "key": "val_mse"},
        ), row=1, col=1)
    # row 2: count rate
    xs, ys = _series(evals, "count_rate")
    if ys:
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name="exact count rate", legendgroup="rate",
            line={"color": style.EXACT_COLOR, "width": 2}, marker={"size": 6},
            meta={"role": "count_rate", "key": "count_rate"},
        ), row=2, col=1)
    # row 3: Betti
    betti = [k for k in _numeric_keys(evals) if k.startswith("betti")]
    betti = sorted(betti, key=lambda k: (k != "betti_total", k))
    for i, key in enumerate(betti):
        xs, ys = _series(evals, key)
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=key.replace("_", " "), legendgroup="betti",
            line={"color": style.EXACT_COLOR if key == "betti_total" else _CYCLE[i % 4],
                  "width": 2.5 if key == "betti_total" else 1.6},
            marker={"size": 5}, meta={"role": "betti", "key": key},
        ), row=3, col=1)
    # row 4: critical points
    for key in _CRIT_KEYS:
        xs, ys = _series(evals, key)
        if not ys:
            continue
        ms = style.marker_style(key, size=8)
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=f"{key} critical points",
            legendgroup="critical",
            line={"color": _CRIT_COLORS[key], "width": 2}, marker=ms,
            meta={"role": "critical", "key": key},
        ), row=4, col=1)
    rows_with_data = {1: bool(keys) or bool(val_ys), 2: bool(_series(evals, "count_rate")[1]),
                      3: bool(betti), 4: any(_series(evals, k)[1] for k in _CRIT_KEYS)}
    for row, has in rows_with_data.items():
        if not has:
            fig.add_annotation(text="no data", showarrow=False, font={"color": "#888888"},
                               xref=f"x{'' if row == 1 else row} domain",
                               yref=f"y{'' if row == 1 else row} domain", x=0.5, y=0.5)
    if x_span is None:
        xs_all = [float(r["step"]) for sec in (steps, evals, events) for r in sec
                  if _is_number(r.get("step"))]
        x_span = (max(xs_all) - min(xs_all)) if xs_all else 0.0
    for label_step, group_steps, labels in event_groups(events, x_span):
        for step in group_steps:
            fig.add_vline(x=step, line={"color": "#888888", "dash": "dot", "width": 1.2})
        fig.add_annotation(
            x=label_step, y=1.0, xref="x", yref="y domain", text=_group_text(labels),
            hovertext="<br>".join(f"step {int(s_)}: {lb}" for s_, lb in zip(group_steps, labels,
                                                                              strict=True)),
            showarrow=False, textangle=-90, xanchor="right", yanchor="top",
            font={"size": 11, "color": "#555555"},
        )
    if log_loss is None:
        log_loss = (bool(keys) or bool(val_ys)) and all_pos
    if log_loss:
        pos = [v for key in keys for v in _series(steps, key)[1] if v > 0]
        pos += [v for v in val_ys if v > 0]
        ticks = _log_ticks(min(pos), max(pos)) if pos else {}
        fig.update_yaxes(type="log", row=1, col=1, **ticks)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="rate (0-1)", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="Betti error", rangemode="tozero", row=3, col=1)
    fig.update_yaxes(title_text="count", rangemode="tozero", row=4, col=1)
    fig.update_xaxes(title_text="training step", row=4, col=1)
    style.apply_style(fig, title=title if title is not None else "training history",
                      width=width, height=height, legend_top=False)
    return fig


