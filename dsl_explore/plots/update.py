"""In-place updates of a 1D or 2D figure on screen from new parts (same shape, same traces).

The widgets build a figure once (:func:`~dsl_explore.plots.signal.build_1d`,
:func:`~dsl_explore.plots.image.build_2d`, wrapped in a ``FigureWidget``), find the traces an
update writes with :func:`index_traces`, then on every change write only the new data with
:func:`update_1d` / :func:`update_2d`, inside one ``batch_update`` (one message per figure).
Heatmap ``z`` values go out as typed arrays (binary on the wire); properties whose value did not
change are not sent (plotly compares before sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dsl_explore.plots import style
from dsl_explore.plots.parts import (
    Parts1D,
    Parts2D,
    dsl_name,
    map_cmax,
    marker_fields,
    marker_fields_1d,
)
from dsl_explore.plots.traces import trace_index, typed_array

__all__ = ["TraceIndex", "index_traces", "update_1d", "update_2d"]


@dataclass(frozen=True)
class TraceIndex:
    """Where the updated traces sit in a figure of :func:`~dsl_explore.plots.signal.build_1d` or
    :func:`~dsl_explore.plots.image.build_2d`.

    Attributes
    ----------
    ndim : int
        1 (the 1D figure) or 2 (the 2D figure, also a 3D slice).
    traces : dict of str to int
        ``"target"``, ``"recon"``, ``"dsl"``, ``"exact"`` (and ``"sign"`` in 1D) -> index in
        ``fig.data``.
    markers : dict
        The critical-point traces: 1D ``kind -> index``, 2D ``(panel, kind) -> index``.
    dsl_title : int or None
        2D: the index in ``fig.layout.annotations`` of the DSL map's subplot title.
    """

    ndim: int
    traces: dict[str, int]
    markers: dict[Any, int]
    dsl_title: int | None = None

    def __getitem__(self, role: str) -> int:
        return self.traces[role]


def index_traces(fig: Any, ndim: int) -> TraceIndex:
    """Find the traces :func:`update_1d` (``ndim=1``) or :func:`update_2d` (2) write.

    Raises
    ------
    ValueError
        If ``ndim`` is not 1 or 2.
    LookupError
        If a role is missing or not unique (the figure was not built by ``build_1d/2d``).

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_1d
    >>> idx = index_traces(plot_1d(np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0])), 1)
    >>> sorted(idx.traces), sorted(idx.markers)
    (['dsl', 'exact', 'recon', 'sign', 'target'], ['changed', 'lost', 'matched', 'spurious'])
    """
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    markers: dict[Any, int] = {}
    for i, tr in enumerate(fig.data):
        m = tr.meta if isinstance(tr.meta, dict) else {}
        if m.get("role") == "critical":
            markers[m["kind"] if ndim == 1 else (m["panel"], m["kind"])] = i
    if ndim == 1:
        traces = {
            "target": trace_index(fig, role="line", panel="target"),
            "recon": trace_index(fig, role="line", panel="recon"),
            "sign": trace_index(fig, role="sign"),
            "dsl": trace_index(fig, role="dsl"),
            "exact": trace_index(fig, role="exact"),
        }
        return TraceIndex(1, traces, markers)
    traces = {
        "target": trace_index(fig, role="field", panel="target"),
        "recon": trace_index(fig, role="field", panel="recon"),
        "dsl": trace_index(fig, role="dsl"),
        "exact": trace_index(fig, role="exact"),
    }
    texts = [a.text or "" for a in fig.layout.annotations]
    dsl_title = next(i for i, t in enumerate(texts) if t.startswith("DSL "))
    return TraceIndex(2, traces, markers, dsl_title)


def update_1d(fig: Any, idx: TraceIndex, p: Parts1D, *, title: str) -> None:
    """Write new 1D parts into ``fig``: lines, sign strips, DSL and exact terms, the DSL trace's
    name, the terms' y range, the markers and the title (one ``batch_update``)."""
    d = fig.data
    with fig.batch_update():
        d[idx["target"]].y = p.target
        d[idx["recon"]].y = p.recon
        d[idx["sign"]].z = typed_array(np.stack([p.sign_target, p.sign_recon]))
        d[idx["dsl"]].y = p.terms
        d[idx["dsl"]].name = dsl_name(p.k, p.surrogate)
        d[idx["exact"]].y = p.exact
        fig.layout.yaxis3.range = [0, max(1.0, p.weight) * 1.05]
        for kind, i in idx.markers.items():
            new = marker_fields_1d(p, kind)
            d[i].update(x=new["x"], y=new["y"], text=new["text"], name=new["name"])
        fig.layout.title.text = style.wrap_title(title, fig.layout.width or 900)


def update_2d(
    fig: Any,
    idx: TraceIndex,
    p: Parts2D,
    *,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> None:
    """Write new 2D parts into ``fig``: fields, maps, markers, colour ranges and titles.

    Parameters
    ----------
    fig : plotly figure
        Built by :func:`~dsl_explore.plots.image.build_2d` from parts of the same shape.
    idx : TraceIndex
        From :func:`index_traces` (``ndim=2``).
    p : Parts2D
        The new parts (the weighted view: ``p.maps == [exact, dsl]``).
    title : str, optional
        Default ``p.title``.
    value_range : (float, float), optional
        The fields' colour range; default the range of the displayed fields.
    """
    d = fig.data
    if value_range is None:
        both = np.concatenate([p.target.ravel(), p.recon.ravel()])
        value_range = (float(both.min()), float(both.max()))
    with fig.batch_update():
        d[idx["target"]].z = typed_array(p.target)
        d[idx["recon"]].z = typed_array(p.recon)
        d[idx["exact"]].z = typed_array(p.maps[0].z)
        d[idx["dsl"]].z = typed_array(p.maps[1].z)
        for (_panel, kind), i in idx.markers.items():
            d[i].update(**marker_fields(p.groups, kind, p.max_markers))
        fig.layout.coloraxis.cmin = value_range[0]
        fig.layout.coloraxis.cmax = value_range[1]
        fig.layout.coloraxis2.cmax = map_cmax(p.maps)
        if idx.dsl_title is not None:
            fig.layout.annotations[idx.dsl_title].text = p.maps[1].title
        text = p.title if title is None else title
        fig.layout.title.text = style.wrap_title(text, fig.layout.width or 900)
