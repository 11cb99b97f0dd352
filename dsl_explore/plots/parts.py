"""Figure parts shared by the figures, the explorer and the dashboard: what a 1D or 2D figure
draws, as plain arrays and strings (no plotly objects).

:func:`~dsl_explore.plots.plot_1d`, :func:`~dsl_explore.plots.plot_2d`, the reconstruction
figure (:mod:`dsl_explore.plots.recon`) and the widgets compute these parts, then hand them to
:func:`~dsl_explore.plots.signal.build_1d` / :func:`~dsl_explore.plots.image.build_2d` to build a
figure, or to :mod:`dsl_explore.plots.update` to refresh one already on screen.

- 1D: :class:`Parts1D` from :func:`parts_1d`; its title (:func:`title_1d`), the DSL trace's name
  (:func:`dsl_name`) and the data of a marker trace (:func:`marker_fields_1d`).
- 2D: :class:`Parts2D` holding display-resolution fields and :class:`MapPanel` maps; the vertex
  maps (:func:`dsl_vertex_map`, :func:`exact_vertex_map`, also of one plane of a volume), their
  downsampling (:func:`field_display`, :func:`map_display`), the two map panels of the weighted
  view (:func:`vertex_map_panels`), the title (:func:`title_2d`), the maps' colour range
  (:func:`map_cmax`) and the data of a marker trace (:func:`marker_fields`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dsl_explore.plots.compute import (
    CriticalGroups,
    dsl_terms,
    exact_edges,
    half_incidence,
    plane_slab,
)
from dsl_explore.plots.traces import block_reduce, fmt, weights_text

__all__ = [
    "MapPanel",
    "Parts1D",
    "Parts2D",
    "dsl_name",
    "dsl_vertex_map",
    "exact_vertex_map",
    "field_display",
    "map_cmax",
    "map_display",
    "marker_fields",
    "marker_fields_1d",
    "parts_1d",
    "title_1d",
    "title_2d",
    "vertex_map_panels",
]

ArrayOrTensor = np.ndarray | torch.Tensor


# --------------------------------------------------------------------------------------------
# 1D


@dataclass
class Parts1D:
    """What the 1D figure draws for one target/reconstruction pair of length ``n``.

    Attributes
    ----------
    target, recon : numpy.ndarray
        ``(n,)`` the two signals.
    groups : CriticalGroups
        Their mismatched critical points.
    sign_target, sign_recon : numpy.ndarray
        ``(n - 1,)`` int8 signs (-1, 0, 1) of the finite differences.
    terms : numpy.ndarray
        ``(n - 1,)`` weighted DSL term per difference, ``w * 0.5 * |s(k D x) - s(k D y)|``.
    exact : numpy.ndarray
        ``(n - 1,)`` weighted exact mismatch per difference (0 or ``w``).
    k, surrogate, weight
        The settings the terms were computed with.
    """

    target: np.ndarray
    recon: np.ndarray
    groups: CriticalGroups
    sign_target: np.ndarray
    sign_recon: np.ndarray
    terms: np.ndarray
    exact: np.ndarray
    k: float
    surrogate: str
    weight: float


def _signs(a: np.ndarray) -> np.ndarray:
    # from comparisons, like the exact count: no rounding in the subtraction
    return (a[1:] > a[:-1]).astype(np.int8) - (a[1:] < a[:-1]).astype(np.int8)


def parts_1d(
    target: np.ndarray,
    recon: np.ndarray,
    *,
    k: float,
    surrogate: str,
    weight: float,
    groups: CriticalGroups,
) -> Parts1D:
    """The parts of the 1D figure of ``target`` and ``recon`` (checked ``(n,)`` float arrays).

    Parameters
    ----------
    target, recon : numpy.ndarray
        ``(n,)`` signals, ``n >= 2`` (as :func:`~dsl_explore.plots.compute.as_field` returns).
    k, surrogate
        Sharpness (> 0) and surrogate name of the DSL terms (checked by the caller).
    weight : float
        The axis weight ``w`` the terms and mismatches are scaled by.
    groups : CriticalGroups
        The pair's mismatched critical points.

    Returns
    -------
    Parts1D

    Examples
    --------
    >>> from dsl_explore.critical import mismatched_critical_points
    >>> from dsl_explore.plots.compute import critical_groups
    >>> y = np.array([0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0])
    >>> g = critical_groups(mismatched_critical_points(x, y))
    >>> p = parts_1d(y, x, k=1000.0, surrogate="tanh", weight=1.0, groups=g)
    >>> p.sign_target.tolist(), p.sign_recon.tolist(), p.exact.tolist()
    ([1, -1], [1, 1], [0.0, 1.0])
    """
    terms = dsl_terms(recon, target, k=k, surrogate=surrogate)[0].double().numpy() * weight
    exact = exact_edges(recon, target)[0].numpy().astype(np.float64) * weight
    return Parts1D(
        target, recon, groups, _signs(target), _signs(recon), terms, exact, k, surrogate, weight
    )


def dsl_name(k: float, surrogate: str) -> str:
    """The legend name of the DSL trace, e.g. ``"DSL term (k=10, tanh)"``.

    Examples
    --------
    >>> dsl_name(10.0, "tanh")
    'DSL term (k=10, tanh)'
    """
    return f"DSL term (k={k:g}, {surrogate})"


def title_1d(p: Parts1D) -> str:
    """The default 1D title: DSL (sum), the exact count and the critical-point counts."""
    c = p.groups.counts()
    w = weights_text(None if p.weight == 1.0 else (p.weight,))
    return (
        f"1D · DSL = {fmt(p.terms.sum())} (sum, k={p.k:g}, {p.surrogate}{w}) · "
        f"exact count = {fmt(p.exact.sum())} · critical points: {c['spurious']} spurious, "
        f"{c['lost']} lost, {c['changed']} changed"
    )


def marker_fields_1d(p: Parts1D, kind: str) -> dict[str, Any]:
    """``x``, ``y``, ``text`` and ``name`` of the 1D marker trace of one ``kind``.

    Lost points are critical in the target only and sit on the target line; the other kinds
    sit on the reconstruction. A kind without points gets ``[None]`` (an empty trace would drop
    out of the legend).

    Examples
    --------
    >>> from dsl_explore.critical import mismatched_critical_points
    >>> from dsl_explore.plots.compute import critical_groups
    >>> y = np.array([0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0])
    >>> g = critical_groups(mismatched_critical_points(x, y))
    >>> p = parts_1d(y, x, k=10.0, surrogate="tanh", weight=1.0, groups=g)
    >>> f = marker_fields_1d(p, "lost")
    >>> f["x"].tolist(), f["y"].tolist(), f["name"]
    ([1], [1.0], 'lost (1)')
    """
    coords = p.groups.coords[kind]
    i = coords[:, 0] if coords.size else np.zeros(0, dtype=np.int64)
    src = p.target if kind == "lost" else p.recon
    return {
        # int32: plotly's widget serialiser sends int64 arrays as lists, int32 ones as binary
        "x": i.astype(np.int32) if i.size else [None],
        "y": src[i] if i.size else [None],
        "text": p.groups.labels[kind],
        "name": f"{kind} ({i.shape[0]})",
    }


# --------------------------------------------------------------------------------------------
# 2D


@dataclass
class MapPanel:
    """One map panel of the 2D figure: ``z`` at display resolution with its index coordinates.

    Attributes
    ----------
    role : {"exact", "dsl"}
        Exact mismatches or DSL terms.
    axis : int or None
        None: the weighted vertex map; ``j``: the differences along axis ``j``.
    title : str
        The subplot title.
    z : numpy.ndarray
        ``(rows, cols)`` values.
    x, y : numpy.ndarray
        ``(cols,)`` and ``(rows,)`` coordinates in full-resolution index units.
    """

    role: str
    axis: int | None
    title: str
    z: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass
class Parts2D:
    """What the 2D figure draws: the two fields, their critical points and the map panels.

    Attributes
    ----------
    target, recon : numpy.ndarray
        ``(rows, cols)`` fields at display resolution (block means when ``factor > 1``).
    x, y : numpy.ndarray
        Column and row coordinates of the field pixels (full-resolution index units).
    groups : CriticalGroups
        Mismatched critical points, at full-resolution coordinates.
    maps : list of MapPanel
        Weighted view: ``[exact, dsl]``; per-axis view: one per role and axis.
    axis_names : tuple of str
        Names of the row and column axes (axis titles).
    title : str
        The figure title.
    factor : int
        The downsampling factor (1: full resolution).
    max_markers : int or None
        At most this many markers per kind and panel.
    extra : dict
        Free room for callers.
    """

    target: np.ndarray
    recon: np.ndarray
    x: np.ndarray
    y: np.ndarray
    groups: CriticalGroups
    maps: list[MapPanel]
    axis_names: tuple[str, str]
    title: str
    factor: int = 1
    max_markers: int | None = 5000
    extra: dict[str, Any] = field(default_factory=dict)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def field_display(a: ArrayOrTensor, factor: int) -> np.ndarray:
    """A 2D field at display resolution: float32 block means of ``factor x factor`` blocks.

    Examples
    --------
    >>> field_display(np.arange(4.0).reshape(2, 2), 2).tolist()
    [[1.5]]
    """
    t = torch.as_tensor(a)
    return _np(block_reduce(t.float(), factor, "mean")).astype(np.float32)


def map_display(t: torch.Tensor, factor: int) -> np.ndarray:
    """A 2D map at display resolution: float32 block maxima (isolated mismatches stay visible).

    Examples
    --------
    >>> map_display(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), 2).tolist()
    [[1.0]]
    """
    return _np(block_reduce(t.float(), factor, "max")).astype(np.float32)


def _on_plane(
    x: torch.Tensor, y: torch.Tensor, plane: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    if plane is None:
        return x, y, None
    xs, pos = plane_slab(x, *plane)
    ys, _ = plane_slab(y, *plane)
    return xs, ys, pos


def dsl_vertex_map(
    recon: ArrayOrTensor,
    target: ArrayOrTensor,
    *,
    k: float,
    surrogate: str,
    weights: Sequence[float] | None,
    plane: tuple[int, int] | None = None,
) -> torch.Tensor:
    r"""The DSL contribution per vertex: each difference gives half its term to each end.

    :math:`m[v] = \sum_a w_a (\tfrac12 e_a[v - e_a] + \tfrac12 e_a[v])` with
    :math:`e_a = \tfrac12 |s(k D_a x) - s(k D_a y)|` (see
    :func:`~dsl_explore.plots.compute.half_incidence`); it sums to DSL with
    ``reduction="sum"``.

    Parameters
    ----------
    recon, target : numpy.ndarray or torch.Tensor
        Fields of one shape (2D, or 3D with ``plane``).
    k, surrogate, weights
        The DSL settings (checked by the caller).
    plane : (axis, index), optional
        For a volume: the map of that plane only, computed on the 3-plane slab around it.

    Returns
    -------
    torch.Tensor
        Of the field's shape (of the plane's shape with ``plane``).

    Examples
    --------
    >>> y = torch.tensor([[0.0, 1.0], [1.0, 2.0]]); x = y.clone(); x[0, 0] = 1.5
    >>> round(float(dsl_vertex_map(x, y, k=1000.0, surrogate="tanh", weights=None).sum()), 3)
    2.0
    """
    x, y, pos = _on_plane(torch.as_tensor(recon), torch.as_tensor(target), plane)
    d = half_incidence(dsl_terms(x, y, k=k, surrogate=surrogate), tuple(x.shape), weights=weights)
    return d if plane is None or pos is None else d.select(plane[0], pos)


def exact_vertex_map(
    recon: ArrayOrTensor,
    target: ArrayOrTensor,
    *,
    weights: Sequence[float] | None,
    plane: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The exact sign mismatches per vertex, half of each to either end (see
    :func:`dsl_vertex_map`); sums to the weighted exact count.

    Examples
    --------
    >>> y = torch.tensor([[0.0, 1.0], [1.0, 2.0]]); x = y.clone(); x[0, 0] = 1.5
    >>> exact_vertex_map(x, y, weights=None).tolist()
    [[1.0, 0.5], [0.5, 0.0]]
    """
    x, y, pos = _on_plane(torch.as_tensor(recon), torch.as_tensor(target), plane)
    e = half_incidence(exact_edges(x, y), tuple(x.shape), weights=weights)
    return e if plane is None or pos is None else e.select(plane[0], pos)


def vertex_map_panels(
    exact_map: torch.Tensor,
    dsl_map: torch.Tensor,
    *,
    factor: int,
    x: np.ndarray,
    y: np.ndarray,
    dsl_title: str,
) -> list[MapPanel]:
    """The two panels of the weighted view, ``[exact, dsl]``, at display resolution.

    When ``factor > 1`` both titles say so (``" (shown 1/2: block max)"``).

    Examples
    --------
    >>> m = torch.zeros(2, 2)
    >>> [p.title for p in vertex_map_panels(m, m, factor=1, x=np.arange(2.0), y=np.arange(2.0),
    ...                                     dsl_title="DSL")]
    ['exact sign mismatches per vertex', 'DSL']
    """
    note = f" (shown 1/{factor}: block max)" if factor > 1 else ""
    return [
        MapPanel("exact", None, "exact sign mismatches per vertex" + note,
                 map_display(exact_map, factor), x, y),
        MapPanel("dsl", None, dsl_title + note, map_display(dsl_map, factor), x, y),
    ]


def title_2d(exact_sum: float, dsl_sum: float, groups: CriticalGroups, *, k: float,
             surrogate: str, weights: Sequence[float] | None, prefix: str = "2D") -> str:
    """The default 2D title: DSL (sum), the exact count and the critical-point counts.

    Examples
    --------
    >>> from dsl_explore.plots.compute import CriticalGroups
    >>> g = CriticalGroups({k: np.zeros((0, 2), dtype=np.int64) for k in
    ...                     ("matched", "spurious", "lost", "changed")}, {})
    >>> title_2d(2.0, 1.5, g, k=10.0, surrogate="tanh", weights=None)
    '2D · DSL = 1.5 (sum, k=10, tanh) · exact count = 2 · critical points: 0 spurious, 0 lost, 0 changed'
    """  # noqa: E501
    c = groups.counts()
    return (
        f"{prefix} · DSL = {fmt(dsl_sum)} (sum, k={k:g}, {surrogate}{weights_text(weights)}) · "
        f"exact count = {fmt(exact_sum)} · critical points: {c['spurious']} spurious, "
        f"{c['lost']} lost, {c['changed']} changed"
    )


def map_cmax(maps: Sequence[MapPanel]) -> float:
    """The top of the maps' shared colour axis: their largest value, or 1 when all are 0.

    Examples
    --------
    >>> p = MapPanel("dsl", None, "", np.array([[0.0, 0.25]]), np.arange(2.0), np.arange(1.0))
    >>> map_cmax([p]), map_cmax([MapPanel("dsl", None, "", 0 * p.z, p.x, p.y)])
    (0.25, 1.0)
    """
    top = max(float(np.max(m.z)) if m.z.size else 0.0 for m in maps)
    return top if top > 0 else 1.0


def _subsample(n: int, cap: int | None) -> np.ndarray:
    if cap is None or n <= cap:
        return np.arange(n)
    return np.linspace(0, n - 1, cap).round().astype(np.int64)


def marker_fields(groups: CriticalGroups, kind: str, max_markers: int | None) -> dict[str, Any]:
    """``x``, ``y``, ``text`` and ``name`` of one kind's 2D marker trace.

    At most ``max_markers`` points, evenly strided (None: all); the name gives the total and,
    when fewer are drawn, how many. ``x`` is the column, ``y`` the row.

    Examples
    --------
    >>> from dsl_explore.plots.compute import CriticalGroups
    >>> g = CriticalGroups({"lost": np.array([[0, 1], [2, 3], [4, 5]])},
    ...                    {"lost": ["MINIMUM", "MAXIMUM", "SADDLE"]})
    >>> f = marker_fields(g, "lost", 2)
    >>> f["x"].tolist(), f["y"].tolist(), f["name"]
    ([1, 5], [0, 4], 'lost (3, 2 drawn)')
    """
    c = groups.coords[kind]
    keep = _subsample(c.shape[0], max_markers)
    shown = f", {keep.shape[0]} drawn" if keep.shape[0] < c.shape[0] else ""
    c = c[keep]
    labels = groups.labels[kind]
    return {
        # [None] rather than []: an empty trace would drop out of the legend
        # int32: plotly's widget serialiser sends int64 arrays as lists, int32 ones as binary
        "x": c[:, 1].astype(np.int32) if c.size else [None],
        "y": c[:, 0].astype(np.int32) if c.size else [None],
        "text": [labels[i] for i in keep],
        "name": f"{kind} ({groups.coords[kind].shape[0]}{shown})",
    }
