"""The trade-off figure of a reproduction suite: Betti error against MSE, one point per objective.

Each point is the mean over seeds of one objective (held-out MSE on x, total Betti error on y,
both log scale), with the 95 % bootstrap interval of each mean as error bars (from the
``summary`` of :func:`dsl_explore.experiments.reproduce`'s ``results.json``). The points that
no other point beats on both axes (the Pareto front) are joined by a line. Lower left is better.

Examples
--------
>>> summary = [
...     {"data_kind": "synthetic", "dims": 2, "setting": name,
...      "mse_interval": {"value": m, "low": m * 0.9, "high": m * 1.1},
...      "betti_total_interval": {"value": b, "low": b * 0.8, "high": b * 1.2}}
...     for name, m, b in (("mse", 1e-3, 2.0), ("mse+dsl", 8e-4, 1.0), ("other", 2e-3, 1.5))]
>>> fig = plot_pareto({"summary": summary}, data_kind="synthetic", dims=2)
>>> pareto_front([(1e-3, 2.0), (8e-4, 1.0), (2e-3, 1.5)])
[1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from dsl_explore.experiments.report import groups
from dsl_explore.plots.style import OKABE_ITO, apply_style

__all__ = ["pareto_front", "pareto_groups", "plot_pareto"]

_COLORS = {
    "mse": OKABE_ITO["black"],
    "mse+dsl": OKABE_ITO["blue"],
    "mse+ph": OKABE_ITO["vermillion"],
}


_SYMBOLS = ("circle", "diamond", "triangle-up", "triangle-down", "star", "hexagon")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better),
    sorted by the first coordinate."""
    front = [
        i for i, (x, y) in enumerate(points)
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points)
    ]
    return sorted(front, key=lambda i: points[i][0])


def pareto_groups(result: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The (data kind, dimensionality) pairs of a result's summary, in order."""
    return groups(result["summary"])


def _color(name: str) -> str:
    if name in _COLORS:
        return _COLORS[name]
    if name.startswith("mse+ph"):
        return OKABE_ITO["reddish_purple"]
    if " lam=" in name:
        return OKABE_ITO["sky_blue"]
    if " k=" in name:
        return OKABE_ITO["bluish_green"]
    return OKABE_ITO["orange"]


def plot_pareto(
    result: Mapping[str, Any], *, data_kind: str, dims: int, title: str | None = None,
    width: int = 900, height: int = 560,
) -> go.Figure:
    """Betti error (total) against MSE for every objective of one (data kind, dims) group.

    Parameters
    ----------
    result
        A reproduction result (``results.json``): its ``summary`` rows need ``setting``,
        ``mse_interval`` and ``betti_total_interval``.
    data_kind, dims
        The group to show.
    title, width, height
        Figure title (default: names the group and the seed count) and export size.

    Raises
    ------
    ValueError
        If the result has no row for the group.
    """
    rows = [r for r in result["summary"]
            if r["data_kind"] == data_kind and int(r["dims"]) == int(dims)]
    if not rows:
        raise ValueError(f"the result has no rows for data {data_kind!r}, {dims}D")
    pts = [(r["mse_interval"]["value"], r["betti_total_interval"]["value"]) for r in rows]
    fig = go.Figure()
    front = pareto_front(pts)
    if len(front) > 1:
        fig.add_trace(go.Scatter(
            x=[pts[i][0] for i in front], y=[pts[i][1] for i in front], mode="lines",
            line={"color": "#999999", "dash": "dot"}, name="Pareto front", hoverinfo="skip",
        ))
    # many points crowd: then only the baseline and the front are labelled in the plot (the
    # legend names every point; colour = family, symbol = member of the family)
    crowded = len(rows) > 6
    seen: dict[str, int] = {}
    for i, (r, (x, y)) in enumerate(zip(rows, pts, strict=True)):
        mi, bi = r["mse_interval"], r["betti_total_interval"]
        colour = _color(r["setting"])
        member = seen.get(colour, 0)
        seen[colour] = member + 1
        label = not crowded or i in front or r["setting"] == "mse"
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text" if label else "markers", name=r["setting"],
            text=[r["setting"]] if label else None,
            textposition="top center", textfont={"size": 11},
            marker={"size": 11, "color": colour,
                    "symbol": "square" if r["setting"] == "mse"
                    else _SYMBOLS[member % len(_SYMBOLS)]},
            error_x={"type": "data", "symmetric": False, "array": [mi["high"] - x],
                     "arrayminus": [x - mi["low"]], "thickness": 1},
            error_y={"type": "data", "symmetric": False, "array": [bi["high"] - y],
                     "arrayminus": [y - bi["low"]], "thickness": 1},
            hovertemplate=(f"{r['setting']}<br>MSE %{{x:.3g}}<br>Betti error %{{y:.3g}}"
                           "<extra></extra>"),
        ))
    n = rows[0].get("n_seeds", "?")
    # ".2g" labels every tick with its value (plotly's default log labels read 20 as "2")
    fig.update_xaxes(type="log", title_text="validation MSE (log)", tickformat=".2g", nticks=8)
    fig.update_yaxes(type="log", title_text="Betti error, total (log)", tickformat=".2g")
    apply_style(
        fig,
        title=title or (f"Betti error against MSE, {data_kind} {dims}D<br><sup>mean over {n} "
                        "seeds, 95 % bootstrap intervals; lower left is better</sup>"),
        width=width, height=height, legend_top=False,
    )
    return fig
