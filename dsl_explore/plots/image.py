"""2D view: heatmaps of target, reconstruction, exact mismatch map and DSL contribution map."""

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
from dsl_explore.plots.compute import (
    CriticalGroups,
    as_field,
    check_same_shape,
    critical_groups,
    dsl_terms,
    exact_edges,
)
from dsl_explore.plots.parts import (
    MapPanel,
    Parts2D,
    dsl_vertex_map,
    exact_vertex_map,
    field_display,
    map_cmax,
    map_display,
    marker_fields,
    title_2d,
)
from dsl_explore.plots.traces import block_coords, block_factor

__all__ = ["VIEWS", "build_2d", "plot_2d"]

VIEWS = ("weighted", "per_axis")
"""The map views of :func:`plot_2d`."""

_FIELD_PANELS = (("target", "target"), ("recon", "reconstruction"))
_PANEL_KINDS = {
    "target": ("matched", "lost", "changed"),
    "recon": ("matched", "spurious", "changed"),
}


def _maps_weighted(
    recon: np.ndarray, target: np.ndarray, *, k: float, surrogate: str,
    weights: Sequence[float] | None, factor: int,
) -> list[MapPanel]:
    e = exact_vertex_map(recon, target, weights=weights)
    d = dsl_vertex_map(recon, target, k=k, surrogate=surrogate, weights=weights)
    ys, xs = block_coords(recon.shape[0], factor), block_coords(recon.shape[1], factor)
    return [
        MapPanel("exact", None, "exact sign mismatches per vertex", map_display(e, factor), xs, ys),
        MapPanel("dsl", None, f"DSL contribution per vertex (k={k:g}, {surrogate})",
             map_display(d, factor), xs, ys),
    ]


def _maps_per_axis(
    recon: np.ndarray, target: np.ndarray, *, k: float, surrogate: str,
    weights: Sequence[float] | None, factor: int,
) -> list[MapPanel]:
    terms = dsl_terms(recon, target, k=k, surrogate=surrogate)
    edges = exact_edges(recon, target)
    out: list[MapPanel] = []
    for role, per_axis in (("exact", edges), ("dsl", terms)):
        for a, e in enumerate(per_axis):
            w = 1.0 if weights is None else weights[a]
            z = e.double() * w
            rows, cols = z.shape
            ys = block_coords(rows, factor) + (0.5 if a == 0 else 0.0)
            xs = block_coords(cols, factor) + (0.5 if a == 1 else 0.0)
            what = "exact sign mismatch" if role == "exact" else f"DSL term (k={k:g})"
            out.append(MapPanel(role, a, f"{what}, differences along axis {a}",
                            map_display(z, factor), xs, ys))
    return out


def _marker_traces_2d(groups: CriticalGroups, panel: str, size: float,
                      max_markers: int | None = None) -> list[go.Scatter]:
    return [_marker_trace_2d(groups, panel, kind, size, max_markers)
            for kind in _PANEL_KINDS[panel]]


def _marker_trace_2d(groups: CriticalGroups, panel: str, kind: str, size: float,
                     max_markers: int | None) -> go.Scatter:
    return go.Scatter(
        mode="markers",
        legendgroup=kind,
        showlegend=not (panel == "recon" and kind in _PANEL_KINDS["target"]),
        marker=style.marker_style(kind, size=size - (2 if kind == "matched" else 0),
                                  on_image=True),
        hovertemplate=(
            f"{kind} on {panel}: %{{text}}<br>(row, col) = (%{{y}}, %{{x}})<extra></extra>"
        ),
        meta={"role": "critical", "kind": kind, "panel": panel},
        **marker_fields(groups, kind, max_markers),
    )


def _legend_order(fig: go.Figure) -> None:
    rank = {k: i for i, k in enumerate(style.KINDS)}
    for tr in fig.data:
        m = tr.meta if isinstance(tr.meta, dict) else {}
        if m.get("role") == "critical":
            tr.legendrank = 100 + rank[m["kind"]]


def build_2d(p: Parts2D, *, width: int, height: int) -> go.Figure:
    """The 2D figure of :func:`plot_2d` from its parts (:class:`~dsl_explore.plots.parts.Parts2D`).

    Parameters
    ----------
    p : Parts2D
        What to draw: a weighted view (two map panels, ``axis`` None) or a per-axis view (one
        panel per role and axis).
    width, height : int
        Size in px.

    Returns
    -------
    plotly.graph_objects.Figure
        The fields (top row, with markers) and the map panels, all axes shared; traces carry
        ``meta`` roles (see :func:`plot_2d`).
    """
    per_axis = any(m.axis is not None for m in p.maps)
    n_axes = max((m.axis or 0) for m in p.maps) + 1 if per_axis else 1
    cols = max(2, n_axes)
    rows = 3 if per_axis else 2
    titles = [t for _, t in _FIELD_PANELS] + [""] * (cols - 2)
    if per_axis:
        for role in ("exact", "dsl"):
            row_titles = [m.title for m in p.maps if m.role == role]
            titles += row_titles + [""] * (cols - len(row_titles))
    else:
        titles += [m.title for m in p.maps] + [""] * (cols - 2)
    fig = make_subplots(
        rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all", subplot_titles=titles,
        horizontal_spacing=0.06, vertical_spacing=0.09 if rows == 2 else 0.07,
    )
    n_markers = sum(c.shape[0] for c in p.groups.coords.values())
    size = 10 if n_markers < 400 else 7
    for col, (panel, label) in enumerate(_FIELD_PANELS, start=1):
        fig.add_trace(
            go.Heatmap(
                z=p.target if panel == "target" else p.recon, x=p.x, y=p.y,
                coloraxis="coloraxis", name=label,
                hovertemplate=f"{label}<br>(row, col) = (%{{y}}, %{{x}})<br>value %{{z:.4f}}"
                "<extra></extra>",
                meta={"role": "field", "panel": panel},
            ),
            row=1, col=col,
        )
        for tr in _marker_traces_2d(p.groups, panel, size, p.max_markers):
            fig.add_trace(tr, row=1, col=col)
    for i, m in enumerate(p.maps):
        if per_axis:
            row, col = (2 if m.role == "exact" else 3), (m.axis or 0) + 1
        else:
            row, col = 2, i + 1
        fig.add_trace(
            go.Heatmap(
                z=m.z, x=m.x, y=m.y, coloraxis="coloraxis2", name=m.title,
                hovertemplate=f"{m.title}<br>(row, col) = (%{{y}}, %{{x}})<br>%{{z:.4f}}"
                "<extra></extra>",
                meta={"role": m.role, "axis": m.axis},
            ),
            row=row, col=col,
        )
    _legend_order(fig)
    _axes_2d(fig, rows, cols, p.axis_names)
    fvals = np.concatenate([p.target.ravel(), p.recon.ravel()])
    y1 = fig.layout.yaxis.domain
    y2 = fig.layout[f"yaxis{cols + 1}"].domain
    y2lo = fig.layout[f"yaxis{(rows - 1) * cols + 1}"].domain[0]
    fig.update_layout(
        coloraxis={
            "colorscale": style.FIELD_COLORSCALE,
            "cmin": float(fvals.min()), "cmax": float(fvals.max()),
            "colorbar": {"title": {"text": "value", "side": "right"},
                         "y": (y1[0] + y1[1]) / 2, "len": y1[1] - y1[0], "thickness": 16},
        },
        coloraxis2={
            "colorscale": style.MAP_COLORSCALE, "cmin": 0.0, "cmax": map_cmax(p.maps),
            "colorbar": {"title": {"text": _map_cbar_title(per_axis), "side": "right"},
                         "y": (y2lo + y2[1]) / 2, "len": y2[1] - y2lo, "thickness": 16},
        },
    )
    style.apply_style(fig, title=p.title, width=width, height=height)
    return fig


def _map_cbar_title(per_axis: bool) -> str:
    return "term / mismatch" if per_axis else "per vertex (½ per difference)"


def _axes_2d(fig: go.Figure, rows: int, cols: int, names: tuple[str, str]) -> None:
    for i in range(1, rows * cols + 1):
        sfx = "" if i == 1 else str(i)
        fig.layout[f"yaxis{sfx}"].update(
            autorange="reversed", scaleanchor=f"x{sfx}", scaleratio=1, constrain="domain",
            showgrid=False, zeroline=False,
        )
        fig.layout[f"xaxis{sfx}"].update(constrain="domain", showgrid=False, zeroline=False)
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text=f"{names[1]} (index)", row=rows, col=c)
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text=f"{names[0]} (index)", row=r, col=1)


def plot_2d(
    target: Any,
    recon: Any,
    *,
    k: float = 10.0,
    weights: Sequence[float] | None = None,
    surrogate: str = "tanh",
    view: str = "weighted",
    method: str = "axis",
    title: str | None = None,
    max_display: int | None = 512,
    max_markers: int | None = 5000,
    width: int | None = None,
    height: int | None = None,
) -> go.Figure:
    r"""Heatmaps of a 2D target and reconstruction, with their sign mismatches and DSL terms.

    Top row: target and reconstruction on one greyscale colour axis, with critical-point markers
    (target panel: *lost*, *changed*, *matched*; reconstruction panel: *spurious*, *changed*,
    *matched*; see :mod:`dsl_explore.plots.style`). Below, on one shared colour axis:

    - ``view="weighted"``: the exact mismatch map and the DSL contribution map per vertex. Each
      difference gives half of its value to each of its two end vertices, weighted by its
      axis weight: :math:`m[v] = \sum_a w_a (\tfrac12 e_a[v - e_a] + \tfrac12 e_a[v])`, with
      :math:`e_a` the exact mismatch (0/1) or the DSL term
      :math:`\tfrac12 |s(k D_a x) - s(k D_a y)|`. So the exact map sums to the weighted exact
      count and the DSL map to DSL with ``reduction="sum"``, and the second tends to the first
      as k grows (on data without zero differences).
    - ``view="per_axis"``: the same per difference, one panel per axis (rows: exact, DSL), drawn
      between the two pixels each difference joins.

    All panels share their axes (zoom one, zoom all) and keep square pixels; rows run down.

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        2D fields of one shape (each axis >= 2); leading axes of length 1 are dropped.
    k : float
        Sharpness (> 0).
    weights : sequence of 2 floats, optional
        Per-axis weights (default 1, 1).
    surrogate : str
        One of :data:`dsl_explore.loss.SURROGATES`.
    view : {"weighted", "per_axis"}
        The map panels, see above.
    method : {"axis", "pl"}
        Critical-point classification.
    title : str, optional
        Default: DSL (sum), exact count and the mismatched critical-point counts.
    max_display : int or None
        Fields larger than this along an axis are shown downsampled by an integer factor
        (block mean for the fields, block max for the maps, so isolated mismatches stay
        visible); the subplot titles then say so. Markers keep full-resolution positions.
        ``None``: never downsample.
    max_markers : int or None
        At most this many markers per kind and panel (evenly strided; the legend gives the
        total and the number drawn); None draws all.
    width, height : int, optional
        Default size in px (used by export).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces carry ``meta``: ``{"role": "field" | "critical" | "exact" | "dsl", ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_2d
    >>> from dsl_explore.plots import find_traces
    >>> target = np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    >>> recon = target.copy(); recon[0, 0] = 1.5   # the corner minimum becomes a maximum
    >>> fig = plot_2d(target, recon, k=1000.0)
    >>> [t.meta["role"] for t in fig.data if t.type == "heatmap"]
    ['field', 'field', 'exact', 'dsl']
    >>> find_traces(fig, role="exact")[0].z   # 2 mismatched differences, half to each end
    array([[1. , 0.5, 0. ],
           [0.5, 0. , 0. ],
           [0. , 0. , 0. ]], dtype=float32)
    >>> [t.name for t in find_traces(fig, role="critical", panel="target")]
    ['matched (6)', 'lost (2)', 'changed (1)']
    """
    t = as_field(target, "target", 2)
    r = as_field(recon, "recon", 2)
    check_same_shape(t, r)
    k = check_k(k)
    check_choice(surrogate, "surrogate", tuple(SURROGATES))
    check_choice(view, "view", VIEWS)
    check_choice(method, "method", METHODS)
    w = resolve_weights(weights, 2)
    factor = block_factor(t.shape, max_display)
    groups = critical_groups(mismatched_critical_points(r, t, method=method))
    build = _maps_weighted if view == "weighted" else _maps_per_axis
    maps = build(r, t, k=k, surrogate=surrogate, weights=w, factor=factor)
    terms = dsl_terms(r, t, k=k, surrogate=surrogate)
    edges = exact_edges(r, t)
    ws = (1.0, 1.0) if w is None else w
    dsl_sum = sum(float(e.double().sum()) * wj for e, wj in zip(terms, ws, strict=True))
    exact_sum = sum(float(e.sum()) * wj for e, wj in zip(edges, ws, strict=True))
    if factor > 1:
        for m in maps:
            m.title += f" (shown 1/{factor}: block max)"
    parts = Parts2D(
        target=field_display(t, factor),
        recon=field_display(r, factor),
        x=block_coords(t.shape[1], factor),
        y=block_coords(t.shape[0], factor),
        groups=groups,
        maps=maps,
        axis_names=("axis 0", "axis 1"),
        title=title if title is not None else title_2d(
            exact_sum, dsl_sum, groups, k=k, surrogate=surrogate, weights=w),
        factor=factor,
        max_markers=max_markers,
    )
    if width is None:
        width = 1100
    if height is None:
        height = 1000 if view == "weighted" else 1400
    return build_2d(parts, width=width, height=height)
