"""The explorer's views, one class per view: the 1D lines (:class:`LineView`), the 2D heatmaps
of a field or of one slice of a volume (:class:`HeatmapView`), and the rotatable 3D view
(:class:`VolumeView`).

A view builds its ``FigureWidget`` once and then updates it in place inside ``batch_update``:
:meth:`update_loss` after k, surrogate or weight changes (the DSL terms/map, with
``exact=True`` also the exact ones), :meth:`update_sample` after a sample or slice change
(everything). Views read the parameters from :class:`~dsl_explore.widgets._explore_controls.
ExploreControls` and the numbers from :class:`~dsl_explore.widgets._sample.ExploreModel`; they
never change either.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import torch

from dsl_explore.plots import style
from dsl_explore.plots.compute import CriticalGroups
from dsl_explore.plots.image import build_2d
from dsl_explore.plots.parts import (
    Parts1D,
    Parts2D,
    dsl_name,
    dsl_vertex_map,
    exact_vertex_map,
    field_display,
    map_display,
    parts_1d,
    vertex_map_panels,
)
from dsl_explore.plots.signal import build_1d
from dsl_explore.plots.traces import block_coords, block_factor, heatmaps_to_typed, typed_array
from dsl_explore.plots.update import index_traces, update_1d, update_2d
from dsl_explore.plots.volume import plot_volume_plotly
from dsl_explore.widgets._explore_controls import ExploreControls
from dsl_explore.widgets._figure import LiveFigure
from dsl_explore.widgets._map_images import ROLES, MapImages
from dsl_explore.widgets._sample import ExploreModel

__all__ = [
    "FigureArea",
    "HeatmapView",
    "LineView",
    "VolumeView",
    "export_stem",
    "figure_title",
    "readout_value",
]


def figure_title(controls: ExploreControls, model: ExploreModel) -> str:
    """The title of the 1D/2D figure: what is shown, DSL (sum), exact count, critical points."""
    weights = controls.weights
    w = "" if all(v == 1.0 for v in weights) else (
        ", w=(" + ", ".join(f"{v:g}" for v in weights) + ")")
    nd = model.ndim
    head = f"{nd}D"
    if model.data.sample_shape:
        head += f" · sample {model.data.sample_index(controls.sample)}"
    plane = controls.slice
    if plane is not None:
        head += f" · slice axis {plane[0]} = {plane[1]}"
    groups = model.cur.groups
    g = (groups if plane is None else groups.select_plane(*plane)).counts()
    where = "on this slice" if plane is not None else "critical points"
    return style.wrap_title(  # plotly does not wrap: a long title is cut on both sides
        f"{head} · DSL = {model.loss_sum:.4g} (sum, k={controls.k:.3g}, {controls.surrogate}{w})"
        f" · exact count = {model.cur.count}"
        + ("" if not w else f" (weighted {model.count_weighted:.4g})")
        + f" · {where}: {g['spurious']} spurious, "
        f"{g['lost']} lost, {g['changed']} changed",
        1100,
    )


def export_stem(controls: ExploreControls, model: ExploreModel) -> str:
    """The file stem of the figure shown, e.g. ``explore_3d_sample2_axis0_slice4``."""
    stem = f"explore_{model.ndim}d"
    if model.data.sample_shape:
        stem += f"_sample{controls.sample}"
    plane = controls.slice
    if plane is not None:
        stem += "_volume" if controls.mode == "3D" else f"_axis{plane[0]}_slice{plane[1]}"
    return stem


def _kind_text_color(kind: str) -> str:
    return "#8A7E00" if kind == "changed" else style.KIND_STYLES[kind].color


def readout_value(st: dict[str, Any], model: ExploreModel) -> str:
    """The readout's HTML from the explorer's ``state()``: DSL, exact count, the critical-point
    counts of the whole sample, and which sample and slice are shown."""
    counts = model.cur.groups.counts()
    where = ""
    if model.data.sample_shape:
        where += f"sample {st['sample']} of {model.n_samples} (index {st['sample_index']})"
    if st["slice"] is not None and st["mode"] == "slices":
        where += (" · " if where else "") + f"slice axis {st['slice'][0]} = {st['slice'][1]}"
    w = ", ".join(f"{v:g}" for v in st["weights"])
    kinds = " · ".join(
        f'<span style="color:{_kind_text_color(kind)}"><b>{counts[kind]}</b> {kind}</span>'
        for kind in ("spurious", "lost", "changed", "matched")
    )
    return (
        '<div style="line-height:1.6">'
        f"<b>DSL</b> (k={st['k']:.6g}, {st['surrogate']}, w=({w})): "
        f"mean <b>{st['loss']:.6g}</b> · sum <b>{st['loss_sum']:.6g}</b>"
        " &nbsp;│&nbsp; "
        f"<b>exact</b>: rate {st['count_rate']:.6g} · count <b>{st['count']}</b> of "
        f"{st['n_differences']} differences · weighted {st['count_weighted']:.6g}<br>"
        f"<b>critical points</b> (whole sample): {kinds}"
        + (f" &nbsp;│&nbsp; {where}" if where else "")
        + "</div>"
    )


class LineView:
    """The 1D view: :func:`~dsl_explore.plots.plot_1d`'s figure, updated in place."""

    def __init__(self, controls: ExploreControls, model: ExploreModel) -> None:
        self.controls, self.model = controls, model
        fig = build_1d(self.parts(), title=figure_title(controls, model), width=1100, height=780)
        self.figure = LiveFigure(heatmaps_to_typed(fig))
        self.idx = index_traces(self.figure, 1)

    def parts(self) -> Parts1D:
        c, ctl = self.model.cur, self.controls
        return parts_1d(c.y.double().numpy(), c.x.double().numpy(), k=ctl.k,
                        surrogate=ctl.surrogate, weight=ctl.weights[0], groups=c.groups)

    def update_loss(self, *, exact: bool) -> None:
        p, fig, idx = self.parts(), self.figure, self.idx
        with fig.batch_update():
            fig.data[idx["dsl"]].y = p.terms
            fig.data[idx["dsl"]].name = dsl_name(p.k, p.surrogate)
            if exact:
                fig.data[idx["exact"]].y = p.exact
                fig.layout.yaxis3.range = [0, max(1.0, p.weight) * 1.05]
            fig.layout.title.text = figure_title(self.controls, self.model)

    def update_sample(self) -> None:
        update_1d(self.figure, self.idx, self.parts(),
                  title=figure_title(self.controls, self.model))


class HeatmapView:
    """The 2D view of a field, or of the current slice of a volume: the weighted maps of
    :func:`~dsl_explore.plots.plot_2d`, downsampled above ``max_display``, each panel drawn as
    a PNG layout image over its hidden heatmap (:class:`~dsl_explore.widgets._map_images.
    MapImages`): a k change sends only the new DSL image and the titles."""

    def __init__(self, controls: ExploreControls, model: ExploreModel, *,
                 max_display: int | None, max_markers: int | None) -> None:
        self.controls, self.model = controls, model
        self.max_display, self.max_markers = max_display, max_markers
        parts = self.parts()
        self.exact_max = float(parts.maps[0].z.max()) if parts.maps[0].z.size else 0.0
        fig = heatmaps_to_typed(build_2d(parts, width=1100, height=1000))
        self.idx = index_traces(fig, 2)
        self.images = MapImages(fig, self.idx)
        self._draw_images(fig, parts)
        # the maps are drawn as images: their heatmap traces stay in the kernel
        self.figure = LiveFigure(fig, kernel_only=[self.idx[role] for role in ROLES])

    def fields(self) -> tuple[torch.Tensor, ...]:
        """(x, y, x32, y32) of the view: the sample, or in 3D its current slice."""
        c, plane = self.model.cur, self.controls.slice
        if plane is None:
            return c.x, c.y, c.x32, c.y32
        return tuple(t.select(*plane) for t in (c.x, c.y, c.x32, c.y32))

    def groups(self) -> CriticalGroups:
        plane = self.controls.slice
        groups = self.model.cur.groups
        return groups if plane is None else groups.select_plane(*plane)

    def dsl_map(self) -> torch.Tensor:
        c, ctl = self.model.cur, self.controls
        return dsl_vertex_map(c.x32, c.y32, k=ctl.k, surrogate=ctl.surrogate,
                              weights=ctl.weights, plane=ctl.slice)

    def exact_map(self) -> torch.Tensor:
        c, ctl = self.model.cur, self.controls
        return exact_vertex_map(c.x, c.y, weights=ctl.weights, plane=ctl.slice)

    def dsl_title(self) -> str:
        return f"DSL contribution per vertex (k={self.controls.k:.3g}, {self.controls.surrogate})"

    def parts(self) -> Parts2D:
        x, y, _, _ = self.fields()
        shape = tuple(x.shape)
        factor = block_factor(shape, self.max_display)
        xs, ys = block_coords(shape[1], factor), block_coords(shape[0], factor)
        maps = vertex_map_panels(self.exact_map(), self.dsl_map(), factor=factor, x=xs, y=ys,
                                 dsl_title=self.dsl_title())
        plane = self.controls.slice
        names = tuple(f"axis {a}" for a in range(self.model.ndim)
                      if a != (plane or (-1,))[0])
        return Parts2D(
            target=field_display(y, factor), recon=field_display(x, factor), x=xs, y=ys,
            groups=self.groups(), maps=maps, axis_names=names[:2],  # type: ignore[arg-type]
            title=figure_title(self.controls, self.model), factor=factor,
            max_markers=self.max_markers,
        )

    def update_loss(self, *, exact: bool) -> None:
        fig, idx = self.figure, self.idx
        factor = block_factor(tuple(self.fields()[0].shape), self.max_display)
        dsl = map_display(self.dsl_map(), factor)
        ex = map_display(self.exact_map(), factor) if exact else None
        if ex is not None:
            self.exact_max = float(ex.max()) if ex.size else 0.0
        top = max(self.exact_max, float(dsl.max()) if dsl.size else 0.0)
        with fig.batch_update():
            fig.data[idx["dsl"]].z = typed_array(dsl)
            if ex is not None:
                fig.data[idx["exact"]].z = typed_array(ex)
                self.exact_z = ex
            cmax = top if top > 0 else 1.0
            rescaled = fig.layout.coloraxis2.cmax != cmax
            fig.layout.coloraxis2.cmax = cmax
            self.images.draw_map(fig, "dsl", dsl)
            if ex is not None or rescaled:
                self.images.draw_map(fig, "exact", self.exact_z)
            note = f" (shown 1/{factor}: block max)" if factor > 1 else ""
            assert idx.dsl_title is not None
            fig.layout.annotations[idx.dsl_title].text = self.dsl_title() + note
            fig.layout.title.text = figure_title(self.controls, self.model)

    def update_sample(self) -> None:
        parts = self.parts()
        ez = parts.maps[0].z
        self.exact_max = float(ez.max()) if ez.size else 0.0
        c = self.model.cur
        with self.figure.batch_update():
            update_2d(self.figure, self.idx, parts, value_range=(c.vmin, c.vmax))
            self._draw_images(self.figure, parts)

    def _draw_images(self, fig: Any, parts: Parts2D) -> None:
        """All four panel images (and their extent) from ``parts``, on ``fig``'s colour axes."""
        self.exact_z = parts.maps[0].z
        self.images.set_markers(fig, parts.groups)
        self.images.place(fig, tuple(self.fields()[0].shape))  # type: ignore[arg-type]
        for role, z in (("target", parts.target), ("recon", parts.recon)):
            self.images.draw_field(fig, role, z, parts.groups, factor=parts.factor,
                                   max_markers=parts.max_markers)
        self.images.draw_map(fig, "exact", parts.maps[0].z)
        self.images.draw_map(fig, "dsl", parts.maps[1].z)


class VolumeView:
    """The rotatable 3D view (:func:`~dsl_explore.plots.plot_volume_plotly`), rebuilt only when
    shown after a sample change; the two scenes' cameras move together."""

    def __init__(self, controls: ExploreControls, model: ExploreModel, *, max_size: int,
                 max_markers: int | None) -> None:
        self.controls, self.model = controls, model
        self.max_size, self.max_markers = max_size, max_markers
        self.figure: go.FigureWidget | None = None
        self.stale = True

    def get(self) -> go.FigureWidget:
        """The figure for the current sample (built, or refreshed when stale)."""
        c = self.model.cur
        fig = plot_volume_plotly(
            c.y32.numpy(), c.x32.numpy(), max_size=self.max_size, mismatch=c.mismatch,
            max_markers=self.max_markers,
        )
        data = self.model.data
        sub = (f"sample {data.sample_index(self.controls.sample)} · "
               if data.sample_shape else "")
        fig.layout.title.text = sub + fig.layout.title.text
        if self.figure is None:
            self.figure = LiveFigure(fig)
            self.figure.layout.scene.on_change(self._sync_camera, "camera")
        elif self.stale:
            with self.figure.batch_update():
                for i, tr in enumerate(fig.data):
                    self.figure.data[i].update(tr.to_plotly_json())
                self.figure.layout.title.text = fig.layout.title.text
        self.stale = False
        return self.figure

    def _sync_camera(self, layout_scene: Any, camera: Any) -> None:
        """Rotate the reconstruction scene with the target scene."""
        if self.figure is not None and camera is not None:
            self.figure.layout.scene2.camera = camera


class FigureArea:
    """The explorer's figure slot: the 1D/2D/slice view, the 3D volume view, and which one is
    shown (:attr:`box` holds it). The slice view is built when first shown."""

    def __init__(self, controls: ExploreControls, model: ExploreModel, *,
                 max_display: int | None, max_markers: int | None, volume_max_size: int) -> None:
        self.controls, self.model = controls, model
        self.max_display, self.max_markers = max_display, max_markers
        self.slice_view: LineView | HeatmapView | None = None
        self.volume = VolumeView(controls, model, max_size=volume_max_size,
                                 max_markers=max_markers)
        self.box = W.Box([self._current()])

    @property
    def figure(self) -> go.FigureWidget:
        return self.box.children[0]

    def _slice(self) -> LineView | HeatmapView:
        if self.slice_view is None:
            if self.model.ndim == 1:
                self.slice_view = LineView(self.controls, self.model)
            else:
                self.slice_view = HeatmapView(self.controls, self.model,
                                              max_display=self.max_display,
                                              max_markers=self.max_markers)
        return self.slice_view

    def _current(self) -> go.FigureWidget:
        return self.volume.get() if self.controls.mode == "3D" else self._slice().figure

    def update_loss(self, *, exact: bool) -> None:
        """After k/surrogate (and, with ``exact``, weight) changes: the slice view's maps."""
        if self.slice_view is not None and self.controls.mode != "3D":
            self.slice_view.update_loss(exact=exact)

    def update_sample(self) -> None:
        """After a sample or slice change: everything on the figure shown."""
        self.volume.stale = True
        if self.controls.mode == "3D":
            self.box.children = (self.volume.get(),)
        elif self.slice_view is not None:
            self.slice_view.update_sample()

    def switch_mode(self) -> None:
        """Show the view of the current 3D mode (the slice view brought up to date)."""
        self.controls.sync_slice_controls()
        if self.controls.mode != "3D" and self.slice_view is not None:
            self.update_sample()
        self.box.children = (self._current(),)

    def close(self) -> None:
        """Close the figures."""
        for view in (self.slice_view, self.volume):
            if view is not None and view.figure is not None:
                view.figure.close()
