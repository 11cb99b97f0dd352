"""The explorer's 2D panels drawn as PNG images made in the kernel, not as plotly heatmaps.

Measured in JupyterLab + headless Chromium (``dsl-explore bench ui --browser``, 512^2, load
~4.5): one k change took ~1.85 s in the page, of which ~1.35 s went to redrawing ~11,600 SVG
critical-point markers and ~0.1 s to each 512^2 heatmap. plotly.js recomputes and redraws every
trace of a figure on any data update (``restyle``), whatever changed. So the live 2D view:

- draws each panel (target, reconstruction, exact map, DSL map) as a ``layout.images`` entry:
  a PNG ``data:`` URL coloured with the panel's colour axis (:mod:`dsl_explore.plots.raster`;
  the maps as indexed-colour PNGs), upscaled without smoothing to about :data:`PANEL_PX` pixels
  a side; a k change then sends one ``relayout`` (the DSL image, the titles) and no trace data;
- keeps the four heatmap traces (with their roles and values, as :func:`~dsl_explore.plots.
  plot_2d` builds them) but hidden (``visible=False``) and their updates in the kernel
  (:meth:`~dsl_explore.widgets._figure.LiveFigure.keep_in_kernel`), plus one invisible trace
  per colour axis so both colour bars stay;
- above :data:`SVG_MARKERS_UP_TO` critical points, paints the markers into the field images
  (the points the SVG markers would show, as small squares in their kind's colour) and leaves
  the marker traces ``"legendonly"``: a click on a legend entry overlays the hoverable SVG
  markers of that kind (slower updates while shown). Fewer points stay SVG markers as before.

The panels have no value hover (the hidden heatmaps do not hover); the axis ranges are set to
the field's extent. Static export (kaleido) draws the same images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from dsl_explore.plots import style
from dsl_explore.plots.compute import CriticalGroups
from dsl_explore.plots.parts import marker_fields
from dsl_explore.plots.raster import (
    colour_index,
    colour_lut,
    colourise,
    png_data_url,
    stamp,
    upscale,
)
from dsl_explore.plots.update import TraceIndex

__all__ = ["PANEL_PX", "ROLES", "SVG_MARKERS_UP_TO", "MapImages"]

PANEL_PX = 512
"""Images smaller than this are upscaled by an integer factor to about this many pixels."""

SVG_MARKERS_UP_TO = 500
"""Up to this many critical points (both field panels) are drawn as SVG markers; more are
painted into the field images."""

ROLES = ("target", "recon", "exact", "dsl")
"""The panels drawn as images, by the role of their heatmap trace."""

_DRAW_ORDER = ("matched", "changed", "lost", "spurious")  # mismatches on top


class MapImages:
    """The layout images of a 2D explorer figure and how to redraw them.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        Built by :func:`~dsl_explore.plots.image.build_2d` (weighted view); changed in place:
        heatmaps hidden, one layout image per panel, two colour-bar traces appended.
    idx : TraceIndex
        Its traces (:func:`~dsl_explore.plots.update.index_traces` with ``ndim=2``).

    Attributes
    ----------
    slot : dict of str to int
        Role -> index in ``fig.layout.images``.
    burned : bool
        Whether the markers are painted into the field images.
    """

    def __init__(self, fig: go.Figure, idx: TraceIndex) -> None:
        self.idx = idx
        self.slot: dict[str, int] = {}
        self.burned = False
        self._decided: bool | None = None
        self._luts = {"coloraxis": colour_lut(style.FIELD_COLORSCALE),
                      "coloraxis2": colour_lut(style.MAP_COLORSCALE)}
        for role in ROLES:
            tr = fig.data[idx[role]]
            tr.visible = False
            fig.add_layout_image(source="", xref=tr.xaxis or "x", yref=tr.yaxis or "y",
                                 xanchor="left", yanchor="top", sizing="stretch",
                                 layer="below")
            self.slot[role] = len(fig.layout.images) - 1
        for axis in ("coloraxis", "coloraxis2"):
            fig.add_trace(go.Scatter(
                x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                marker={"color": [0.0], "coloraxis": axis}, meta={"role": "colorbar"}))

    @staticmethod
    def _scale(shape: tuple[int, ...]) -> int:
        return max(1, PANEL_PX // max(1, max(shape)))

    def place(self, fig: Any, full_shape: tuple[int, int]) -> None:
        """Span every image and axis over a field of ``full_shape`` (rows, cols)."""
        rows, cols = full_shape
        for i in self.slot.values():
            fig.layout.images[i].update(x=-0.5, y=-0.5, sizex=cols, sizey=rows)
        for name in fig.layout:
            if name.startswith("xaxis"):
                fig.layout[name].update(range=[-0.5, cols - 0.5], autorange=False)
            elif name.startswith("yaxis"):
                fig.layout[name].update(range=[rows - 0.5, -0.5], autorange=False)

    def draw_map(self, fig: Any, role: str, z: np.ndarray) -> None:
        """Redraw the ``"exact"`` or ``"dsl"`` image from display values ``z``, on the range of
        ``coloraxis2``."""
        ax, lut = fig.layout.coloraxis2, self._luts["coloraxis2"]
        idx = colour_index(z, lut.shape[0], cmin=float(ax.cmin or 0.0), cmax=float(ax.cmax))
        fig.layout.images[self.slot[role]].source = png_data_url(
            upscale(idx, self._scale(z.shape)), palette=lut)

    def draw_field(self, fig: Any, role: str, z: np.ndarray, groups: CriticalGroups, *,
                   factor: int, max_markers: int | None) -> None:
        """Redraw the ``"target"`` or ``"recon"`` image from display values ``z`` on the range
        of ``coloraxis``, with the panel's markers painted in when :attr:`burned` (the points
        the SVG markers would show: at most ``max_markers`` per kind, evenly strided; matched
        points one size smaller)."""
        ax = fig.layout.coloraxis
        up = self._scale(z.shape)
        rgb = upscale(colourise(z, self._luts["coloraxis"], cmin=float(ax.cmin),
                                cmax=float(ax.cmax)), up)
        if self.burned:
            kinds = {kind for panel, kind in self.idx.markers if panel == role}
            half = max(1, min(3, up // 2))
            for kind in _DRAW_ORDER:
                if kind not in kinds or kind not in groups.coords:
                    continue
                f = marker_fields(groups, kind, max_markers)  # the points the SVG would draw
                if f["x"][0] is None:
                    continue
                rows = (np.asarray(f["y"], dtype=np.intp) // factor) * up + up // 2
                cols = (np.asarray(f["x"], dtype=np.intp) // factor) * up + up // 2
                stamp(rgb, rows, cols, style.KIND_STYLES[kind].color,
                      half=half - 1 if kind == "matched" else half)
        fig.layout.images[self.slot[role]].source = png_data_url(rgb)

    def set_markers(self, fig: Any, groups: CriticalGroups) -> None:
        """Decide SVG or painted markers for ``groups`` (see :data:`SVG_MARKERS_UP_TO`); the
        marker traces' visibility changes only when the decision does."""
        n = sum(int(groups.coords[kind].shape[0]) for _, kind in self.idx.markers
                if kind in groups.coords)
        burn = n > SVG_MARKERS_UP_TO
        if burn != self._decided:
            for i in self.idx.markers.values():
                fig.data[i].visible = "legendonly" if burn else True
        self.burned = self._decided = burn
