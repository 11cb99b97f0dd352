"""The reconstruction figure of one sample (1D, 2D or a 3D slice), shared by the exported run
figures (:func:`dsl_explore.run_figures.reconstruction_figure`) and the live
:class:`~dsl_explore.widgets.TrainingDashboard`, so a live view and its exported file look the
same.

- :func:`recon_parts` computes what the figure shows (:class:`ReconParts`, no plotly objects);
- :func:`build_recon` builds the figure from it (1D: the layout of
  :func:`~dsl_explore.plots.plot_1d`; 2D and 3D slices: that of :func:`~dsl_explore.plots.plot_2d`
  with the weighted maps).

The dashboard computes new parts on its refresher thread and writes them into the figure on
screen with :mod:`dsl_explore.plots.update`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dsl_explore._validation import check_k, resolve_weights
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import mismatched_critical_points
from dsl_explore.loss import directional_sign_loss
from dsl_explore.plots.compute import as_field, check_same_shape, critical_groups
from dsl_explore.plots.image import build_2d
from dsl_explore.plots.parts import (
    Parts1D,
    Parts2D,
    dsl_vertex_map,
    exact_vertex_map,
    field_display,
    parts_1d,
    title_1d,
    title_2d,
    vertex_map_panels,
)
from dsl_explore.plots.signal import build_1d
from dsl_explore.plots.traces import block_coords, block_factor

__all__ = ["ReconParts", "build_recon", "recon_parts"]


@dataclass
class ReconParts:
    """What the reconstruction figure draws: 1D parts or 2D (or 3D-slice) parts, and a title.

    Attributes
    ----------
    ndim : int
        Spatial dimensions of the sample (1, 2 or 3).
    parts : Parts1D or Parts2D
        1D parts, or the 2D parts of the sample (2D) or of its slice (3D).
    title : str
        The figure title (the prefix line, then DSL, the exact count and the counts).
    slice_index : int or None
        3D: the axis-0 index shown.
    counts : dict of str to int
        Critical points of the whole sample, by kind.
    """

    ndim: int
    parts: Parts1D | Parts2D
    title: str
    slice_index: int | None
    counts: dict[str, int]


def _squeeze_leading(a: Any) -> Any:
    """Drop leading axes of length 1 (batch, channel) while more than one axis is left."""
    while getattr(a, "ndim", 0) > 1 and a.shape[0] == 1:
        a = a[0]
    return a


def recon_parts(
    target: Any,
    recon: Any,
    *,
    k: float,
    weights: Sequence[float] | None,
    surrogate: str,
    slice_index: int | None = None,
    title_prefix: str | None = None,
    max_display: int | None = 512,
    max_markers: int | None = 5000,
) -> ReconParts:
    """Compute everything the reconstruction figure shows (no plotly objects).

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        A 1-3D field each, of one shape; leading axes of length 1 (batch, channel) are dropped.
    k, weights, surrogate
        The DSL settings of the maps (e.g. a training run's live ones).
    slice_index : int, optional
        3D only: the axis-0 slice shown (default: the middle).
    title_prefix : str, optional
        The first line of the title.
    max_display, max_markers
        As in :func:`dsl_explore.plots.plot_2d`.

    Returns
    -------
    ReconParts

    Raises
    ------
    ValueError
        Shapes that differ or are not 1-3D, a bad ``k`` or ``weights``, or a ``slice_index``
        outside the volume.

    Examples
    --------
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    >>> p = recon_parts(y[None, None], x[None, None], k=50.0, weights=None, surrogate="tanh")
    >>> p.ndim, p.counts["lost"], p.counts["changed"]
    (1, 2, 1)
    """
    t = as_field(_squeeze_leading(target), "target", (1, 2, 3))
    r = as_field(_squeeze_leading(recon), "recon", (1, 2, 3))
    check_same_shape(t, r)
    nd = t.ndim
    k = check_k(k)
    w = resolve_weights(weights, nd)
    head = f"{title_prefix}<br>" if title_prefix else ""
    groups = critical_groups(mismatched_critical_points(r, t))
    counts = groups.counts()
    if nd == 1:
        p1 = parts_1d(t, r, k=k, surrogate=surrogate, weight=1.0 if w is None else w[0],
                      groups=groups)
        return ReconParts(1, p1, head + title_1d(p1), None, counts)

    axes = tuple(range(nd))
    dsl_sum = float(directional_sign_loss(r, t, k=k, weights=w, dims=axes, surrogate=surrogate,
                                          reduction="sum"))
    exact_sum = float(sign_mismatch_count(r, t, dims=axes, weights=w))
    if nd == 2:
        x2, y2, g2, plane, names = r, t, groups, None, ("axis 0", "axis 1")
        prefix = "2D"
    else:
        n0 = t.shape[0]
        idx = n0 // 2 if slice_index is None else int(slice_index)
        if not 0 <= idx < n0:
            raise ValueError(f"slice_index must be in [0, {n0 - 1}], got {slice_index!r}")
        slice_index = idx
        x2, y2 = r[idx], t[idx]
        g2 = groups.select_plane(0, idx)
        plane, names = (0, idx), ("axis 1", "axis 2")
        c2 = g2.counts()
        line1 = (f"slice axis 0 = {idx} (on it: {c2['spurious']} spurious, {c2['lost']} lost, "
                 f"{c2['changed']} changed)")
        head = (f"{title_prefix} · " if title_prefix else "") + line1 + "<br>"
        prefix = "3D volume"
    factor = block_factor(x2.shape, max_display)
    xs, ys = block_coords(x2.shape[1], factor), block_coords(x2.shape[0], factor)
    tx, ty = torch.as_tensor(np.ascontiguousarray(r)), torch.as_tensor(np.ascontiguousarray(t))
    exact_map = exact_vertex_map(tx, ty, weights=w, plane=plane)
    dsl_map = dsl_vertex_map(tx.float(), ty.float(), k=k, surrogate=surrogate, weights=w,
                             plane=plane)
    maps = vertex_map_panels(exact_map, dsl_map, factor=factor, x=xs, y=ys,
                             dsl_title=f"DSL contribution per vertex (k={k:.3g}, {surrogate})")
    title = head + title_2d(exact_sum, dsl_sum, groups, k=k, surrogate=surrogate, weights=w,
                            prefix=prefix)
    p2 = Parts2D(
        target=field_display(y2, factor), recon=field_display(x2, factor), x=xs, y=ys,
        groups=g2, maps=maps, axis_names=names, title=title, factor=factor,
        max_markers=max_markers,
    )
    return ReconParts(nd, p2, title, slice_index, counts)


def build_recon(p: ReconParts, *, width: int | None = None, height: int | None = None) -> Any:
    """The reconstruction figure of ``p`` (default size 1100 x 780 in 1D, 1100 x 1000 else).

    A title of several lines gets the room it needs above the panels.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces carry ``meta`` roles like :func:`~dsl_explore.plots.plot_1d` /
        :func:`~dsl_explore.plots.plot_2d`.

    Examples
    --------
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    >>> p = recon_parts(y, x, k=50.0, weights=None, surrogate="tanh", title_prefix="demo")
    >>> build_recon(p).layout.title.text.split("<br>")[0]
    'demo'
    """
    extra = 26 * p.title.count("<br>")  # room for a title of several lines
    if isinstance(p.parts, Parts1D):
        fig = build_1d(p.parts, title=p.title, width=width or 1100, height=(height or 780))
    else:
        fig = build_2d(p.parts, width=width or 1100, height=height or 1000)
    if extra:  # plotly anchors a multi-line title's top too high: move it down
        h = fig.layout.height + extra
        fig.update_layout(margin_t=fig.layout.margin.t + extra, height=h,
                          title_y=1 - (14 + 22 * p.title.count("<br>")) / h)
    return fig
