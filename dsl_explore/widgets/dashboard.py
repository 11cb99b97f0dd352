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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from dsl_explore.widgets._common import (
    ExportPanel,
    FiguresExportPanel,
    close_tree,
    export_formats,
    guarded,
    set_status,
    status_html,
)
from dsl_explore.widgets._dashboard_views import CurvesView, ReconPanel, StatusLine
from dsl_explore.widgets._frames import FramePainter
from dsl_explore.widgets._refresh import Refresher, run_on_ui
from dsl_explore.widgets._run_controls import RunActions, RunControls

__all__ = ["TrainingDashboard"]

_TERMINAL = ("finished", "stopped", "failed")


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
        from dsl_explore.widgets._follow import FollowedRun

        if not isinstance(run, (TrainingRun, FollowedRun)):
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
            self.controls.view_row(), self._recon.box, self._export.widget,
        ])
        self.refresh()
        if autorefresh:
            self._ensure_refresher()

    @classmethod
    def follow(cls, run_dir: str | Path, *, stale_s: float = 60.0, wait_s: float = 30.0,
               refresh_hz: float = 2.0, **kwargs: Any) -> TrainingDashboard:
        """A dashboard of a run that another process trains (``torchrun -m dsl_explore.train``,
        ``dsl-explore train --nproc N``), attached through its run directory.

        The curves grow as rank 0 rewrites ``history.json`` (at every evaluation), the
        reconstruction and its mismatched critical points come from the newest
        ``snapshot.npz``, and the status line from ``status.json``; a run that ended shows as
        finished, stopped or failed (also one whose process is gone or that stopped writing
        for ``stale_s`` seconds). The sliders and pause/resume/stop write ``control.json``
        (:mod:`dsl_explore.training.control_file`), which the run applies on every rank at the
        same step. Works on the same machine or through a shared file system.

        Parameters
        ----------
        run_dir : str or os.PathLike
            The run directory (``--run-dir``).
        stale_s : float
            See above.
        wait_s : float
            Wait this long for the run directory's ``config.toml`` to appear.
        refresh_hz, **kwargs
            As for the constructor.

        Raises
        ------
        FileNotFoundError
            No run directory with a ``config.toml`` after ``wait_s`` seconds.
        """
        from dsl_explore.widgets._follow import FollowedRun

        return cls(FollowedRun(run_dir, stale_s=stale_s, wait_s=wait_s),
                   refresh_hz=refresh_hz, **kwargs)

    def _make_controls(self, cfg: Any, sample: int, slice_index: int | None) -> None:
        val = getattr(self.run, "val_data", None)
        n_fixed = cfg.eval_samples if val is None else min(cfg.eval_samples, int(val.shape[0]))
        c = self.controls = RunControls(cfg, n_fixed=n_fixed, sample=sample,
                                        slice_index=slice_index)
        self.buttons = c.buttons
        self.lam_slider, self.k_slider, self.lr_slider = c.lam_slider, c.k_slider, c.lr_slider
        self.weight_sliders, self.surrogate_dropdown = c.weight_sliders, c.surrogate_dropdown
        self.sample_slider, self.slice_slider = c.sample_slider, c.slice_slider
        self._actions = RunActions(
            self.run, c, self.message, wake=self._refresher.wake,
            ensure_refresher=self._ensure_refresher, on_error=self._set_last_error,
            checkpoint_dir=lambda: Path(self._export.directory.value.strip() or ".").expanduser(),
        )
        c.on_view(self._on_view_change)

    def _make_views(self, cfg: Any, export_dir: str | Path) -> None:
        loss_cols = [c for c in self.run.history["steps"] if c not in ("step", "lr", "lam")]
        self._curves = CurvesView(loss_cols, cfg.spatial_dims,
                                  title=f"training history · loss {self._loss}")
        self._recon = ReconPanel(self.run, self.controls)
        self._painter = FramePainter(self.run, curves=self._curves, recon=self._recon,
                                     controls=self.controls, status=self._status_line,
                                     refresh_hz=self.refresh_hz)
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
        return self._recon.figure

    @property
    def n_redraws(self) -> int:
        """Figure redraws so far."""
        return self._painter.n_redraws

    @property
    def cpu_seconds(self) -> float:
        """CPU time of all refreshes so far (reading, computing, drawing)."""
        return self._painter.cpu_seconds

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
        snap = self._painter.snapshot or {}
        shown = self._painter.shown
        return {
            "step": shown["step"],
            "total_steps": int(self.run.config.steps),
            "run_state": shown["state"],
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
            if self._recon.figure is not None:
                out["reconstruction"] = go.Figure(self._recon.figure)
        return out

    def export(self, directory: str | Path | None = None, *,
               formats: str | Sequence[str] | None = None) -> list[Path]:
        """Write the current figures (what the Export button does) and return the paths.

        Parameters
        ----------
        directory : str or os.PathLike, optional
            Default: the export box's directory.
        formats : str or sequence of str, optional
            Default: the formats toggled on in the widget.
        """
        from dsl_explore.export import save_figures

        if directory is None and formats is None:
            return self._export.export()
        d = Path(self._export.directory.value if directory is None else directory)
        fmts = self._export.selected_formats() if formats is None else formats
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
            for fig in (self._curves.fig, self._recon.figure):
                if fig is not None:
                    fig.close()
            close_tree(self.widget)

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
        """One refresh: cheap checks every time, redraws only when something changed (and
        paced by their cost; see :mod:`~dsl_explore.widgets._frames`).

        The data are read and the figures computed on the calling thread; the widgets are
        updated through :meth:`_on_ui`.
        """
        with self._tick_lock:
            if self._closed:
                return
            now = time.monotonic()
            frame = self._painter.read(now, force)
            self._on_ui(lambda: None if self._closed else self._painter.show(frame))
            self._painter.account(now, frame)

    # ---------------------------------------------------------------- callbacks

    @guarded(lambda self: self.message)
    def _on_view_change(self, change: Any) -> None:
        snap = self._painter.snapshot
        val = getattr(self.run, "val_data", None)
        if snap is not None:
            parts = self._recon.parts(snap)
        elif val is not None:
            parts = self._recon.waiting_parts(val)
        else:
            return
        with self._lock:
            self._recon.show(parts)
