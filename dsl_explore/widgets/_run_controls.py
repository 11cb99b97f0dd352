"""The dashboard's controls: the run's buttons, the live settings and the view selectors, and
what they do to the run (:class:`RunActions`).

:class:`RunControls` owns the widgets and their values; the dashboard registers what a button,
a setting or a view change does (:meth:`~RunControls.on_button`,
:meth:`~RunControls.on_setting`, :meth:`~RunControls.on_view`). Settings the run's loss does not
use are disabled. :meth:`~RunControls.sync` moves the sliders to settings changed elsewhere
(``run.set`` in a cell) without calling back (:attr:`~RunControls.syncing`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from dsl_explore.widgets._common import (
    ResetButton,
    guarded,
    log_k_slider,
    set_status,
    surrogate_dropdown,
    weight_sliders,
)

__all__ = ["BUTTONS", "SETTINGS", "RunActions", "RunControls", "config_values",
           "enabled_buttons"]

BUTTONS = ("start", "pause", "resume", "stop", "checkpoint")
"""The run's buttons, left to right."""

SETTINGS = ("lam", "k", "weights", "surrogate", "lr")
"""The live settings with a control."""

_STYLE = {"description_width": "initial"}
_ICONS = {"start": "play", "pause": "pause", "resume": "play", "stop": "stop",
          "checkpoint": "save"}
_TIPS = {"start": "start training in the background", "pause": "pause after this step",
         "resume": "continue a paused run", "stop": "stop after this step (final "
         "checkpoint and history are written when the run has a run directory)",
         "checkpoint": "write a checkpoint now"}


def enabled_buttons(state: str, step: int, total: int) -> dict[str, bool]:
    """Which buttons make sense in a run state.

    Examples
    --------
    >>> enabled_buttons("paused", 3, 10)
    {'start': False, 'pause': False, 'resume': True, 'stop': True, 'checkpoint': True}
    """
    return {
        "start": state == "created" or (state == "stopped" and step < total),
        "pause": state == "running",
        "resume": state == "paused",
        "stop": state in ("running", "paused"),
        "checkpoint": state != "failed",
    }


def config_values(cfg: Any) -> dict[str, Any]:
    """The live settings of a training config, as the controls show them."""
    w = cfg.weights if cfg.weights is not None else (1.0,) * cfg.spatial_dims
    return {"lam": float(cfg.lam), "k": float(cfg.k), "weights": tuple(map(float, w)),
            "surrogate": cfg.surrogate, "lr": float(cfg.lr)}


class RunControls:
    """Buttons, live-setting sliders and view selectors of a training run's dashboard.

    Parameters
    ----------
    cfg : TrainingConfig
        The run's config (initial values, the loss, the sizes).
    n_fixed : int
        Samples of the fixed validation batch (the sample slider spans them).
    sample, slice_index
        The sample and (3D) axis-0 slice shown first.
    """

    def __init__(self, cfg: Any, *, n_fixed: int, sample: int = 0,
                 slice_index: int | None = None) -> None:
        self.buttons = {
            name: W.Button(description=name.capitalize(), icon=_ICONS[name], tooltip=_TIPS[name],
                           layout=W.Layout(width="118px"))
            for name in BUTTONS
        }
        self._make_settings(cfg)
        loss = cfg.loss
        self.valid = {"lam": loss != "mse", "k": loss == "mse+dsl",
                      "weights": loss == "mse+dsl", "surrogate": loss == "mse+dsl", "lr": True}
        tip = f"not used by loss={loss!r}"
        for name, widgets in self.setting_widgets().items():
            for wdg in widgets:
                wdg.disabled = not self.valid[name]
                if not self.valid[name]:
                    wdg.tooltip = tip
        self._last_cfg = config_values(cfg)
        self._tls = threading.local()
        self._make_view_selectors(cfg, n_fixed, sample, slice_index)
        self._state_listeners: list[Callable[[str, int], None]] = []
        # back to the run's starting settings (each change reaches the run like a drag)
        self.reset = ResetButton(
            [self.lam_slider, self.k_slider, self.surrogate_dropdown, *self.weight_sliders,
             self.lr_slider], description="Reset",
        )
        self.reset_button = self.reset.button

    def _make_settings(self, cfg: Any) -> None:
        # continuous_update=False: one run.set per release, not per pixel
        self.lam_slider = W.FloatSlider(
            value=cfg.lam, min=0.0, max=max(2.0, 2.0 * cfg.lam), step=0.01,
            description="λ (lambda)", readout_format=".3g", continuous_update=False,
            style=_STYLE, layout=W.Layout(width="360px"),
        )
        self.k_slider = log_k_slider(cfg.k, continuous_update=False)
        self.surrogate_dropdown = surrogate_dropdown(cfg.surrogate)
        w0 = cfg.weights if cfg.weights is not None else (1.0,) * cfg.spatial_dims
        self.weight_sliders = weight_sliders(cfg.spatial_dims, w0, continuous_update=False)
        lr_exp = math.log10(cfg.lr)
        self.lr_slider = W.FloatLogSlider(
            value=cfg.lr, base=10, min=min(-6.0, math.floor(lr_exp)),
            max=max(-1.0, math.ceil(lr_exp)), step=0.05, description="learning rate",
            readout_format=".2e", continuous_update=False, style=_STYLE,
            layout=W.Layout(width="380px"),
        )

    def _make_view_selectors(self, cfg: Any, n_fixed: int, sample: int,
                             slice_index: int | None) -> None:
        self.sample_slider = W.IntSlider(
            value=min(max(int(sample), 0), max(n_fixed - 1, 0)), min=0, max=max(n_fixed - 1, 0),
            description="validation sample", continuous_update=False, style=_STYLE,
            layout=W.Layout(width="360px", display="" if n_fixed > 1 else "none"),
        )
        self.slice_slider: W.IntSlider | None = None
        if cfg.spatial_dims == 3:
            n0 = cfg.size[0]
            idx = n0 // 2 if slice_index is None else min(max(int(slice_index), 0), n0 - 1)
            self.slice_slider = W.IntSlider(
                value=idx, min=0, max=n0 - 1, description="slice (axis 0)",
                continuous_update=False, style=_STYLE, layout=W.Layout(width="360px"),
            )

    # ---------------------------------------------------------------- callbacks

    def on_button(self, name: str, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` when the button ``name`` (one of :data:`BUTTONS`) is clicked."""
        self.buttons[name].on_click(lambda _b: fn())

    def on_setting(self, fn: Callable[[str, Any], None]) -> None:
        """Call ``fn(name, change)`` when the control of a setting (:data:`SETTINGS`) moves."""
        self.lam_slider.observe(lambda ch: fn("lam", ch), names="value")
        self.k_slider.observe(lambda ch: fn("k", ch), names="value")
        self.surrogate_dropdown.observe(lambda ch: fn("surrogate", ch), names="value")
        self.lr_slider.observe(lambda ch: fn("lr", ch), names="value")
        for s in self.weight_sliders:
            s.observe(lambda ch: fn("weights", ch), names="value")

    def on_state(self, fn: Callable[[str, int], None]) -> None:
        """Call ``fn(state, step)`` each time the dashboard shows the run's state."""
        self._state_listeners.append(fn)

    def on_view(self, fn: Callable[[Any], None]) -> None:
        """Call ``fn(change)`` when the sample or the slice shown changes."""
        self.sample_slider.observe(fn, names="value")
        if self.slice_slider is not None:
            self.slice_slider.observe(fn, names="value")

    # ---------------------------------------------------------------- values

    def setting_widgets(self) -> dict[str, list[W.Widget]]:
        """Setting name -> its widgets."""
        return {
            "lam": [self.lam_slider],
            "k": [self.k_slider],
            "weights": list(self.weight_sliders),
            "surrogate": [self.surrogate_dropdown],
            "lr": [self.lr_slider],
        }

    def setting_value(self, name: str, change: Any) -> Any:
        """The value of setting ``name`` after ``change`` (the weights: all of them)."""
        if name == "weights":
            return tuple(float(s.value) for s in self.weight_sliders)
        if name == "surrogate":
            return str(self.surrogate_dropdown.value)
        return float(change["new"])

    def values(self) -> dict[str, Any]:
        """The values shown: ``lam``, ``k``, ``weights``, ``surrogate``, ``lr``."""
        return {
            "lam": float(self.lam_slider.value),
            "k": float(self.k_slider.value),
            "weights": tuple(float(s.value) for s in self.weight_sliders),
            "surrogate": str(self.surrogate_dropdown.value),
            "lr": float(self.lr_slider.value),
        }

    @property
    def syncing(self) -> bool:
        """True while :meth:`sync` moves the controls (on this thread)."""
        return bool(getattr(self._tls, "syncing", False))

    def sync(self, cfg: Any) -> None:
        """Show settings changed elsewhere (``run.set`` in a cell) once the run applied them."""
        now = config_values(cfg)
        changed = {k: v for k, v in now.items() if v != self._last_cfg.get(k)}
        self._last_cfg = now
        if not changed:
            return
        self._tls.syncing = True
        try:
            for key, v in changed.items():
                self._show(key, v)
        finally:
            self._tls.syncing = False

    def _show(self, key: str, v: Any) -> None:
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

    def update_buttons(self, state: str, step: int, total: int) -> None:
        """Enable what makes sense in ``state``; settings stay live until the run ends."""
        for name, ok in enabled_buttons(state, step, total).items():
            b = self.buttons[name]
            if b.disabled == ok:
                b.disabled = not ok
        label = "Continue" if state == "stopped" else "Start"
        if self.buttons["start"].description != label:
            self.buttons["start"].description = label
        live = state not in ("finished", "failed")
        for name, widgets in self.setting_widgets().items():
            for wdg in widgets:
                want = not (self.valid[name] and live)
                if wdg.disabled != want:
                    wdg.disabled = want
        if self.reset_button.disabled == live:
            self.reset_button.disabled = not live
        for fn in list(self._state_listeners):
            fn(state, step)

    # ---------------------------------------------------------------- layout

    def rows(self) -> tuple[W.Widget, W.Widget, W.Widget]:
        """The button row and the two setting rows."""
        return (
            W.HBox([*(self.buttons[b] for b in BUTTONS), self.reset_button]),
            W.HBox([self.lam_slider, self.k_slider, self.surrogate_dropdown]),
            W.HBox([*self.weight_sliders, self.lr_slider]),
        )

    def view_row(self) -> W.HBox:
        """The sample slider (and the slice slider for 3D runs)."""
        row: list[W.Widget] = [self.sample_slider]
        if self.slice_slider is not None:
            row.append(self.slice_slider)
        return W.HBox(row)


class RunActions:
    """What the buttons and the setting controls do to the run.

    Each action reports its result in ``message`` (class ``dsl-status``); an exception is shown
    there too (:func:`~dsl_explore.widgets._common.guarded`) and handed to ``on_error``.

    Parameters
    ----------
    run : TrainingRun
        The run steered.
    controls : RunControls
        Where setting values are read.
    message : ipywidgets.HTML
        The message line.
    wake, ensure_refresher : callable
        Refresh now; start the refresher thread (after start and resume).
    checkpoint_dir : callable
        The directory of ``checkpoints/step_*.pt`` for a run without a run directory.
    on_error : callable
        Called with an action's exception.
    """

    def __init__(self, run: Any, controls: RunControls, message: W.HTML, *,
                 wake: Callable[[], None], ensure_refresher: Callable[[], None],
                 checkpoint_dir: Callable[[], Path],
                 on_error: Callable[[Exception], None]) -> None:
        self.run, self.controls, self.message = run, controls, message
        self._wake, self._ensure = wake, ensure_refresher
        self._checkpoint_dir, self._on_error = checkpoint_dir, on_error
        self._last_error: Exception | None = None
        # a "...ing after the current step" message waits for these states to replace itself
        self._pending: tuple[tuple[str, ...], str] | None = None
        for name in BUTTONS:
            controls.on_button(name, getattr(self, f"on_{name}"))
        controls.on_setting(self.on_setting)
        controls.on_state(self.settle)

    def settle(self, state: str, step: int) -> None:
        """Replace a pending "pausing/stopping after the current step" once the run got there
        (called with every state the dashboard shows)."""
        pending = self._pending
        if pending is None or state not in pending[0]:
            return
        self._pending = None
        verb = "finished" if state == "finished" else pending[1]
        set_status(self.message, f"{verb} at step {step}", level="ok")

    @property
    def last_error(self) -> Exception | None:
        return self._last_error

    @last_error.setter
    def last_error(self, exc: Exception | None) -> None:
        self._last_error = exc
        if exc is not None:
            self._on_error(exc)

    @guarded(lambda self: self.message)
    def on_setting(self, name: str, change: Any) -> None:
        if self.controls.syncing:
            return
        value = self.controls.setting_value(name, change)
        self.run.set(**{name: value})
        shown = ", ".join(f"{v:g}" for v in value) if name == "weights" else (
            value if isinstance(value, str) else f"{value:.4g}")
        when = "before the next step" if self.run.state in ("running", "paused", "created",
                                                              "stopped") else "if it restarts"
        set_status(self.message, f"set {name} = {shown} (applied {when})", level="ok")
        self._wake()

    @guarded(lambda self: self.message)
    def on_start(self) -> None:
        self.run.start()
        self._pending = None
        set_status(self.message, "training started", level="ok")
        self._ensure()
        self._wake()

    @guarded(lambda self: self.message)
    def on_pause(self) -> None:
        self.run.pause(wait=False)
        self._pending = (("paused", "stopped", "finished"), "paused")
        set_status(self.message, "pausing after the current step", level="info")
        self._wake()

    @guarded(lambda self: self.message)
    def on_resume(self) -> None:
        self.run.resume()
        self._pending = None
        set_status(self.message, "resumed", level="ok")
        self._ensure()
        self._wake()

    @guarded(lambda self: self.message)
    def on_stop(self) -> None:
        self.run.stop(wait=False)
        self._pending = (("stopped", "finished"), "stopped")
        set_status(self.message, "stopping after the current step", level="info")
        self._wake()

    @guarded(lambda self: self.message)
    def on_checkpoint(self) -> Path:
        run = self.run
        path = None
        if run.run_dir is None:
            path = self._checkpoint_dir() / "checkpoints" / f"step_{int(run.step):08d}.pt"
        written = run.checkpoint(path)
        set_status(self.message, f"checkpoint written: {written}", level="ok")
        return written
