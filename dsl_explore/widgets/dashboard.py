"""``TrainingDashboard(run)``: watch and steer a :class:`~dsl_explore.training.TrainingRun` live.

The dashboard shows, top to bottom: a status line (step, steps/s, device, state; class
``dsl-status``), the run's buttons (start, pause, resume, stop, checkpoint), sliders for the
live settings (lambda, k on a log scale, one weight per axis, the surrogate, the learning rate
on a log scale; only those the run's loss uses are enabled), the history curves (loss terms,
exact-count rate, Betti error, mismatched critical points; :func:`~dsl_explore.plots.
plot_history`), the reconstruction of one sample of the run's fixed validation batch next to
its target with its mismatched critical points (1D lines, 2D heatmaps, 3D: one slice; the
figure of :func:`dsl_explore.run_figures.reconstruction_figure`) and an Export button.

How it refreshes
----------------
The training thread never touches a widget: it publishes snapshots
(:meth:`~dsl_explore.training.TrainingRun.snapshot`) and its history, and the dashboard *polls*
them from its own daemon thread (``dsl_explore-dashboard``), which wakes ``refresh_hz`` times a
second. Each wake-up reads the run's state and step (cheap) and updates the status line; only
when a new evaluation was published (its step changed) or the run changed state does it copy
the history and redraw the figures, inside ``batch_update`` (one comm message per figure;
setting changes appear as events with the next redraw). Redraws are further rate-limited by
their own cost (at most ~2 % of the refresher's time goes to them: a redraw that took 20 ms of
CPU waits a second for the next), and a change of the run's state is always drawn at once.
So the hot loop pays nothing but the run's own bookkeeping, and the dashboard's cost stays a
small, bounded share of the interpreter (``dsl-explore bench ui`` measures it; see
:mod:`dsl_explore.bench_ui`).

Why a thread and not an asyncio task on the kernel's event loop: a task runs only while the
kernel is idle, so a cell that blocks (``run.join()``, a long computation) would freeze the
view; a thread keeps refreshing. The thread reads the run and computes the figures' new
content; the widget updates themselves are handed to the kernel's event loop
(``io_loop.add_callback``), so they never interleave with the kernel's own handling of widget
messages from the browser (plotly's ``FigureWidget`` keeps edit counters that those messages
update, and is not written for two threads). When the loop does not take them within a quarter
second, the kernel is busy running a cell and handles no widget messages meanwhile: then the
refresher applies them itself (ipykernel's IOPub channel is thread-safe), so the view keeps
moving during ``run.join()``. Outside a kernel (tests, benchmarks) they are applied directly.
(Slider changes *from the browser* need an idle kernel: while a cell runs, the kernel queues
them.)

The refresher follows the run's lifecycle: it keeps polling a run that has not started yet (so
``run.start()`` in a later cell is picked up), does a final refresh when the run finishes,
stops or fails, then only checks about once a second whether the run was started again.
:meth:`TrainingDashboard.close` stops the refresher and closes the widgets but never stops the
run; a stopped or finished run leaves the dashboard usable (buttons follow the state, export
works). A failure in the training thread shows in the status line with its traceback summary.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from dsl_explore.plots import plot_history, trace_index
from dsl_explore.plots.traces import typed_array
from dsl_explore.widgets._common import (
    ExportPanel,
    guarded,
    log_k_slider,
    set_status,
    status_html,
    surrogate_dropdown,
    weight_sliders,
)

__all__ = ["TrainingDashboard"]

_TERMINAL = ("finished", "stopped", "failed")
_IDLE_PERIOD_S = 1.0  # how often a refresher checks a run that has ended
_MAX_DUTY = 0.02  # redraws take at most this share of the refresher's wall time (CPU)
_MAX_REDRAW_WAIT_S = 5.0  # ... but a new evaluation is drawn within this many seconds
_UI_WAIT_S = 0.25  # how long a refresh waits for the kernel's event loop before going direct
_STYLE = {"description_width": "initial"}
_BUTTONS = ("start", "pause", "resume", "stop", "checkpoint")
_EVAL_KEYS = ("val_mse", "count_rate", "spurious", "lost", "changed", "betti_total")


def _enabled_buttons(state: str, step: int, total: int) -> dict[str, bool]:
    """Which buttons make sense in a run state."""
    return {
        "start": state == "created" or (state == "stopped" and step < total),
        "pause": state == "running",
        "resume": state == "paused",
        "stop": state in ("running", "paused"),
        "checkpoint": state != "failed",
    }


def _heatmaps_to_typed(fig: go.Figure) -> go.Figure:
    for tr in fig.data:
        if tr.type == "heatmap" and tr.z is not None and not isinstance(tr.z, dict):
            tr.z = typed_array(np.asarray(tr.z, dtype=np.float32))
    return fig


def _kernel_loop() -> Any:
    """The running IPython kernel's event loop (tornado ``IOLoop``), or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    ip = get_ipython()
    loop = getattr(getattr(ip, "kernel", None), "io_loop", None)
    return loop if callable(getattr(loop, "add_callback", None)) else None


def _column(values: Sequence[Any]) -> np.ndarray:
    """A history column as float64 (``None`` -> NaN, a gap in the line)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# the history curves


class _Curves:
    """The history figure: one trace per curve, created up front, filled on every refresh."""

    def __init__(self, loss_columns: Sequence[str], n_dims: int, title: str) -> None:
        self.loss_columns = tuple(loss_columns)
        self.n_dims = n_dims
        self.title = title
        ref = plot_history(self._template([]), title=title, height=820, width=1100)
        for tr in ref.data:
            tr.x, tr.y = [], []
        self.fig = go.FigureWidget(ref)
        self.keys = [tr.meta["key"] for tr in self.fig.data]
        self.n_events = 0

    def _template(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A one-point history holding every key, so plot_history creates every trace."""
        return {
            "steps": {"step": [0], **{c: [1.0] for c in self.loss_columns}},
            "evals": {"step": [0], **{k: [1.0] for k in _EVAL_KEYS},
                      "betti_per_dim": [[1.0] * self.n_dims]},
            "events": list(events),
        }

    def _series(self, key: str, hist: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        st, ev = hist.get("steps", {}), hist.get("evals", {})
        if key in self.loss_columns:
            return np.asarray(st.get("step", []), dtype=np.int32), _column(st.get(key, []))
        x = np.asarray(ev.get("step", []), dtype=np.int32)
        if key.startswith("betti_") and key != "betti_total":
            q = int(key.split("_")[1])
            rows = ev.get("betti_per_dim", [])
            return x, _column([r[q] if r is not None and q < len(r) else None for r in rows])
        return x, _column(ev.get(key, []))

    def update(self, hist: Mapping[str, Any]) -> None:
        fig = self.fig
        events = list(hist.get("events", []))
        with fig.batch_update():
            for tr, key in zip(fig.data, self.keys, strict=True):
                x, y = self._series(key, hist)
                n = min(len(x), len(y))
                tr.x, tr.y = x[:n], y[:n]
            if len(events) != self.n_events:  # event lines: shapes + labels from plot_history
                ref = plot_history(self._template(events), title=self.title)
                fig.layout.shapes = ref.layout.shapes
                fig.layout.annotations = ref.layout.annotations
                self.n_events = len(events)

    def points(self) -> dict[str, int]:
        return {key: len(tr.x) for tr, key in zip(self.fig.data, self.keys, strict=True)}


# --------------------------------------------------------------------------------------------
# the reconstruction view


class _ReconView:
    """The reconstruction figure of one sample; later snapshots update its traces in place."""

    def __init__(self, parts: Any) -> None:
        from dsl_explore.run_figures import _build_recon

        self.ndim = parts.ndim
        self.fig = go.FigureWidget(_heatmaps_to_typed(_build_recon(parts)))
        fig = self.fig
        self.markers: dict[Any, int] = {}
        for i, tr in enumerate(fig.data):
            m = tr.meta if isinstance(tr.meta, dict) else {}
            if m.get("role") == "critical":
                key = m["kind"] if self.ndim == 1 else (m["panel"], m["kind"])
                self.markers[key] = i
        if self.ndim == 1:
            self.idx = {
                "target": trace_index(fig, role="line", panel="target"),
                "recon": trace_index(fig, role="line", panel="recon"),
                "sign": trace_index(fig, role="sign"),
                "dsl": trace_index(fig, role="dsl"),
                "exact": trace_index(fig, role="exact"),
            }
        else:
            self.idx = {
                "target": trace_index(fig, role="field", panel="target"),
                "recon": trace_index(fig, role="field", panel="recon"),
                "dsl": trace_index(fig, role="dsl"),
                "exact": trace_index(fig, role="exact"),
            }
            texts = [a.text or "" for a in fig.layout.annotations]
            self.dsl_title = next(i for i, t in enumerate(texts) if t.startswith("DSL "))
        self.shape = self._shape(parts)

    @staticmethod
    def _shape(parts: Any) -> tuple[int, ...]:
        p = parts.parts
        return (p.target.shape[0],) if parts.ndim == 1 else tuple(p.target.shape)

    def fits(self, parts: Any) -> bool:
        return parts.ndim == self.ndim and self._shape(parts) == self.shape

    def update(self, parts: Any) -> None:
        from dsl_explore.plots.image import _map_cmax, _marker_fields
        from dsl_explore.plots.signal import _dsl_name, _marker_trace_1d

        fig, idx, p = self.fig, self.idx, parts.parts
        with fig.batch_update():
            if self.ndim == 1:
                fig.data[idx["target"]].y = p.target
                fig.data[idx["recon"]].y = p.recon
                fig.data[idx["sign"]].z = typed_array(np.stack([p.sign_target, p.sign_recon]))
                fig.data[idx["dsl"]].y = p.terms
                fig.data[idx["dsl"]].name = _dsl_name(p.k, p.surrogate)
                fig.data[idx["exact"]].y = p.exact
                fig.layout.yaxis3.range = [0, max(1.0, p.weight) * 1.05]
                size = 11 if p.target.shape[0] <= 512 else 8
                for kind, i in self.markers.items():
                    new = _marker_trace_1d(p, kind, size)
                    fig.data[i].update(x=new.x, y=new.y, text=new.text, name=new.name)
            else:
                fig.data[idx["target"]].z = typed_array(p.target)
                fig.data[idx["recon"]].z = typed_array(p.recon)
                fig.data[idx["exact"]].z = typed_array(p.maps[0].z)
                fig.data[idx["dsl"]].z = typed_array(p.maps[1].z)
                for (_panel, kind), i in self.markers.items():
                    fig.data[i].update(**_marker_fields(p.groups, kind, p.max_markers))
                both = np.concatenate([p.target.ravel(), p.recon.ravel()])
                fig.layout.coloraxis.cmin = float(both.min())
                fig.layout.coloraxis.cmax = float(both.max())
                fig.layout.coloraxis2.cmax = _map_cmax(p.maps)
                fig.layout.annotations[self.dsl_title].text = p.maps[1].title
            fig.layout.title.text = parts.title


def _placeholder(text: str) -> go.FigureWidget:
    fig = go.FigureWidget()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 16, "color": "#666666"})
    fig.update_layout(template="plotly_white", height=260, xaxis_visible=False,
                      yaxis_visible=False, margin={"l": 20, "r": 20, "t": 20, "b": 20})
    return fig


class _DashboardExport(ExportPanel):
    """The dashboard's export controls: all current figures through ``save_figures``."""

    def export(self) -> list[Path]:
        from dsl_explore.export import save_figures

        fmt = self.format.value
        directory = Path(self.directory.value.strip() or ".").expanduser()
        set_status(self.status, f"exporting {fmt} to {directory} ...", level="busy")
        try:
            paths = save_figures(dict(self._figures()), directory, formats=(fmt,))
        except Exception as exc:  # shown in the widget
            self.last_error = exc
            set_status(self.status, f"export failed: {type(exc).__name__}: {exc}",
                       level="error")
            return []
        self.last_paths = paths
        self.last_error = None
        set_status(self.status, "wrote " + ", ".join(str(p) for p in paths), level="ok")
        return paths


# --------------------------------------------------------------------------------------------
# the dashboard


class TrainingDashboard:
    """A live view and the controls of a :class:`~dsl_explore.training.TrainingRun`.

    See the module docstring for what it shows and how it refreshes.

    Parameters
    ----------
    run : TrainingRun
        The run to follow; it may be created, running, paused or already ended.
    refresh_hz : float
        Wake-ups per second of the refresher (0 < refresh_hz <= 30). The figures are redrawn
        at most this often, and only when the run published a new evaluation.
    export_dir : str or os.PathLike
        Initial directory of the Export button (editable); checkpoints of a run without a run
        directory also go there (``checkpoints/step_*.pt``).
    sample : int
        Which sample of the run's fixed validation batch to show first (a slider switches).
    slice_index : int, optional
        3D runs: the axis-0 slice shown first (default: the middle; a slider switches).
    autorefresh : bool
        Start the refresher thread now (default). Without it, call :meth:`refresh`.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Everything; the dashboard displays itself as the last expression of a cell.
    status : ipywidgets.HTML
        The status line (class ``dsl-status``): step, steps/s, device, state, errors.
    message : ipywidgets.HTML
        Results and errors of the last button or slider action (class ``dsl-status``).
    buttons : dict of str to ipywidgets.Button
        ``start``, ``pause``, ``resume``, ``stop``, ``checkpoint``.
    lam_slider, k_slider, lr_slider : ipywidgets slider
        lambda (linear), k and the learning rate (log scale).
    weight_sliders : list of ipywidgets.FloatSlider
        One per spatial axis.
    surrogate_dropdown : ipywidgets.Dropdown
    sample_slider, slice_slider : ipywidgets.IntSlider
        The validation sample shown, and the 3D slice (None for 1D/2D runs).
    history_figure : plotly.graph_objects.FigureWidget
        The curves.
    recon_figure : plotly.graph_objects.FigureWidget or None
        The reconstruction view; before the run's first evaluation it shows the target in
        both panels (None only for runs that keep no validation data).
    last_error : Exception or None
        The last error of a callback or of a refresh (also shown in :attr:`message`).

    Examples
    --------
    >>> from dsl_explore.training import TrainingConfig, TrainingRun
    >>> from dsl_explore.widgets import TrainingDashboard
    >>> cfg = TrainingConfig(spatial_dims=1, size=32, n_samples=12, steps=4, eval_every=2,
    ...                      batch_size=4, base_channels=2, compression=4, device="cpu")
    >>> run = TrainingRun(cfg)
    >>> dash = TrainingDashboard(run, autorefresh=False)
    >>> dash.k_slider.value = 50.0            # a slider drag: run.set(k=50.0)
    >>> run.start().join()
    >>> st = dash.refresh()                   # one synchronous refresh
    >>> st["step"], st["run_state"], st["k"], run.config.k
    (4, 'finished', 50.0, 50.0)
    >>> st["history_points"]["total"] == len(run.history["steps"]["step"])
    True
    >>> dash.close()
    """

    def __init__(
        self,
        run: Any,
        *,
        refresh_hz: float = 4.0,
        export_dir: str | Path = "figures",
        sample: int = 0,
        slice_index: int | None = None,
        autorefresh: bool = True,
    ) -> None:
        from dsl_explore.training import TrainingRun

        if not isinstance(run, TrainingRun):
            raise TypeError(f"run must be a TrainingRun, got {type(run).__name__}")
        if isinstance(refresh_hz, bool) or not isinstance(refresh_hz, (int, float)) or \
                not math.isfinite(refresh_hz) or not 0 < refresh_hz <= 30:
            raise ValueError(f"refresh_hz must be a number in (0, 30], got {refresh_hz!r}")
        self.run = run
        self.refresh_hz = float(refresh_hz)
        self.last_error: Exception | None = None
        self._lock = threading.RLock()  # widget updates
        self._tick_lock = threading.Lock()  # one refresh at a time
        self._tls = threading.local()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._rates: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self._drawn: dict[str, Any] = {"snap_step": None, "state": None, "step": None}
        self._shown: dict[str, Any] = {"state": None, "step": None}
        self._next_redraw = 0.0
        self._snapshot: dict[str, Any] | None = None
        self._error_text: str | None = None
        self._status_text = ""
        self.n_redraws = 0
        self.cpu_seconds = 0.0  # CPU time of all refreshes so far (reading, computing, drawing)

        cfg = run.config
        nd = cfg.spatial_dims
        self.ndim = nd
        self._loss = cfg.loss
        val = getattr(run, "val_data", None)
        n_fixed = cfg.eval_samples if val is None else min(cfg.eval_samples, int(val.shape[0]))

        # status and messages
        self.status = status_html()
        self.message = status_html()

        # buttons
        icons = {"start": "play", "pause": "pause", "resume": "play", "stop": "stop",
                 "checkpoint": "save"}
        tips = {"start": "start training in the background", "pause": "pause after this step",
                "resume": "continue a paused run", "stop": "stop after this step (final "
                "checkpoint and history are written when the run has a run directory)",
                "checkpoint": "write a checkpoint now"}
        self.buttons = {
            name: W.Button(description=name.capitalize(), icon=icons[name], tooltip=tips[name],
                           layout=W.Layout(width="118px"))
            for name in _BUTTONS
        }
        self.buttons["start"].on_click(lambda _b: self._on_start())
        self.buttons["pause"].on_click(lambda _b: self._on_pause())
        self.buttons["resume"].on_click(lambda _b: self._on_resume())
        self.buttons["stop"].on_click(lambda _b: self._on_stop())
        self.buttons["checkpoint"].on_click(lambda _b: self._on_checkpoint())

        # live settings (continuous_update=False: one run.set per release, not per pixel)
        self.lam_slider = W.FloatSlider(
            value=cfg.lam, min=0.0, max=max(2.0, 2.0 * cfg.lam), step=0.01,
            description="λ (lambda)", readout_format=".3g", continuous_update=False,
            style=_STYLE, layout=W.Layout(width="360px"),
        )
        self.k_slider = log_k_slider(cfg.k, continuous_update=False)
        self.surrogate_dropdown = surrogate_dropdown(cfg.surrogate)
        w0 = cfg.weights if cfg.weights is not None else (1.0,) * nd
        self.weight_sliders = weight_sliders(nd, w0, continuous_update=False)
        lr_exp = math.log10(cfg.lr)
        self.lr_slider = W.FloatLogSlider(
            value=cfg.lr, base=10, min=min(-6.0, math.floor(lr_exp)),
            max=max(-1.0, math.ceil(lr_exp)), step=0.05, description="learning rate",
            readout_format=".2e", continuous_update=False, style=_STYLE,
            layout=W.Layout(width="380px"),
        )
        valid = {
            "lam": self._loss != "mse",
            "k": self._loss == "mse+dsl",
            "weights": self._loss == "mse+dsl",
            "surrogate": self._loss == "mse+dsl",
            "lr": True,
        }
        self._valid = valid
        tip = f"not used by loss={self._loss!r}"
        for name, widgets in self._setting_widgets().items():
            for wdg in widgets:
                wdg.disabled = not valid[name]
                if not valid[name]:
                    wdg.tooltip = tip
        self._last_cfg = self._config_values(cfg)
        self.lam_slider.observe(lambda ch: self._on_setting("lam", ch), names="value")
        self.k_slider.observe(lambda ch: self._on_setting("k", ch), names="value")
        self.surrogate_dropdown.observe(lambda ch: self._on_setting("surrogate", ch),
                                        names="value")
        self.lr_slider.observe(lambda ch: self._on_setting("lr", ch), names="value")
        for s in self.weight_sliders:
            s.observe(lambda ch: self._on_setting("weights", ch), names="value")

        # view selectors
        self.sample_slider = W.IntSlider(
            value=min(max(int(sample), 0), max(n_fixed - 1, 0)), min=0, max=max(n_fixed - 1, 0),
            description="validation sample", continuous_update=False, style=_STYLE,
            layout=W.Layout(width="360px", display="" if n_fixed > 1 else "none"),
        )
        self.sample_slider.observe(self._on_view_change, names="value")
        self.slice_slider: W.IntSlider | None = None
        if nd == 3:
            n0 = cfg.size[0]
            idx = n0 // 2 if slice_index is None else min(max(int(slice_index), 0), n0 - 1)
            self.slice_slider = W.IntSlider(
                value=idx, min=0, max=n0 - 1, description="slice (axis 0)",
                continuous_update=False, style=_STYLE, layout=W.Layout(width="360px"),
            )
            self.slice_slider.observe(self._on_view_change, names="value")

        # figures
        loss_cols = [c for c in run.history["steps"] if c not in ("step", "lr", "lam")]
        self._curves = _Curves(loss_cols, nd, title=f"training history · loss {self._loss}")
        self._recon: _ReconView | None = None
        self._recon_box = W.Box([])
        if val is not None:  # build the figure now, not while the run trains
            self._show_recon(self._waiting_parts(val))
        else:
            self._recon_box.children = (_placeholder(
                "the reconstruction appears after the run's first evaluation"),)
        self._export = _DashboardExport(self.figures, export_dir, formats=_formats())
        self.export_button = self._export.button

        view_row: list[W.Widget] = [self.sample_slider]
        if self.slice_slider is not None:
            view_row.append(self.slice_slider)
        self.widget = W.VBox([
            self.status,
            W.HBox([self.buttons[b] for b in _BUTTONS]),
            W.HBox([self.lam_slider, self.k_slider, self.surrogate_dropdown]),
            W.HBox([*self.weight_sliders, self.lr_slider]),
            self.message,
            self._curves.fig,
            W.HBox(view_row),
            self._recon_box,
            self._export.widget,
        ])
        self.refresh()
        if autorefresh:
            self._ensure_refresher()

    # ---------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---------------------------------------------------------------- public API

    @property
    def history_figure(self) -> go.FigureWidget:
        return self._curves.fig

    @property
    def recon_figure(self) -> go.FigureWidget | None:
        return None if self._recon is None else self._recon.fig

    @property
    def refreshing(self) -> bool:
        """Whether the refresher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self) -> dict[str, Any]:
        """Refresh everything now, synchronously (whatever changed or not); returns :meth:`state`.

        Safe to call while the refresher thread runs (they take turns).
        """
        if not self._closed:
            self._tick(force=True)
        return self.state()

    def state(self) -> dict[str, Any]:
        """What the dashboard displays now.

        Returns
        -------
        dict
            ``step`` (the run's step at the last refresh), ``total_steps``, ``run_state``,
            ``snapshot_step`` (the evaluation the reconstruction shows, or None),
            ``steps_per_s``, ``device``, the slider values ``lam``, ``k``, ``weights``,
            ``surrogate``, ``lr``, ``enabled`` (which settings are live for this loss),
            ``buttons`` (name -> enabled), ``metrics`` and ``loss`` (of the shown evaluation),
            ``history_points`` (curve key -> number of points drawn), ``status`` (the status
            line as text), ``error`` (the run's error summary or None), ``refreshing``,
            ``n_redraws`` (figure redraws so far) and ``cpu_seconds`` (CPU time spent in
            refreshes so far).
        """
        snap = self._snapshot or {}
        return {
            "step": self._shown["step"],
            "total_steps": int(self.run.config.steps),
            "run_state": self._shown["state"],
            "snapshot_step": snap.get("step"),
            "steps_per_s": self._rate(),
            "device": str(self.run.device),
            "lam": float(self.lam_slider.value),
            "k": float(self.k_slider.value),
            "weights": tuple(float(s.value) for s in self.weight_sliders),
            "surrogate": str(self.surrogate_dropdown.value),
            "lr": float(self.lr_slider.value),
            "enabled": dict(self._valid),
            "buttons": {name: not b.disabled for name, b in self.buttons.items()},
            "metrics": dict(snap.get("metrics", {})),
            "loss": dict(snap.get("loss", {})),
            "history_points": self._curves.points(),
            "status": self._status_text,
            "error": self._error_text,
            "refreshing": self.refreshing,
            "n_redraws": self.n_redraws,
            "cpu_seconds": self.cpu_seconds,
        }

    def figures(self) -> dict[str, go.Figure]:
        """Copies of the current figures: ``training_history`` and ``reconstruction``."""
        with self._lock:
            out = {"training_history": go.Figure(self._curves.fig)}
            if self._recon is not None:
                out["reconstruction"] = go.Figure(self._recon.fig)
        return out

    def export(self, directory: str | Path | None = None, *,
               formats: str | Sequence[str] | None = None) -> list[Path]:
        """Write the current figures (what the Export button does) and return the paths.

        Parameters
        ----------
        directory : str or os.PathLike, optional
            Default: the export box's directory.
        formats : str or sequence of str, optional
            Default: the format chosen in the widget.
        """
        from dsl_explore.export import save_figures

        if directory is None and formats is None:
            return self._export.export()
        d = Path(self._export.directory.value if directory is None else directory)
        fmts = (self._export.format.value,) if formats is None else formats
        return save_figures(self.figures(), d, formats=fmts)

    @property
    def export_panel(self) -> ExportPanel:
        """The export controls (directory, format, button, status)."""
        return self._export

    def close(self) -> None:
        """Stop the refresher and close the widgets; the run goes on untouched."""
        self._closed = True
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)
        with self._lock:
            for fig in (self._curves.fig, None if self._recon is None else self._recon.fig):
                if fig is not None:
                    fig.close()

            def walk(w: W.Widget) -> None:
                for child in getattr(w, "children", ()):
                    walk(child)
                w.close()

            walk(self.widget)

    # ---------------------------------------------------------------- refresher

    def _ensure_refresher(self) -> None:
        if self._closed or self.refreshing:
            return
        self._thread = threading.Thread(target=self._loop, name="dsl_explore-dashboard",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = 1.0 / self.refresh_hz
        while not self._closed:
            try:
                self._tick(force=False)
            except Exception as exc:  # never silently: shown in the message line
                self._report(exc, "refresh")
            ended = self.run.state in _TERMINAL and not self.run.is_alive()
            self._wake.wait(_IDLE_PERIOD_S if ended else period)
            self._wake.clear()

    def _report(self, exc: Exception, where: str) -> None:
        self.last_error = exc
        text = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(Exception):
            self._on_ui(lambda: set_status(self.message, f"error in {where}: {text}",
                                           level="error"))

    def _on_ui(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (widget updates) where it is safe, holding the widget lock.

        In a kernel, from another thread: on the kernel's event loop (``io_loop.add_callback``)
        so it never interleaves with the kernel's own handling of widget messages from the
        browser. If the loop does not take it within ``_UI_WAIT_S`` the kernel is busy running
        a cell (and handles no widget messages meanwhile): then it runs here, so the view keeps
        refreshing during a blocking cell such as ``run.join()``. Without a kernel, or on the
        kernel's thread: here.
        """
        loop = _kernel_loop()
        if loop is None or threading.current_thread() is threading.main_thread():
            with self._lock:
                fn()
            return
        claim_lock = threading.Lock()
        claimed: list[str] = []
        done = threading.Event()

        def claim(who: str) -> bool:
            with claim_lock:
                if claimed:
                    return False
                claimed.append(who)
                return True

        def on_loop() -> None:
            if not claim("loop"):
                return
            try:
                with self._lock:
                    fn()
            except Exception as exc:
                self.last_error = exc
            finally:
                done.set()

        loop.add_callback(on_loop)
        if done.wait(_UI_WAIT_S):
            return
        if claim("here"):
            with self._lock:
                fn()
        else:
            done.wait()

    def _tick(self, *, force: bool) -> None:
        """One refresh: cheap checks every time, redraws only when something changed.

        The data are read and the figures computed on the calling thread; the widgets are
        updated through :meth:`_on_ui`. Redraws are rate-limited by their own cost: after one
        that took ``c`` seconds of CPU, the next waits at least ``c / _MAX_DUTY`` (and
        ``1 / refresh_hz``), so the dashboard never takes more than a few percent of the
        interpreter from the training thread. A change of the run's state (paused, stopped,
        finished, failed) is drawn at once.
        """
        with self._tick_lock:
            if self._closed:
                return
            run = self.run
            now = time.monotonic()
            c0 = time.thread_time()
            state, step = run.state, int(run.step)
            if state == "running":
                self._rates.append((now, step))
            else:
                self._rates.clear()
            snap = run.snapshot()
            snap_step = None if snap is None else snap.get("step")
            drawn = self._drawn
            changed = (
                snap_step != drawn["snap_step"]
                or state != drawn["state"]
                or (state != "running" and step != drawn["step"])
            )
            due = force or state != drawn["state"] or now >= self._next_redraw
            redraw = (changed and due) or force
            hist = run.history if redraw else None
            parts = self._recon_parts(snap) if redraw and snap is not None else None
            cost = [time.thread_time() - c0]
            built = [False]

            def apply() -> None:
                if self._closed:
                    return
                t0 = time.thread_time()
                if redraw:
                    self._curves.update(hist)
                    if parts is not None:
                        self._snapshot = snap
                        built[0] = self._show_recon(parts)
                    drawn.update(snap_step=snap_step, state=state, step=step)
                    self.n_redraws += 1
                self._shown.update(state=state, step=step)
                self._sync_settings()
                self._update_buttons(state, step)
                self._update_status(state, step)
                cost[0] += time.thread_time() - t0

            self._on_ui(apply)
            self.cpu_seconds += cost[0]
            if redraw:
                # building the reconstruction figure is a one-time cost: it sets no pace
                c = 0.0 if built[0] else cost[0]
                wait = min(max(1.0 / self.refresh_hz, c / _MAX_DUTY), _MAX_REDRAW_WAIT_S)
                self._next_redraw = now + wait

    def _recon_parts(self, snap: Mapping[str, Any]) -> Any:
        from dsl_explore.run_figures import _recon_parts

        rec, tgt = snap["reconstruction"], snap["target"]
        s = min(int(self.sample_slider.value), rec.shape[0] - 1)
        cfg = snap.get("config") or self.run.config.to_dict()
        return _recon_parts(
            tgt[s, 0], rec[s, 0], k=float(cfg["k"]), weights=cfg.get("weights"),
            surrogate=str(cfg.get("surrogate", "tanh")),
            slice_index=None if self.slice_slider is None else int(self.slice_slider.value),
            title_prefix=f"step {snap['step']} · validation sample {s}", max_markers=2000,
        )

    def _waiting_parts(self, val: np.ndarray) -> Any:
        """The reconstruction view before the first evaluation: the target in both panels."""
        from dsl_explore.run_figures import _recon_parts

        cfg = self.run.config
        s = min(int(self.sample_slider.value), val.shape[0] - 1)
        return _recon_parts(
            val[s, 0], val[s, 0], k=cfg.k, weights=cfg.weights, surrogate=cfg.surrogate,
            slice_index=None if self.slice_slider is None else int(self.slice_slider.value),
            title_prefix=f"validation sample {s} · waiting for the first evaluation: both "
            "panels show the target", max_markers=2000,
        )

    def _show_recon(self, parts: Any) -> bool:
        """Draw ``parts``; returns whether a new figure was built (call with the widget lock)."""
        if self._recon is not None and self._recon.fits(parts):
            self._recon.update(parts)
            return False
        old = self._recon
        self._recon = _ReconView(parts)
        self._recon_box.children = (self._recon.fig,)
        if old is not None:
            old.fig.close()
        return True

    def _rate(self) -> float | None:
        """Steps/s over the last ~5 s while running; the run's mean otherwise."""
        r = list(self._rates)
        if len(r) >= 2:
            t_end, s_end = r[-1]
            t0, s0 = next(((t, s) for t, s in r if t_end - t <= 5.0), r[0])
            if t_end - t0 > 0.2:
                return (s_end - s0) / (t_end - t0)
        sps = self.run.seconds_per_step
        return 1.0 / sps if sps == sps and sps > 0 else None

    def _update_status(self, state: str, step: int) -> None:
        rate = self._rate()
        mean = state != "running"
        rate_txt = "–" if rate is None else f"{rate:.3g}"
        total = self.run.config.steps
        line = (f"step {step} / {total} · {rate_txt} steps/s{' (mean)' if mean else ''} · "
                f"device {self.run.device} · {state}")
        snap = self._snapshot
        if snap is not None:
            m = snap.get("metrics", {})
            loss = snap.get("loss", {})
            parts = [f"evaluation at step {snap.get('step')}"]
            if "total" in loss:
                parts.append(f"loss {loss['total']:.4g}")
            if "count_rate" in m:
                parts.append(f"count rate {m['count_rate']:.3g}")
            if "betti_total" in m:
                parts.append(f"Betti error {m['betti_total']:.3g}")
            if "spurious" in m:
                parts.append(f"critical points/sample: {m['spurious']:.3g} spurious, "
                             f"{m['lost']:.3g} lost, {m['changed']:.3g} changed")
            line += "\n" + " · ".join(parts)
        level = {"running": "busy", "finished": "ok", "failed": "error"}.get(state, "info")
        self._error_text = self._error_summary() if state == "failed" or \
            self.run.error is not None else None
        if self._error_text:
            line += "\n" + self._error_text
            level = "error"
        if line != self._status_text:
            self._status_text = line
            set_status(self.status, line, level=level)

    def _error_summary(self) -> str | None:
        exc = self.run.error
        if exc is None:
            return None
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            f = frames[-1]
            where = f"\n  at {Path(f.filename).name}:{f.lineno} in {f.name}: {f.line or ''}"
        head = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return f"training failed at step {self.run.step}: {head}{where}"

    def _update_buttons(self, state: str, step: int) -> None:
        enabled = _enabled_buttons(state, step, self.run.config.steps)
        for name, ok in enabled.items():
            b = self.buttons[name]
            if b.disabled == ok:
                b.disabled = not ok
        label = "Continue" if state == "stopped" else "Start"
        if self.buttons["start"].description != label:
            self.buttons["start"].description = label
        live = state not in ("finished", "failed")
        for name, widgets in self._setting_widgets().items():
            for wdg in widgets:
                want = not (self._valid[name] and live)
                if wdg.disabled != want:
                    wdg.disabled = want

    # ---------------------------------------------------------------- settings

    def _setting_widgets(self) -> dict[str, list[W.Widget]]:
        return {
            "lam": [self.lam_slider],
            "k": [self.k_slider],
            "weights": list(self.weight_sliders),
            "surrogate": [self.surrogate_dropdown],
            "lr": [self.lr_slider],
        }

    @staticmethod
    def _config_values(cfg: Any) -> dict[str, Any]:
        w = cfg.weights if cfg.weights is not None else (1.0,) * cfg.spatial_dims
        return {"lam": float(cfg.lam), "k": float(cfg.k), "weights": tuple(map(float, w)),
                "surrogate": cfg.surrogate, "lr": float(cfg.lr)}

    def _sync_settings(self) -> None:
        """Show settings changed elsewhere (``run.set`` in a cell) once the run applied them."""
        now = self._config_values(self.run.config)
        changed = {k: v for k, v in now.items() if v != self._last_cfg.get(k)}
        self._last_cfg = now
        if not changed:
            return
        self._tls.syncing = True
        try:
            for key, v in changed.items():
                if key == "weights":
                    for s, wv in zip(self.weight_sliders, v, strict=True):
                        s.max = max(s.max, wv)
                        s.value = wv
                elif key == "surrogate":
                    self.surrogate_dropdown.value = v
                elif key == "lam":
                    self.lam_slider.max = max(self.lam_slider.max, v)
                    self.lam_slider.value = v
                else:
                    sl = self.k_slider if key == "k" else self.lr_slider
                    e = math.log10(v)
                    sl.min, sl.max = min(sl.min, math.floor(e)), max(sl.max, math.ceil(e))
                    sl.value = v
        finally:
            self._tls.syncing = False

    @guarded(lambda self: self.message)
    def _on_setting(self, name: str, change: Any) -> None:
        if getattr(self._tls, "syncing", False):
            return
        if name == "weights":
            value: Any = tuple(float(s.value) for s in self.weight_sliders)
        elif name == "surrogate":
            value = str(self.surrogate_dropdown.value)
        else:
            value = float(change["new"])
        self.run.set(**{name: value})
        shown = ", ".join(f"{v:g}" for v in value) if name == "weights" else (
            value if isinstance(value, str) else f"{value:.4g}")
        when = "before the next step" if self.run.state in ("running", "paused", "created",
                                                              "stopped") else "if it restarts"
        set_status(self.message, f"set {name} = {shown} (applied {when})", level="ok")
        self._wake.set()

    @guarded(lambda self: self.message)
    def _on_view_change(self, change: Any) -> None:
        snap = self._snapshot
        val = getattr(self.run, "val_data", None)
        if snap is None and val is None:
            return
        parts = self._recon_parts(snap) if snap is not None else self._waiting_parts(val)
        with self._lock:
            self._show_recon(parts)

    # ---------------------------------------------------------------- buttons

    @guarded(lambda self: self.message)
    def _on_start(self) -> None:
        self.run.start()
        set_status(self.message, "training started", level="ok")
        self._ensure_refresher()
        self._wake.set()

    @guarded(lambda self: self.message)
    def _on_pause(self) -> None:
        self.run.pause(wait=False)
        set_status(self.message, "pausing after the current step", level="info")
        self._wake.set()

    @guarded(lambda self: self.message)
    def _on_resume(self) -> None:
        self.run.resume()
        set_status(self.message, "resumed", level="ok")
        self._ensure_refresher()
        self._wake.set()

    @guarded(lambda self: self.message)
    def _on_stop(self) -> None:
        self.run.stop(wait=False)
        set_status(self.message, "stopping after the current step", level="info")
        self._wake.set()

    @guarded(lambda self: self.message)
    def _on_checkpoint(self) -> Path:
        run = self.run
        path = None
        if run.run_dir is None:
            base = Path(self._export.directory.value.strip() or ".").expanduser()
            path = base / "checkpoints" / f"step_{int(run.step):08d}.pt"
        written = run.checkpoint(path)
        set_status(self.message, f"checkpoint written: {written}", level="ok")
        return written


def _formats() -> tuple[str, ...]:
    """The export formats offered, PNG first when a browser for kaleido is found."""
    from dsl_explore.notebook import figure_formats

    rest = ("svg", "pdf")
    return ("png", *rest, "html") if figure_formats() == ("png",) else ("html", "png", *rest)

