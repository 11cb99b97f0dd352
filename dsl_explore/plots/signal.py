"""1D view: target and reconstruction, their critical points, difference signs and DSL terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsl_explore._validation import check_choice, check_k, resolve_weights
from dsl_explore.critical import METHODS, mismatched_critical_points
from dsl_explore.loss import SURROGATES
from dsl_explore.plots import style
from dsl_explore.plots.compute import as_field, check_same_shape, critical_groups
from dsl_explore.plots.parts import Parts1D, dsl_name, marker_fields_1d, parts_1d, title_1d

__all__ = ["build_1d", "marker_trace_1d", "plot_1d"]

_BARS_UP_TO = 400  # more differences than this: a filled step line instead of bars
_EXACT_FILL = "#C9C9C9"


def build_1d(p: Parts1D, *, title: str | None, width: int, height: int) -> go.Figure:
    """The 1D figure of :func:`plot_1d` from its parts (:func:`~dsl_explore.plots.parts.parts_1d`).

    Parameters
    ----------
    p : Parts1D
        What to draw.
    title : str or None
        None: :func:`~dsl_explore.plots.parts.title_1d`.
    width, height : int
        Size in px.

    Returns
    -------
    plotly.graph_objects.Figure
        Three rows (lines and markers, sign strips, DSL terms vs exact mismatches); every trace
        carries a ``meta`` role (see :func:`plot_1d`).
    """
    n = p.target.shape[0]
    idx = np.arange(n)
    mid = np.arange(n - 1) + 0.5
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.56, 0.12, 0.32],
        vertical_spacing=0.07,
        subplot_titles=(
            "signals and their critical points",
            "sign of the finite difference D[i] = v[i+1] − v[i]",
            "per-difference DSL term (smooth) vs exact sign mismatch (k → ∞)",
        ),
    )
    fig.add_trace(
        go.Scatter(
            x=idx, y=p.target, mode="lines", name="target",
            line={"color": style.TARGET_COLOR, "width": 2.2},
            meta={"role": "line", "panel": "target"},
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=idx, y=p.recon, mode="lines", name="reconstruction",
            line={"color": style.RECON_COLOR, "width": 2.2},
            meta={"role": "line", "panel": "recon"},
        ),
        row=1, col=1,
    )
    size = 11 if n <= 512 else 8
    for kind in style.KINDS:
        fig.add_trace(marker_trace_1d(p, kind, size), row=1, col=1)

    fig.add_trace(
        go.Heatmap(
            x=mid,
            y=["target", "reconstruction"],
            z=np.stack([p.sign_target, p.sign_recon]).astype(np.int8),
            zmin=-1,
            zmax=1,
            colorscale=_sign_colorscale(),
            colorbar={
                "title": {"text": "sign", "side": "top", "font": {"size": 13}},
                "tickvals": [-2 / 3, 0, 2 / 3],
                "ticktext": ["down", "flat", "up"],
                "tickfont": {"size": 12},
                "len": 0.2,
                "y": 0.43,
                "yanchor": "middle",
                "thickness": 14,
                "x": 1.01,
            },
            name="difference signs",
            hovertemplate="D[%{x:.0f}] of %{y}: sign %{z}<extra></extra>",
            meta={"role": "sign"},
        ),
        row=2, col=1,
    )
    fig.add_trace(_exact_trace_1d(p, mid), row=3, col=1)
    fig.add_trace(_dsl_trace_1d(p, mid), row=3, col=1)
    fig.update_xaxes(title_text="index", row=3, col=1)
    fig.update_yaxes(title_text="value (normalised)", row=1, col=1)
    fig.update_yaxes(row=2, col=1, fixedrange=True, tickfont={"size": 12}, autorange="reversed")
    fig.update_yaxes(
        title_text="term (0-1)", row=3, col=1, range=[0, max(1.0, p.weight) * 1.05]
    )
    fig.update_layout(barmode="overlay", bargap=0)
    style.apply_style(fig, title=title if title is not None else title_1d(p),
                      width=width, height=height, top_margin=150)
    fig.update_layout(legend_y=1.065)  # two legend rows: keep clear of the subplot title
    return fig


def _sign_colorscale() -> list[list[Any]]:
    c = style.SIGN_COLORS
    return [
        [0.0, c[-1]], [1 / 3, c[-1]], [1 / 3, c[0]], [2 / 3, c[0]], [2 / 3, c[1]], [1.0, c[1]]
    ]


def marker_trace_1d(p: Parts1D, kind: str, size: float) -> go.Scatter:
    """The marker trace of one critical-point ``kind`` of the 1D figure (markers of ``size`` px;
    data from :func:`~dsl_explore.plots.parts.marker_fields_1d`)."""
    on = "target" if kind == "lost" else "recon"
    return go.Scatter(
        mode="markers",
        legendgroup=kind,
        marker=style.marker_style(kind, size=size if kind != "matched" else size - 2),
        hovertemplate=f"{kind} (on {on}): %{{text}} at %{{x}}<extra></extra>",
        meta={"role": "critical", "kind": kind, "panel": on},
        **marker_fields_1d(p, kind),
    )


def _exact_trace_1d(p: Parts1D, mid: np.ndarray) -> go.Bar | go.Scatter:
    common = {
        "name": "exact sign mismatch (k → ∞)",
        "hovertemplate": "D[%{x:.0f}]: signs differ<extra></extra>",
        "meta": {"role": "exact"},
    }
    if mid.shape[0] <= _BARS_UP_TO:
        return go.Bar(x=mid, y=p.exact, marker_color=_EXACT_FILL, width=0.95, **common)
    return go.Scatter(
        x=mid, y=p.exact, mode="lines", fill="tozeroy", fillcolor=_EXACT_FILL,
        line={"color": _EXACT_FILL, "width": 0.5, "shape": "hvh"}, **common,
    )


def _dsl_trace_1d(p: Parts1D, mid: np.ndarray) -> go.Bar | go.Scatter:
    common = {
        "name": dsl_name(p.k, p.surrogate),
        "hovertemplate": "D[%{x:.0f}]: term %{y:.4f}<extra></extra>",
        "meta": {"role": "dsl"},
    }
    if mid.shape[0] <= _BARS_UP_TO:
        return go.Bar(x=mid, y=p.terms, marker_color=style.DSL_COLOR, width=0.55, **common)
    return go.Scatter(
        x=mid, y=p.terms, mode="lines", line={"color": style.DSL_COLOR, "width": 1, "shape": "hvh"},
        fill="tozeroy", **common,
    )


def plot_1d(
    target: Any,
    recon: Any,
    *,
    k: float = 10.0,
    surrogate: str = "tanh",
    weights: Sequence[float] | None = None,
    method: str = "axis",
    title: str | None = None,
    width: int = 1100,
    height: int = 780,
) -> go.Figure:
    r"""Target and reconstruction of a 1D signal, their critical points, signs and DSL terms.

    Three rows on a shared x axis:

    1. the target (blue) and reconstruction (orange) lines, with the critical points marked by
       kind (see :mod:`dsl_explore.plots.style`): *spurious*, *changed* and *matched* points
       on the reconstruction, *lost* points on the target;
    2. the sign strips: :math:`\operatorname{sgn} D y` and :math:`\operatorname{sgn} D x`
       (-1/0/+1) of the finite differences, drawn between the samples they join;
    3. the per-difference DSL term :math:`w \tfrac12 |s(k D x) - s(k D y)|` for the given
       ``k`` (purple), in front of the exact mismatches (grey, height ``w``): the k -> infinity
       limit of the term on differences that are not zero.

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        1D fields of one length (>= 2); leading axes of length 1 are dropped.
    k : float
        Sharpness of the surrogate (> 0).
    surrogate : str
        One of :data:`dsl_explore.loss.SURROGATES`.
    weights : sequence of one float, optional
        The axis weight ``w`` (default 1).
    method : {"axis", "pl"}
        Critical-point classification (:func:`dsl_explore.critical.critical_points`).
    title : str, optional
        Figure title; default: the DSL value (sum), exact count and mismatch counts.
    width, height : int
        Default size in px (used by export).

    Returns
    -------
    plotly.graph_objects.Figure
        Every trace carries ``meta``: ``{"role": "line" | "critical" | "sign" | "dsl" |
        "exact", ...}`` (critical markers also ``"kind"`` and ``"panel"``).

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_1d
    >>> target = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
    >>> recon = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    >>> fig = plot_1d(target, recon, k=50.0)
    >>> [t.name for t in fig.data if t.meta["role"] == "critical"]
    ['matched (2)', 'spurious (0)', 'lost (2)', 'changed (1)']
    >>> from dsl_explore.plots import find_traces
    >>> dsl = find_traces(fig, role="dsl")[0]   # the DSL terms sum to DSL(reduction="sum")
    >>> round(float(dsl.y.sum()), 3)
    2.0
    """
    t = as_field(target, "target", 1)
    r = as_field(recon, "recon", 1)
    check_same_shape(t, r)
    k = check_k(k)
    check_choice(surrogate, "surrogate", tuple(SURROGATES))
    check_choice(method, "method", METHODS)
    w = resolve_weights(weights, 1)
    weight = 1.0 if w is None else w[0]
    groups = critical_groups(mismatched_critical_points(r, t, method=method))
    parts = parts_1d(t, r, k=k, surrogate=surrogate, weight=weight, groups=groups)
    return build_1d(parts, title=title, width=width, height=height)
