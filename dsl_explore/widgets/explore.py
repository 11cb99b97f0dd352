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

The pieces: :mod:`~dsl_explore.widgets._explore_controls` (the parameters and their widgets),
:mod:`~dsl_explore.widgets._sample` (the data, the current sample and its numbers) and
:mod:`~dsl_explore.widgets._explore_views` (one class per view); :class:`Explorer` wires them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import torch

from dsl_explore._validation import check_choice, check_k, resolve_weights
from dsl_explore.critical import METHODS
from dsl_explore.loss import SURROGATES
from dsl_explore.widgets._common import ExportPanel, close_tree, guarded, readout_html
from dsl_explore.widgets._explore_controls import ExploreControls
from dsl_explore.widgets._explore_views import FigureArea, export_stem, readout_value
from dsl_explore.widgets._sample import ExploreModel, prepare, torch_threads

__all__ = ["Explorer", "explore"]

_CONTINUOUS_UP_TO = 1 << 16
"""Samples with more elements than this (256^2) update on slider release only: a drag then
sends one value, not one per pixel moved, and the page never queues stale redraws."""


def _check_threads(threads: object) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")


class Explorer:
    """The ``explore`` widget: controls, readout, a live figure and an Export button.

    Build it with :func:`explore`. Show it by leaving it as the last expression of a cell (or
    ``display(explorer)``); ``explorer.widget`` is the ``VBox`` itself.

    It is assembled from one controls object (:attr:`controls`: the parameters and their
    widgets), one model (:attr:`model`: the current sample and its numbers) and one view per
    kind of figure (1D lines, 2D heatmaps or 3D slices, the 3D volume); the explorer wires the
    controls' events to recomputing the model and updating the readout and the view on screen.

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
    controls : ExploreControls
        The parameters and their widgets (the sliders above are its widgets).
    model : ExploreModel
        The current sample, its critical points and the numbers of the readout.
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
        _check_threads(threads)
        self.threads = threads
        check_choice(surrogate, "surrogate", tuple(SURROGATES))
        check_choice(method, "method", METHODS)
        check_choice(mode3d, "mode3d", ("slices", "3D"))
        data = prepare(x, y, dims)
        self.ndim = len(data.spatial)
        w = resolve_weights(weights, self.ndim)
        self.method = method
        self.max_display = max_display
        self.max_markers = max_markers
        self.volume_max_size = volume_max_size
        self.last_error: Exception | None = None
        self.last_update_s = 0.0
        continuous = math.prod(data.spatial) <= _CONTINUOUS_UP_TO
        self.controls = ExploreControls(data.spatial, int(data.x.shape[0]), k=k, weights=w,
                                        surrogate=surrogate, mode3d=mode3d,
                                        continuous=continuous)
        c = self.controls
        self.k_slider, self.surrogate_dropdown = c.k_slider, c.surrogate_dropdown
        self.weight_sliders, self.sample_slider = c.weight_sliders, c.sample_slider
        self.slice_axis, self.slice_slider = c.slice_axis, c.slice_slider
        self.mode_toggle = c.mode_toggle
        self.readout = readout_html()
        self._export = ExportPanel(self._export_figures, export_dir)
        self.export_button = self._export.button
        self.status = self._export.status
        with torch_threads(self.threads):
            self.model = ExploreModel(data, method=method)
            self._compute_loss()
            self._compute_count()
            self._area = FigureArea(c, self.model, max_display=max_display,
                                    max_markers=max_markers, volume_max_size=volume_max_size)
            self._update_readout()
        for event, cb in (("loss", self._on_loss_change), ("weights", self._on_weight_change),
                          ("sample", self._on_sample_change), ("slice", self._on_slice_change),
                          ("mode", self._on_mode)):
            c.on(event, cb)
        self.widget = W.VBox([*c.rows(), self.readout, self._area.box, self._export.widget])

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
        return self._area.figure

    @property
    def k(self) -> float:
        return self.controls.k

    @property
    def weights(self) -> tuple[float, ...]:
        return self.controls.weights

    @property
    def surrogate(self) -> str:
        return self.controls.surrogate

    @property
    def sample(self) -> int:
        return self.controls.sample

    @property
    def sample_index(self) -> tuple[int, ...]:
        """Index of the current sample in the non-spatial axes of the input (e.g. ``(n, c)``)."""
        return self.model.data.sample_index(self.sample)

    def sample_fields(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current sample ``(x, y)`` as shown: spatial axes only, in the input's dtype."""
        return self.model.cur.x, self.model.cur.y

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
        m = self.model
        c = m.cur.groups.counts()
        return {
            "k": self.k,
            "weights": self.weights,
            "surrogate": self.surrogate,
            "sample": self.sample,
            "sample_index": self.sample_index,
            "slice": self.controls.slice,
            "mode": self.controls.mode,
            "loss": m.loss,
            "loss_sum": m.loss_sum,
            "count": m.cur.count,
            "count_weighted": m.count_weighted,
            "count_rate": m.count_rate,
            "n_differences": m.cur.n_differences,
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
        self._area.close()
        close_tree(self.widget)

    # ---------------------------------------------------------------- model

    def _compute_loss(self) -> None:
        self.model.compute_loss(k=self.k, weights=self.weights, surrogate=self.surrogate)

    def _compute_count(self) -> None:
        self.model.compute_count(weights=self.weights)

    # ---------------------------------------------------------------- views

    def _update_readout(self) -> None:
        self.readout.value = readout_value(self.state(), self.model)

    # ---------------------------------------------------------------- callbacks

    @guarded(lambda self: self.status)
    def _on_loss_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with torch_threads(self.threads):
            self._compute_loss()
            self._area.update_loss(exact=False)
            self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_weight_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with torch_threads(self.threads):
            self._compute_loss()
            self._compute_count()
            self._area.update_loss(exact=True)
            self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_sample_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        with torch_threads(self.threads):
            self.model.load(self.sample)
            self._compute_loss()
            self._compute_count()
            self._area.update_sample()
            self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_slice_change(self, change: Any) -> None:
        t0 = time.perf_counter()
        if self.controls.mode != "3D":
            with torch_threads(self.threads):
                self._area.update_sample()
                self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    @guarded(lambda self: self.status)
    def _on_mode(self, change: Any) -> None:
        with torch_threads(self.threads):
            self._switch_mode()

    def _switch_mode(self) -> None:
        t0 = time.perf_counter()
        self._area.switch_mode()
        self._update_readout()
        self.last_update_s = time.perf_counter() - t0

    def _export_figures(self) -> dict[str, go.FigureWidget]:
        return {export_stem(self.controls, self.model): self.figure}


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

    Shows the 1D plot (:func:`~dsl_explore.plots.plot_1d`), the 2D panels of
    :func:`~dsl_explore.plots.plot_2d` (drawn as images made in the kernel, so a slider change
    redraws one image, not the whole figure; the panels show no values on hover) or, for
    volumes, the 2D panels of one slice or a
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
        total). Above 500 critical points in a 2D view they are painted into the field
        images and the legend entries start hidden: click one to overlay hoverable markers
        of that kind (see :mod:`dsl_explore.widgets._map_images`).
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
