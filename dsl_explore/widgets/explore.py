"""``explore(x, y)``: sliders for k, the axis weights and the surrogate next to live views.

The widget holds one sample (a 1-3D field) at a time. What each control recomputes:

=====================  =====================================================================
control                recomputed
=====================  =====================================================================
k, surrogate           DSL value (mean and sum) and the DSL term/contribution map
axis weights           the above, plus the weighted exact count, rate and mismatch map
slice (3D)             the slice's fields, maps and critical-point markers (no new totals)
sample                 everything for that sample: critical points, counts, fields, maps
=====================  =====================================================================

Critical points do not depend on k, the weights or the surrogate, so they are computed once per
sample. The loss and count in the readout come from
:func:`~dsl_explore.loss.directional_sign_loss` and
:func:`~dsl_explore.counting.sign_mismatch_count` themselves, on the sample as given (its dtype);
the maps on screen are computed in float32. Figures update inside ``batch_update``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch

from dsl_explore._validation import (
    check_array,
    check_choice,
    check_finite,
    check_k,
    check_real,
    resolve_dims,
    resolve_weights,
)
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import METHODS, CriticalMismatch, mismatched_critical_points
from dsl_explore.loss import SURROGATES, directional_sign_loss
from dsl_explore.plots import style
from dsl_explore.plots.compute import CriticalGroups, critical_groups
from dsl_explore.plots.traces import block_coords, block_factor, trace_index, typed_array
from dsl_explore.plots.image import (
    _build_2d,
    _dsl_vertex_map,
    _exact_vertex_map,
    _field_display,
    _Map,
    _map_cmax,
    _map_display,
    _marker_fields,
    _Parts2D,
)
from dsl_explore.plots.signal import _build_1d, _dsl_name, _marker_trace_1d, _parts_1d
from dsl_explore.plots.volume import plot_volume_plotly
from dsl_explore.widgets._common import (
    ExportPanel,
    guarded,
    log_k_slider,
    readout_html,
    surrogate_dropdown,
    weight_sliders,
)

__all__ = ["Explorer", "explore"]

_CONTINUOUS_UP_TO = 1 << 20  # samples larger than this update on slider release only


# --------------------------------------------------------------------------------------------
# input handling


def _as_tensor(a: object, name: str) -> torch.Tensor:
    check_array(a, name)
    check_real(a, name)  # type: ignore[arg-type]
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="),
                                                           copy=False)))
    else:
        t = a.detach().cpu()  # type: ignore[union-attr]
    if not t.dtype.is_floating_point:
        t = t.to(torch.float64)
    check_finite(t, name)
    return t


def _layout(shape: tuple[int, ...], dims: object) -> tuple[int, ...]:
    """The spatial axes of an input of ``shape`` (see :func:`explore` for the rules)."""
    nd = len(shape)
    if dims is not None:
        return resolve_dims(nd, dims)  # type: ignore[arg-type]
    if nd in (1, 2):
        return tuple(range(nd))
    if nd == 3:
        return (2,) if shape[1] == 1 else (0, 1, 2)
    if nd in (4, 5):
        return tuple(range(2, nd))
    raise ValueError(
        "x must be a bare 1-3D field or an (N, C, *spatial) batch with 1-3 spatial axes "
        f"(1-5 axes), got shape {shape}; pass dims= to name the spatial axes of another layout"
    )


@dataclass
class _Data:
    x: torch.Tensor  # (S, *spatial), the input dtype
    y: torch.Tensor
    spatial: tuple[int, ...]
    sample_shape: tuple[int, ...]  # sizes of the non-spatial axes, in input order
    sample_axes: tuple[int, ...]
    dims: tuple[int, ...]  # spatial axes of the input, in the order weights follow


def _prepare(x: object, y: object, dims: object) -> _Data:
    xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
    if tuple(xt.shape) != tuple(yt.shape):
        raise ValueError(
            f"x and y must have the same shape, got {tuple(xt.shape)} and {tuple(yt.shape)}"
        )
    if xt.dtype != yt.dtype:
        common = torch.promote_types(xt.dtype, yt.dtype)
        xt, yt = xt.to(common), yt.to(common)
    if xt.numel() == 0:
        raise ValueError(f"x and y must not be empty, got shape {tuple(xt.shape)}")
    shape = tuple(xt.shape)
    axes = _layout(shape, dims)
    spatial = tuple(shape[a] for a in axes)
    if any(n < 2 for n in spatial):
        raise ValueError(
            f"every spatial axis needs at least 2 samples, got spatial sizes {spatial} "
            f"(axes {axes} of shape {shape}); pass dims= if the layout was guessed wrong"
        )
    others = tuple(a for a in range(len(shape)) if a not in axes)
    order = others + axes
    sample_shape = tuple(shape[a] for a in others)
    n = math.prod(sample_shape)

    def arrange(t: torch.Tensor) -> torch.Tensor:
        if order != tuple(range(len(shape))):
            t = t.permute(order)
        return t.reshape(n, *spatial).contiguous()

    return _Data(arrange(xt), arrange(yt), spatial, sample_shape, others, axes)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (this thread only), then restore.

    With the OpenMP backend the setting is per OS thread: a training thread running beside
    the widget keeps its own. The widget's updates are many small ops; on a busy 2-core machine
    each multi-threaded op waits for a second core (a scheduler slice, ~4-8 ms), so one thread
    is both faster and steadier there.
    """
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _heatmaps_to_typed(fig: go.Figure) -> go.Figure:
    """Store every heatmap ``z`` as a typed-array spec (binary, not nested lists, on the wire)."""
    for tr in fig.data:
        if tr.type == "heatmap" and tr.z is not None and not isinstance(tr.z, dict):
            tr.z = typed_array(np.asarray(tr.z, dtype=np.float32))
    return fig


@dataclass
class _Sample:
    x: torch.Tensor  # one sample, input dtype
    y: torch.Tensor
    x32: torch.Tensor  # float32 copies for the maps
    y32: torch.Tensor
    mismatch: CriticalMismatch
    groups: CriticalGroups
    count: int
    n_differences: int
    vmin: float
    vmax: float


# --------------------------------------------------------------------------------------------
# the widget


class Explorer:
    """The ``explore`` widget: controls, readout, a live figure and an Export button.

    Build it with :func:`explore`. Show it by leaving it as the last expression of a cell (or
    ``display(explorer)``); ``explorer.widget`` is the ``VBox`` itself.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Everything, top to bottom: loss controls, sample/slice controls, readout, figure,
        export.
    k_slider : ipywidgets.FloatLogSlider
    weight_sliders : list of ipywidgets.FloatSlider
        One per spatial axis, 0 to 2.
    surrogate_dropdown : ipywidgets.Dropdown
    sample_slider : ipywidgets.IntSlider
        Over the flattened non-spatial axes (shown only for batches).
    slice_axis, slice_slider : ipywidgets.ToggleButtons, ipywidgets.IntSlider
        3D only: the slice shown in "slices" mode.
    mode_toggle : ipywidgets.ToggleButtons
        3D only: "slices" (2D panels of one slice) or "3D" (rotatable plotly volume).
    readout : ipywidgets.HTML
        Class ``dsl-readout``: DSL value, exact count and rate, critical-point counts.
    export_button, status : ipywidgets.Button, ipywidgets.HTML
        Export the current figure; the status line (class ``dsl-status``) shows results and
        errors.
    last_error : Exception or None
        The last error raised inside a callback (also shown in the status line).
    last_update_s : float
        Seconds the last control change took to recompute and update the figure.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        *,
        dims: int | Sequence[int] | None = None,
        k: float = 10.0,
        weights: Sequence[float] | None = None,
        surrogate: str = "tanh",
        method: str = "axis",
        export_dir: str | Path = "figures",
        mode3d: str = "slices",
        max_display: int | None = 512,
        max_markers: int | None = 5000,
        volume_max_size: int = 48,
        threads: int | None = 1,
    ) -> None:
        k = check_k(k)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
        self.threads = threads
        check_choice(surrogate, "surrogate", tuple(SURROGATES))
        check_choice(method, "method", METHODS)
        check_choice(mode3d, "mode3d", ("slices", "3D"))
        self._data = _prepare(x, y, dims)
        self.ndim = len(self._data.spatial)
        w = resolve_weights(weights, self.ndim)
        self.method = method
        self.max_display = max_display
        self.max_markers = max_markers
        self.volume_max_size = volume_max_size
        self.last_error: Exception | None = None
        self.last_update_s = 0.0
        n_samples = self._data.x.shape[0]
        continuous = math.prod(self._data.spatial) <= _CONTINUOUS_UP_TO

        # controls
        self.k_slider = log_k_slider(k, continuous_update=continuous)
        self.surrogate_dropdown = surrogate_dropdown(surrogate)
        self.weight_sliders = weight_sliders(
            self.ndim, w, names=[f"axis {a}" for a in range(self.ndim)],
            continuous_update=continuous,
        )
        self.sample_slider = W.IntSlider(
            value=0, min=0, max=max(n_samples - 1, 0), description="sample",
            continuous_update=False, layout=W.Layout(width="420px"),
        )
        self.readout = readout_html()
        self._export = ExportPanel(self._export_figures, export_dir)
        self.export_button = self._export.button
        self.status = self._export.status
        self.slice_axis: W.ToggleButtons | None = None
        self.slice_slider: W.IntSlider | None = None
        self.mode_toggle: W.ToggleButtons | None = None
        if self.ndim == 3:
            self.slice_axis = W.ToggleButtons(
                options=[(f"axis {a}", a) for a in range(3)], value=0, description="slice",
                style={"button_width": "64px"},
            )
            self.slice_slider = W.IntSlider(
                value=self._data.spatial[0] // 2, min=0, max=self._data.spatial[0] - 1,
                description="index", continuous_update=continuous,
                layout=W.Layout(width="360px"),
            )
            self.mode_toggle = W.ToggleButtons(
                options=["slices", "3D"], value=mode3d, description="view",
                tooltips=["2D panels of one slice", "rotatable 3D view (plotly)"],
                style={"button_width": "64px"},
            )

        # first sample, figure
        self._slice_fig: go.FigureWidget | None = None
        self._volume_fig: go.FigureWidget | None = None
        self._volume_stale = True
        self._exact_max = 0.0
        with _torch_threads(self.threads):
            self._cur = self._load_sample(0)
            self._compute_loss()
            self._compute_count()
            self._fig_box = W.Box([self._current_figure()])
            self._update_readout()

        # wiring
        self.k_slider.observe(self._on_loss_change, names="value")
        self.surrogate_dropdown.observe(self._on_loss_change, names="value")
        for s in self.weight_sliders:
            s.observe(self._on_weight_change, names="value")
        self.sample_slider.observe(self._on_sample_change, names="value")
        if self.ndim == 3:
            assert self.slice_axis and self.slice_slider and self.mode_toggle
            self.slice_axis.observe(self._on_slice_axis, names="value")
            self.slice_slider.observe(self._on_slice_change, names="value")
            self.mode_toggle.observe(self._on_mode, names="value")

        rows: list[W.Widget] = [
            W.HBox([self.k_slider, self.surrogate_dropdown]),
            W.HBox(list(self.weight_sliders)),
        ]
        if n_samples > 1:
            rows.append(self.sample_slider)
        if self.ndim == 3:
            rows.append(W.HBox([self.mode_toggle, self.slice_axis, self.slice_slider]))
            self._sync_slice_controls()
        rows += [self.readout, self._fig_box, self._export.widget]
        self.widget = W.VBox(rows)

    # ---------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---------------------------------------------------------------- public API

    @property
    def figure(self) -> go.FigureWidget:
        """The FigureWidget on screen (in 3D: the slice figure or the volume figure)."""
        return self._fig_box.children[0]  # type: ignore[return-value]

    @property
    def k(self) -> float:
        return float(self.k_slider.value)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(float(s.value) for s in self.weight_sliders)

    @property
    def surrogate(self) -> str:
        return str(self.surrogate_dropdown.value)

    @property
    def sample(self) -> int:
        return int(self.sample_slider.value)

    @property
    def sample_index(self) -> tuple[int, ...]:
        """Index of the current sample in the non-spatial axes of the input (e.g. ``(n, c)``)."""
        if not self._data.sample_shape:
            return ()
        return tuple(int(i) for i in np.unravel_index(self.sample, self._data.sample_shape))

    def sample_fields(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current sample ``(x, y)`` as shown: spatial axes only, in the input's dtype."""
        return self._cur.x, self._cur.y

    def state(self) -> dict[str, Any]:
        """The current settings and values.

        Returns
        -------
        dict
            ``k``, ``weights``, ``surrogate``, ``sample`` (flat index), ``sample_index``,
            ``slice`` (``(axis, index)`` in 3D, else None), ``mode``; ``loss`` and
            ``loss_sum`` (DSL with ``reduction="mean"`` / ``"sum"``), ``count`` (exact number of
            mismatched differences, int), ``count_weighted`` and ``count_rate``
            (:func:`~dsl_explore.counting.sign_mismatch_count` with the weights and
            ``reduction="sum"`` / ``"mean"``), ``n_differences``, and the numbers of
            ``spurious``, ``lost``, ``changed`` and ``matched`` critical points.
        """
        c = self._cur.groups.counts()
        return {
            "k": self.k,
            "weights": self.weights,
            "surrogate": self.surrogate,
            "sample": self.sample,
            "sample_index": self.sample_index,
            "slice": self._slice(),
            "mode": self._mode(),
            "loss": self._loss,
            "loss_sum": self._loss_sum,
            "count": self._cur.count,
            "count_weighted": self._count_w,
            "count_rate": self._rate,
            "n_differences": self._cur.n_differences,
            "spurious": c["spurious"],
            "lost": c["lost"],
            "changed": c["changed"],
            "matched": c["matched"],
        }

    def export(self) -> list[Path]:
        """Write the current figure, as the Export button does; returns the paths."""
        return self._export.export()

    @property
    def export_panel(self) -> ExportPanel:
        """The export controls (directory, format, button, status)."""
        return self._export

    def close(self) -> None:
        """Close this explorer's widgets (the figures included); other widgets are untouched."""

        def walk(w: W.Widget) -> None:
            for child in getattr(w, "children", ()):
                walk(child)
            w.close()

        for fig in (self._slice_fig, self._volume_fig):
            if fig is not None:
                fig.close()
        walk(self.widget)

    # ---------------------------------------------------------------- computation

    def _axes(self) -> tuple[int, ...]:
        return tuple(range(self.ndim))

    def _load_sample(self, s: int) -> _Sample:
        x, y = self._data.x[s], self._data.y[s]
        x32 = x if x.dtype == torch.float32 else x.float()
        y32 = y if y.dtype == torch.float32 else y.float()
        cm = mismatched_critical_points(x, y, method=self.method)
        n_diff = sum(
            math.prod(self._data.spatial) // n * (n - 1) for n in self._data.spatial
        )
        both = torch.stack([x32.amin(), x32.amax(), y32.amin(), y32.amax()])
        return _Sample(
            x=x, y=y, x32=x32, y32=y32, mismatch=cm, groups=critical_groups(cm),
            count=int(sign_mismatch_count(x, y, dims=self._axes())),
            n_differences=int(n_diff),
            vmin=float(both.min()), vmax=float(both.max()),
        )

    def _compute_loss(self) -> None:
        kw = {"k": self.k, "weights": self.weights, "dims": self._axes(),
              "surrogate": self.surrogate}
        x, y = self._cur.x, self._cur.y
        self._loss = float(directional_sign_loss(x, y, reduction="mean", **kw))
        self._loss_sum = float(directional_sign_loss(x, y, reduction="sum", **kw))

    def _compute_count(self) -> None:
        x, y = self._cur.x, self._cur.y
        self._count_w = float(sign_mismatch_count(x, y, dims=self._axes(), weights=self.weights))
        self._rate = float(
            sign_mismatch_count(x, y, dims=self._axes(), weights=self.weights, reduction="mean")
        )

    def _slice(self) -> tuple[int, int] | None:
        if self.ndim != 3:
            return None
        assert self.slice_axis is not None and self.slice_slider is not None
        return int(self.slice_axis.value), int(self.slice_slider.value)

    def _mode(self) -> str | None:
        return None if self.mode_toggle is None else str(self.mode_toggle.value)

    # ---------------------------------------------------------------- figures

    def _current_figure(self) -> go.FigureWidget:
        if self._mode() == "3D":
            return self._get_volume_figure()
        if self._slice_fig is None:
            self._slice_fig = self._build_figure()
        return self._slice_fig

    def _fields2d(self) -> tuple[torch.Tensor, ...]:
        """(x, y, x32, y32) of the 2D view: the sample, or in 3D its current slice."""
        c = self._cur
        if self.ndim == 2:
            return c.x, c.y, c.x32, c.y32
        a, i = self._slice()  # type: ignore[misc]
        return tuple(t.select(a, i) for t in (c.x, c.y, c.x32, c.y32))

    def _groups2d(self) -> CriticalGroups:
        if self.ndim == 2:
            return self._cur.groups
        return self._cur.groups.select_plane(*self._slice())  # type: ignore[misc]

    def _map_kwargs(self) -> dict[str, Any]:
        return {"plane": self._slice()}

    def _dsl_map(self) -> torch.Tensor:
        c = self._cur
        return _dsl_vertex_map(c.x32, c.y32, k=self.k, surrogate=self.surrogate,
                               weights=self.weights, **self._map_kwargs())

    def _exact_map(self) -> torch.Tensor:
        c = self._cur
        return _exact_vertex_map(c.x, c.y, weights=self.weights, **self._map_kwargs())

    def _dsl_title(self) -> str:
        return f"DSL contribution per vertex (k={self.k:.3g}, {self.surrogate})"

    def _title(self) -> str:
        st = self.state()
        w = "" if all(v == 1.0 for v in st["weights"]) else (
            ", w=(" + ", ".join(f"{v:g}" for v in st["weights"]) + ")")
        head = f"{self.ndim}D"
        if self._data.sample_shape:
            head += f" · sample {self.sample_index}"
        if self.ndim == 3:
            a, i = self._slice()  # type: ignore[misc]
            head += f" · slice axis {a} = {i}"
        g = self._groups2d().counts() if self.ndim == 3 else self._cur.groups.counts()
        where = "on this slice" if self.ndim == 3 else "critical points"
        return (
            f"{head} · DSL = {st['loss_sum']:.4g} (sum, k={st['k']:.3g}, {st['surrogate']}{w}) · "
            f"exact count = {st['count_weighted']:.6g} · {where}: {g['spurious']} spurious, "
            f"{g['lost']} lost, {g['changed']} changed"
        )

    def _build_figure(self) -> go.FigureWidget:
        if self.ndim == 1:
            return self._build_1d()
        parts = self._parts2d()
        self._exact_max = float(parts.maps[0].z.max()) if parts.maps[0].z.size else 0.0
        fig = go.FigureWidget(_heatmaps_to_typed(_build_2d(parts, width=1100, height=1000)))
        self._idx = {
            "dsl": trace_index(fig, role="dsl"),
            "exact": trace_index(fig, role="exact"),
            "target": trace_index(fig, role="field", panel="target"),
            "recon": trace_index(fig, role="field", panel="recon"),
            "markers": {
                (tr.meta["panel"], tr.meta["kind"]): i
                for i, tr in enumerate(fig.data)
                if isinstance(tr.meta, dict) and tr.meta.get("role") == "critical"
            },
        }
        texts = [a.text for a in fig.layout.annotations]
        self._dsl_title_idx = next(i for i, t in enumerate(texts) if t.startswith("DSL "))
        return fig

    def _parts2d(self) -> _Parts2D:
        x, y, _, _ = self._fields2d()
        shape = tuple(x.shape)
        factor = block_factor(shape, self.max_display)
        xs, ys = block_coords(shape[1], factor), block_coords(shape[0], factor)
        note = f" (shown 1/{factor}: block max)" if factor > 1 else ""
        maps = [
            _Map("exact", None, "exact sign mismatches per vertex" + note,
                 _map_display(self._exact_map(), factor), xs, ys),
            _Map("dsl", None, self._dsl_title() + note,
                 _map_display(self._dsl_map(), factor), xs, ys),
        ]
        names = tuple(f"axis {a}" for a in range(self.ndim) if a != (self._slice() or (-1,))[0])
        return _Parts2D(
            target=_field_display(y, factor), recon=_field_display(x, factor), x=xs, y=ys,
            groups=self._groups2d(), maps=maps, axis_names=names[:2],  # type: ignore[arg-type]
            title=self._title(), factor=factor, max_markers=self.max_markers,
        )

    def _build_1d(self) -> go.FigureWidget:
        parts = self._parts1d()
        fig = go.FigureWidget(_heatmaps_to_typed(
            _build_1d(parts, title=self._title(), width=1100, height=780)))
        self._idx = {
            "dsl": trace_index(fig, role="dsl"),
            "exact": trace_index(fig, role="exact"),
            "sign": trace_index(fig, role="sign"),
            "target": trace_index(fig, role="line", panel="target"),
            "recon": trace_index(fig, role="line", panel="recon"),
            "markers": {
                tr.meta["kind"]: i for i, tr in enumerate(fig.data)
                if isinstance(tr.meta, dict) and tr.meta.get("role") == "critical"
            },
        }
        return fig

    def _parts1d(self) -> Any:
        c = self._cur
        return _parts_1d(c.y.double().numpy(), c.x.double().numpy(), k=self.k,
                         surrogate=self.surrogate, weight=self.weights[0], groups=c.groups)

    def _get_volume_figure(self) -> go.FigureWidget:
        c = self._cur
        fig = plot_volume_plotly(
            c.y32.numpy(), c.x32.numpy(), max_size=self.volume_max_size, mismatch=c.mismatch,
            max_markers=self.max_markers,
        )
        sub = f"sample {self.sample_index} · " if self._data.sample_shape else ""
        fig.layout.title.text = sub + fig.layout.title.text
        if self._volume_fig is None:
            self._volume_fig = go.FigureWidget(fig)
            self._volume_fig.layout.scene.on_change(self._sync_camera, "camera")
        elif self._volume_stale:
            with self._volume_fig.batch_update():
                for i, tr in enumerate(fig.data):
                    self._volume_fig.data[i].update(tr.to_plotly_json())
                self._volume_fig.layout.title.text = fig.layout.title.text
        self._volume_stale = False
        return self._volume_fig

    def _sync_camera(self, layout_scene: Any, camera: Any) -> None:
        """Rotate the reconstruction scene with the target scene."""
        if self._volume_fig is not None and camera is not None:
            self._volume_fig.layout.scene2.camera = camera

    # ---------------------------------------------------------------- figure updates

    def _update_loss_views(self, *, exact: bool) -> None:
        """After k/surrogate (and, with ``exact``, weight) changes: maps, titles, readout."""
        fig = self._slice_fig
        if fig is not None and self._mode() != "3D":
            if self.ndim == 1:
                p = self._parts1d()
                with fig.batch_update():
                    fig.data[self._idx["dsl"]].y = p.terms
                    fig.data[self._idx["dsl"]].name = _dsl_name(p.k, p.surrogate)
                    if exact:
                        fig.data[self._idx["exact"]].y = p.exact
                        fig.layout.yaxis3.range = [0, max(1.0, p.weight) * 1.05]
                    fig.layout.title.text = self._title()
            else:
                factor = block_factor(tuple(self._fields2d()[0].shape), self.max_display)
                dsl = _map_display(self._dsl_map(), factor)
                ex = _map_display(self._exact_map(), factor) if exact else None
                if ex is not None:
                    self._exact_max = float(ex.max()) if ex.size else 0.0
                top = max(self._exact_max, float(dsl.max()) if dsl.size else 0.0)
                with fig.batch_update():
                    fig.data[self._idx["dsl"]].z = typed_array(dsl)
                    if ex is not None:
                        fig.data[self._idx["exact"]].z = typed_array(ex)
                    fig.layout.coloraxis2.cmax = top if top > 0 else 1.0
                    note = f" (shown 1/{factor}: block max)" if factor > 1 else ""
                    fig.layout.annotations[self._dsl_title_idx].text = self._dsl_title() + note
                    fig.layout.title.text = self._title()
        self._update_readout()

    def _update_view(self) -> None:
        """After a sample or slice change: everything on the current figure."""
        if self._mode() == "3D":
            self._volume_stale = True
            self._fig_box.children = (self._get_volume_figure(),)
            self._update_readout()
            return
        self._volume_stale = True
        fig = self._slice_fig
        if fig is None:
            return
        if self.ndim == 1:
            p = self._parts1d()
            idx = self._idx
            with fig.batch_update():
                fig.data[idx["target"]].y = p.target
                fig.data[idx["recon"]].y = p.recon
                fig.data[idx["sign"]].z = typed_array(np.stack([p.sign_target, p.sign_recon]))
                fig.data[idx["dsl"]].y = p.terms
                fig.data[idx["exact"]].y = p.exact
                for kind, i in idx["markers"].items():
                    new = _build_1d_marker(p, kind)
                    fig.data[i].update(x=new.x, y=new.y, text=new.text, name=new.name)
                fig.layout.title.text = self._title()
            self._update_readout()
            return
        parts = self._parts2d()
        idx = self._idx
        ez = parts.maps[0].z
        self._exact_max = float(ez.max()) if ez.size else 0.0
        with fig.batch_update():
            fig.data[idx["target"]].z = typed_array(parts.target)
            fig.data[idx["recon"]].z = typed_array(parts.recon)
            fig.data[idx["exact"]].z = typed_array(parts.maps[0].z)
            fig.data[idx["dsl"]].z = typed_array(parts.maps[1].z)
            for (_panel, kind), i in idx["markers"].items():
                fig.data[i].update(**_marker_fields(parts.groups, kind, self.max_markers))
            fig.layout.coloraxis.cmin = self._cur.vmin
            fig.layout.coloraxis.cmax = self._cur.vmax
            fig.layout.coloraxis2.cmax = _map_cmax(parts.maps)
            fig.layout.title.text = parts.title
        self._update_readout()

    def _update_readout(self) -> None:
        st = self.state()
        g = self._cur.groups.counts()
        w = ", ".join(f"{v:g}" for v in st["weights"])
        kinds = " · ".join(
            f'<span style="color:{_kind_text_color(kind)}"><b>{g[kind]}</b> {kind}</span>'
            for kind in ("spurious", "lost", "changed", "matched")
        )
        where = ""
        if self._data.sample_shape:
            where += (f"sample {st['sample']} of {self._data.x.shape[0]} "
                      f"(index {st['sample_index']})")
        if st["slice"] is not None and st["mode"] == "slices":
            where += (" · " if where else "") + f"slice axis {st['slice'][0]} = {st['slice'][1]}"
        self.readout.value = (
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

    def _sync_slice_controls(self) -> None:
        if self.ndim != 3:
            return
        assert self.slice_axis and self.slice_slider
        disabled = self._mode() == "3D"
        self.slice_axis.disabled = disabled
        self.slice_slider.disabled = disabled

    # ---------------------------------------------------------------- callbacks

    @guarded(lambda self: self.status)
    def _on_loss_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with _torch_threads(self.threads):
            self._compute_loss()
            self._update_loss_views(exact=False)
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_weight_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with _torch_threads(self.threads):
            self._compute_loss()
            self._compute_count()
            self._update_loss_views(exact=True)
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_sample_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with _torch_threads(self.threads):
            self._cur = self._load_sample(self.sample)
            self._compute_loss()
            self._compute_count()
            self._update_view()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_slice_axis(self, change: Any) -> None:
        assert self.slice_slider is not None and self.slice_axis is not None
        n = self._data.spatial[int(self.slice_axis.value)]
        with self.slice_slider.hold_trait_notifications():
            self.slice_slider.max = n - 1
            self.slice_slider.value = min(self.slice_slider.value, n - 1)
        self._on_slice_change(None)

    @guarded(lambda self: self.status)
    def _on_slice_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        if self._mode() != "3D":
            with _torch_threads(self.threads):
                self._update_view()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_mode(self, change: Any) -> None:
        with _torch_threads(self.threads):
            self._switch_mode()

    def _switch_mode(self) -> None:
        t0 = time.perf_counter()
        self._sync_slice_controls()
        if self._mode() == "3D":
            self._fig_box.children = (self._get_volume_figure(),)
        else:
            if self._slice_fig is None:
                self._slice_fig = self._build_figure()
            else:
                self._update_view()
            self._fig_box.children = (self._slice_fig,)
        self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    def _export_figures(self) -> dict[str, go.FigureWidget]:
        stem = f"explore_{self.ndim}d"
        if self._data.sample_shape:
            stem += f"_sample{self.sample}"
        if self.ndim == 3:
            if self._mode() == "3D":
                stem += "_volume"
            else:
                a, i = self._slice()  # type: ignore[misc]
                stem += f"_axis{a}_slice{i}"
        return {stem: self.figure}


def _kind_text_color(kind: str) -> str:
    return "#8A7E00" if kind == "changed" else style.KIND_STYLES[kind].color


def _build_1d_marker(p: Any, kind: str) -> go.Scatter:
    return _marker_trace_1d(p, kind, 10)


def explore(
    x: Any,
    y: Any,
    *,
    dims: int | Sequence[int] | None = None,
    k: float = 10.0,
    weights: Sequence[float] | None = None,
    surrogate: str = "tanh",
    method: str = "axis",
    export_dir: str | Path = "figures",
    mode3d: str = "slices",
    max_display: int | None = 512,
    max_markers: int | None = 5000,
    volume_max_size: int = 48,
    threads: int | None = 1,
) -> Explorer:
    """Explore DSL between a reconstruction ``x`` and a target ``y`` with sliders.

    Shows the 1D plot (:func:`~dsl_explore.plots.plot_1d`), the 2D heatmaps
    (:func:`~dsl_explore.plots.plot_2d`) or, for volumes, the 2D panels of one slice or a
    rotatable 3D view (:func:`~dsl_explore.plots.plot_volume_plotly`), with a k slider (log
    scale), one weight slider per axis, a surrogate selector, a sample selector for batches,
    a readout of the DSL value, the exact count and the mismatched critical points, and an
    Export button. See the module docstring for what each control recomputes.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        The reconstruction (the loss's ``x``).
    y : numpy.ndarray or torch.Tensor
        The target, same shape. Real values, finite; integers are converted to float64.
        Tensors are detached and copied to the CPU.
    dims : int or sequence of int, optional
        The spatial axes (1 to 3); every other axis indexes samples (flattened in C order for
        the sample selector). ``None`` infers the layout: 1 or 2 axes are a bare field; 3 axes
        are an ``(N, 1, L)`` batch of signals when the middle axis has length 1, otherwise one
        3D volume; 4 and 5 axes are ``(N, C, H, W)`` and ``(N, C, D, H, W)``.
    k : float
        Initial sharpness (> 0); the slider spans 10^-1 .. 10^4 (wider when needed).
    weights : sequence of float, optional
        Initial per-axis weights (default 1); the sliders span 0 .. 2.
    surrogate : str
        Initial surrogate, one of :data:`dsl_explore.loss.SURROGATES`.
    method : {"axis", "pl"}
        Critical-point classification.
    export_dir : str or os.PathLike
        Initial directory of the Export button (editable in the widget).
    mode3d : {"slices", "3D"}
        Initial view of volumes.
    max_display : int or None
        2D panels larger than this along an axis are shown downsampled (block mean/max; the
        panel title says so); the values in the readout always use the full data.
    max_markers : int or None
        At most this many markers per kind and panel (evenly strided; the legend shows the
        total).
    volume_max_size : int
        Largest number of samples per axis in the 3D view (stride subsampling above it).
    threads : int or None
        torch intra-op threads for the widget's computations, set for the duration of each
        update on the calling thread only (default 1: an update is many small ops, and on a
        busy 2-core machine every multi-threaded op waits a scheduler slice for the second
        core). None leaves torch's setting alone.

    Returns
    -------
    Explorer
        Displays itself as the last expression of a cell; ``.state()`` gives the numbers.

    Raises
    ------
    TypeError
        If ``x`` or ``y`` is not a numpy array / torch tensor or has a complex dtype.
    ValueError
        If the shapes differ, a value is NaN or infinite, the layout has no 1-3 spatial axes
        of length >= 2, or another argument is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.widgets import explore
    >>> y = np.array([0.0, 1.0, 0.0, 1.0]); x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> ex = explore(x, y, k=100.0)
    >>> st = ex.state()
    >>> round(st["loss_sum"], 4), st["count"], st["spurious"], st["lost"]
    (1.0, 1, 0, 2)
    >>> ex.k_slider.value = 1.0           # what a slider drag does
    >>> round(ex.state()["loss_sum"], 4)
    0.7616
    """
    return Explorer(
        x, y, dims=dims, k=k, weights=weights, surrogate=surrogate, method=method,
        export_dir=export_dir, mode3d=mode3d, max_display=max_display,
        max_markers=max_markers, volume_max_size=volume_max_size, threads=threads,
    )
