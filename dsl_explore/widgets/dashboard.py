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

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from dsl_explore.plots.recon import ReconParts, recon_parts
from dsl_explore.widgets._common import (
    ExportPanel,
    FiguresExportPanel,
    export_formats,
    guarded,
    set_status,
    status_html,
)
from dsl_explore.widgets._dashboard_views import CurvesView, ReconView, StatusLine, placeholder
from dsl_explore.widgets._refresh import Refresher, run_on_ui
from dsl_explore.widgets._run_controls import RunControls

__all__ = ["TrainingDashboard"]

_TERMINAL = ("finished", "stopped", "failed")
_MAX_DUTY = 0.02  # redraws take at most this share of the refresher's wall time (CPU)
_MAX_REDRAW_WAIT_S = 5.0  # ... but a new evaluation is drawn within this many seconds


@dataclass
class _Frame:
    """One refresh: what was read from the run, and what drawing it cost."""

    redraw: bool
    state: str
    step: int
    snap: dict[str, Any] | None
    snap_step: Any
    hist: Mapping[str, Any] | None
    parts: ReconParts | None
    cost: float = 0.0  # CPU seconds (reading, computing, drawing)
    built: bool = False  # a new reconstruction figure was built


class TrainingDashboard:
    """A live view and the controls of a :class:`~dsl_explore.training.TrainingRun`.

    See the module docstring for what it shows and how it refreshes. It is assembled from the
    run's controls (:attr:`controls`: buttons, live settings, view selectors), one view each for
    the curves, the reconstruction and the status line, an export panel and a refresher thread;
    the dashboard reads the run and hands the views what to show.

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
    controls : RunControls
        The buttons, setting sliders and view selectors (the widgets above are its widgets).
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
        self._closed = False
        self._drawn: dict[str, Any] = {"snap_step": None, "state": None, "step": None}
        self._shown: dict[str, Any] = {"state": None, "step": None}
        self._next_redraw = 0.0
        self._snapshot: dict[str, Any] | None = None
        self.n_redraws = 0
        self.cpu_seconds = 0.0  # CPU time of all refreshes so far (reading, computing, drawing)
        self._refresher = Refresher(
            lambda: self._tick(force=False), lambda exc: self._report(exc, "refresh"),
            hz=self.refresh_hz, ended=lambda: run.state in _TERMINAL and not run.is_alive(),
        )
        cfg = run.config
        self.ndim = cfg.spatial_dims
        self._loss = cfg.loss
        self._status_line = StatusLine(run)
        self.status = self._status_line.widget
        self.message = status_html()
        self._make_controls(cfg, sample, slice_index)
        self._make_views(cfg, export_dir)
        self.widget = W.VBox([
            self.status, *self.controls.rows(), self.message, self._curves.fig,
            self.controls.view_row(), self._recon_box, self._export.widget,
        ])
        self.refresh()
        if autorefresh:
            self._ensure_refresher()

    def _make_controls(self, cfg: Any, sample: int, slice_index: int | None) -> None:
        val = getattr(self.run, "val_data", None)
        n_fixed = cfg.eval_samples if val is None else min(cfg.eval_samples, int(val.shape[0]))
        c = self.controls = RunControls(cfg, n_fixed=n_fixed, sample=sample,
                                        slice_index=slice_index)
        self.buttons = c.buttons
        self.lam_slider, self.k_slider, self.lr_slider = c.lam_slider, c.k_slider, c.lr_slider
        self.weight_sliders, self.surrogate_dropdown = c.weight_sliders, c.surrogate_dropdown
        self.sample_slider, self.slice_slider = c.sample_slider, c.slice_slider
        for name, fn in (("start", self._on_start), ("pause", self._on_pause),
                         ("resume", self._on_resume), ("stop", self._on_stop),
                         ("checkpoint", self._on_checkpoint)):
            c.on_button(name, fn)
        c.on_setting(self._on_setting)
        c.on_view(self._on_view_change)

    def _make_views(self, cfg: Any, export_dir: str | Path) -> None:
        loss_cols = [c for c in self.run.history["steps"] if c not in ("step", "lr", "lam")]
        self._curves = CurvesView(loss_cols, cfg.spatial_dims,
                                  title=f"training history · loss {self._loss}")
        self._recon: ReconView | None = None
        self._recon_box = W.Box([])
        val = getattr(self.run, "val_data", None)
        if val is not None:  # build the figure now, not while the run trains
            self._show_recon(self._waiting_parts(val))
        else:
            self._recon_box.children = (placeholder(
                "the reconstruction appears after the run's first evaluation"),)
        self._export = FiguresExportPanel(self.figures, export_dir, formats=export_formats())
        self.export_button = self._export.button

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
        return self._refresher.alive

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
            "steps_per_s": self._status_line.rate(),
            "device": str(self.run.device),
            **self.controls.values(),
            "enabled": dict(self.controls.valid),
            "buttons": {name: not b.disabled for name, b in self.buttons.items()},
            "metrics": dict(snap.get("metrics", {})),
            "loss": dict(snap.get("loss", {})),
            "history_points": self._curves.points(),
            "status": self._status_line.text,
            "error": self._status_line.error_text,
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
        self._refresher.stop()
        with self._lock:
            for fig in (self._curves.fig, None if self._recon is None else self._recon.fig):
                if fig is not None:
                    fig.close()

            def walk(w: W.Widget) -> None:
                for child in getattr(w, "children", ()):
                    walk(child)
                w.close()

            walk(self.widget)

    # ---------------------------------------------------------------- refreshing

    def _ensure_refresher(self) -> None:
        if not self._closed:
            self._refresher.ensure()

    def _report(self, exc: Exception, where: str) -> None:
        self.last_error = exc
        text = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(Exception):
            self._on_ui(lambda: set_status(self.message, f"error in {where}: {text}",
                                           level="error"))

    def _on_ui(self, fn: Any) -> None:
        """Run ``fn`` (widget updates) where it is safe, holding the widget lock
        (:func:`~dsl_explore.widgets._refresh.run_on_ui`)."""
        run_on_ui(fn, self._lock, self._set_last_error)

    def _set_last_error(self, exc: Exception) -> None:
        self.last_error = exc

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
            now = time.monotonic()
            frame = self._read(now, force)
            self._on_ui(lambda: self._apply(frame))
            self.cpu_seconds += frame.cost
            if frame.redraw:
                # building the reconstruction figure is a one-time cost: it sets no pace
                c = 0.0 if frame.built else frame.cost
                wait = min(max(1.0 / self.refresh_hz, c / _MAX_DUTY), _MAX_REDRAW_WAIT_S)
                self._next_redraw = now + wait

    def _read(self, now: float, force: bool) -> _Frame:
        """Read the run and compute what a redraw shows (when one is due)."""
        c0 = time.thread_time()
        run = self.run
        state, step = run.state, int(run.step)
        self._status_line.record(now, state, step)
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
        return _Frame(redraw, state, step, snap, snap_step, hist, parts,
                      cost=time.thread_time() - c0)

    def _apply(self, f: _Frame) -> None:
        """Show a frame (on the UI side, holding the widget lock)."""
        if self._closed:
            return
        t0 = time.thread_time()
        if f.redraw:
            assert f.hist is not None
            self._curves.update(f.hist)
            if f.parts is not None:
                self._snapshot = f.snap
                f.built = self._show_recon(f.parts)
            self._drawn.update(snap_step=f.snap_step, state=f.state, step=f.step)
            self.n_redraws += 1
        self._shown.update(state=f.state, step=f.step)
        self.controls.sync(self.run.config)
        self.controls.update_buttons(f.state, f.step, self.run.config.steps)
        self._status_line.update(f.state, f.step, self._snapshot)
        f.cost += time.thread_time() - t0

    # ---------------------------------------------------------------- reconstruction

    def _view_args(self, n: int) -> tuple[int, int | None]:
        s = min(int(self.sample_slider.value), n - 1)
        return s, None if self.slice_slider is None else int(self.slice_slider.value)

    def _recon_parts(self, snap: Mapping[str, Any]) -> ReconParts:
        rec, tgt = snap["reconstruction"], snap["target"]
        s, slice_index = self._view_args(rec.shape[0])
        cfg = snap.get("config") or self.run.config.to_dict()
        return recon_parts(
            tgt[s, 0], rec[s, 0], k=float(cfg["k"]), weights=cfg.get("weights"),
            surrogate=str(cfg.get("surrogate", "tanh")), slice_index=slice_index,
            title_prefix=f"step {snap['step']} · validation sample {s}", max_markers=2000,
        )

    def _waiting_parts(self, val: np.ndarray) -> ReconParts:
        """The reconstruction view before the first evaluation: the target in both panels."""
        cfg = self.run.config
        s, slice_index = self._view_args(val.shape[0])
        return recon_parts(
            val[s, 0], val[s, 0], k=cfg.k, weights=cfg.weights, surrogate=cfg.surrogate,
            slice_index=slice_index, title_prefix=f"validation sample {s} · waiting for the "
            "first evaluation: both panels show the target", max_markers=2000,
        )

    def _show_recon(self, parts: ReconParts) -> bool:
        """Draw ``parts``; returns whether a new figure was built (call with the widget lock)."""
        if self._recon is not None and self._recon.fits(parts):
            self._recon.update(parts)
            return False
        old = self._recon
        self._recon = ReconView(parts)
        self._recon_box.children = (self._recon.fig,)
        if old is not None:
            old.fig.close()
        return True

    # ---------------------------------------------------------------- callbacks

    @guarded(lambda self: self.message)
    def _on_setting(self, name: str, change: Any) -> None:
        if self.controls.syncing:
            return
        value = self.controls.setting_value(name, change)
        self.run.set(**{name: value})
        shown = ", ".join(f"{v:g}" for v in value) if name == "weights" else (
            value if isinstance(value, str) else f"{value:.4g}")
        when = "before the next step" if self.run.state in ("running", "paused", "created",
                                                              "stopped") else "if it restarts"
        set_status(self.message, f"set {name} = {shown} (applied {when})", level="ok")
        self._refresher.wake()

    @guarded(lambda self: self.message)
    def _on_view_change(self, change: Any) -> None:
        snap = self._snapshot
        val = getattr(self.run, "val_data", None)
        if snap is not None:
            parts = self._recon_parts(snap)
        elif val is not None:
            parts = self._waiting_parts(val)
        else:
            return
        with self._lock:
            self._show_recon(parts)

    @guarded(lambda self: self.message)
    def _on_start(self) -> None:
        self.run.start()
        set_status(self.message, "training started", level="ok")
        self._ensure_refresher()
        self._refresher.wake()

    @guarded(lambda self: self.message)
    def _on_pause(self) -> None:
        self.run.pause(wait=False)
        set_status(self.message, "pausing after the current step", level="info")
        self._refresher.wake()

    @guarded(lambda self: self.message)
    def _on_resume(self) -> None:
        self.run.resume()
        set_status(self.message, "resumed", level="ok")
        self._ensure_refresher()
        self._refresher.wake()

    @guarded(lambda self: self.message)
    def _on_stop(self) -> None:
        self.run.stop(wait=False)
        set_status(self.message, "stopping after the current step", level="info")
        self._refresher.wake()

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
