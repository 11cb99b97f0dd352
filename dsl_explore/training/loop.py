"""The training loop: steps, the loss buffer, evaluations, live changes and listeners.

:class:`TrainingLoop` is the engine of :class:`~dsl_explore.training.TrainingRun`: between two
steps it applies queued live changes (:mod:`~dsl_explore.training.live`); every step it calls
the :class:`~dsl_explore.training.step.Stepper` and keeps the loss terms on the device
(:class:`~dsl_explore.training.history.LossBuffer`); every ``eval_every`` steps it moves them
to the history in one host transfer, evaluates the fixed validation batch, publishes the
snapshot and calls the listeners. Files are left to the subclass (:meth:`_before_loop`,
:meth:`_periodic_checkpoint`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch

from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.control import BackgroundRun
from dsl_explore.training.control_file import ControlChannel
from dsl_explore.training.evaluate import live_metrics
from dsl_explore.training.history import (
    LossBuffer,
    add_event,
    append_eval,
    append_steps,
    new_history,
)
from dsl_explore.training.live import LiveSettings
from dsl_explore.training.metrics import METRICS
from dsl_explore.training.step import Stepper

__all__ = ["TrainingLoop", "progress_postfix"]

_MAX_BUFFER_ROWS = 4096
"""The most loss rows kept on the device between two host transfers."""


def progress_postfix(snapshot: dict[str, Any] | None) -> dict[str, str]:
    """The progress-bar fields of a snapshot: the total loss and the metrics with a ``short``
    name in the registry.

    Examples
    --------
    >>> progress_postfix({"loss": {"total": 0.25}, "metrics": {"count_rate": 0.5}})
    {'loss': '0.25', 'rate': '0.500', 'betti': 'nan'}
    """
    snap = snapshot or {}
    m = snap.get("metrics", {})
    out = {"loss": f"{snap.get('loss', {}).get('total', float('nan')):.4g}"}
    for met in METRICS:
        if met.kind == "eval" and met.short and met.history_key:
            out[met.short] = format(m.get(met.history_key, float("nan")), met.short_fmt)
    return out


class TrainingLoop(BackgroundRun):
    """Steps, evaluations and live changes of one run (see the module docstring).

    Parameters
    ----------
    config : TrainingConfig
        The run's config (``self.config`` follows the live changes).
    stepper : Stepper
        The training backend.
    val_fixed : torch.Tensor
        The fixed validation batch on the training device.
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    """

    def __init__(
        self, config: TrainingConfig, stepper: Stepper, val_fixed: torch.Tensor, *,
        progress: bool,
    ) -> None:
        super().__init__()
        self.config = config
        self.stepper = stepper
        self.progress = bool(progress)
        self.step = 0
        self._val_fixed = val_fixed
        self._history = new_history(config.loss)
        # eval_every rows at most, and never more than _MAX_BUFFER_ROWS: a full buffer is flushed
        # (eval_every = 10**12 must not allocate 10**12 rows)
        self._buffer = LossBuffer(min(config.eval_every, _MAX_BUFFER_ROWS), config.loss,
                                  stepper.device)
        self._live = LiveSettings()
        self._snapshot: dict[str, Any] | None = None
        self._train_seconds, self._timed_steps = 0.0, 0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.control_channel: ControlChannel | None = None  # set to steer from a control file
        self.on_event: Callable[[dict[str, Any]], None] | None = None  # called per new event

    # -- hooks of a subclass -------------------------------------------------------------------

    def _before_loop(self) -> None:
        """Prepare files before the first step."""

    def _periodic_checkpoint(self) -> None:
        """Called every ``checkpoint_every`` steps (before the last one)."""

    # -- public --------------------------------------------------------------------------------

    @property
    def history(self) -> dict[str, Any]:
        """A consistent deep copy of the history (:mod:`dsl_explore.training.history`).

        ``history["steps"]``: per step ``step``, ``mse``, ``dsl`` (``"mse+dsl"``) or ``ph``
        (``"mse+ph"``), ``total``, ``lr``, ``lam``. ``history["evals"]``: per evaluation of the
        fixed validation batch ``step`` and the live metrics of
        :data:`~dsl_explore.training.metrics.METRICS` (``val_mse``, ``count_rate``, ...).
        ``history["events"]``: ``{"step": s, "event": "set", "changes": {...}}``, applied from
        step ``s`` on. The per-step part lags by up to ``eval_every`` steps while it runs.
        """
        with self._lock:
            return copy.deepcopy(self._history)

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a training step (evaluations and checkpoints excluded)."""
        return self._train_seconds / self._timed_steps if self._timed_steps else float("nan")

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call ``fn(snapshot)`` from the training thread after every evaluation.

        An exception in ``fn`` fails the run like any other (never silently).
        """
        self._listeners.append(fn)

    def set(self, **changes: Any) -> None:
        """Change ``lam``, ``k``, ``weights``, ``surrogate`` or ``lr``, live and thread-safe.

        The values are validated now (ValueError), applied before the next step and recorded
        in ``history["events"]`` with that step. ``lam``, ``k``, ``weights`` and ``surrogate``
        need ``loss="mse+dsl"`` (``lam`` also ``"mse+ph"``).
        """
        self._live.request(self.config, changes)

    def snapshot(self) -> dict[str, Any] | None:
        """The latest evaluation of the fixed validation batch (thread-safe), or ``None``.

        A dict with ``step``, ``reconstruction`` and ``target`` (numpy ``(n, C, *spatial)``),
        ``metrics`` (keyed by history column), ``loss`` (the last logged per-step terms),
        ``config`` and ``state``. The arrays are fresh copies, safe to keep.
        """
        with self._lock:
            if self._snapshot is None:
                return None
            return {**self._snapshot, "state": self.state}

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        from tqdm.auto import tqdm

        self._before_loop()
        bar = tqdm(total=self.config.steps, initial=self.step, disable=not self.progress,
                   desc=self.config.loss, unit="step", dynamic_ncols=True)
        try:
            if self.step == 0 and self._snapshot is None:
                self._evaluate()
            while self.step < self.config.steps and self._between_steps():
                if not self._poll_control():
                    break
                self._apply_pending()
                self._one_step()
                bar.update(1)
                self._after_step(bar)
                self._publish("step")
        finally:
            bar.close()

    def _one_step(self) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        terms = self.stepper.step(cfg)
        if self._buffer.full:  # eval_every rows without a flush: make room
            self._flush()
        self._buffer.add(terms, step=self.step + 1, lr=cfg.lr, lam=cfg.lam)
        self._train_seconds += time.perf_counter() - t0
        self._timed_steps += 1
        self.step += 1

    def _after_step(self, bar: Any) -> None:
        cfg = self.config
        if len(self._buffer) >= cfg.eval_every:
            self._flush()
        if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
            self._flush()
            self._evaluate()
            bar.set_postfix(**progress_postfix(self._snapshot), refresh=False)
            for fn in list(self._listeners):
                snap = self.snapshot()
                assert snap is not None  # just evaluated
                fn(snap)
        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
            self._periodic_checkpoint()

    def _apply_pending(self) -> None:
        changes = self._live.take()
        if not changes:
            return
        with self._lock:
            self.config = LiveSettings.apply(self.config, changes)
            if "lr" in changes:
                self.stepper.set_lr(changes["lr"])
            add_event(self._history, self.step + 1, changes)
        self._announce(self._history["events"][-1])

    def _flush(self) -> None:
        """Move the buffered loss terms to the history: one device-to-host copy."""
        with self._lock:
            append_steps(self._history, self._buffer.drain(), self._buffer.columns)

    def _evaluate(self) -> None:
        rec_np = self.stepper.reconstruct(self._val_fixed).float().cpu().numpy()
        tgt_np = self._val_fixed.cpu().numpy()
        metrics = self._eval_metrics(rec_np, tgt_np)
        with self._lock:
            append_eval(self._history, self.step, metrics)
            st = self._history["steps"]
            self._snapshot = {
                "step": self.step, "reconstruction": rec_np, "target": tgt_np,
                "metrics": metrics, "loss": {c: st[c][-1] for c in st if st[c]},
                "config": self.config.to_dict(),
            }
        self._publish("eval")

    def _eval_metrics(self, rec: Any, tgt: Any) -> dict[str, Any]:
        """The live metrics of the fixed batch; a stepper with its own ``live_metrics`` (the
        distributed one: each rank measures a shard, then they are averaged) computes them."""
        own = getattr(self.stepper, "live_metrics", None)
        fn = live_metrics if own is None else own
        return dict(fn(rec, tgt, thresholds=self.config.betti_thresholds))

    # -- steering from another process (a control file, read by rank 0, broadcast) ------------

    def log_event(self, event: str, **fields: Any) -> None:
        """Add ``{"step": step + 1, "event": event, **fields}`` to ``history["events"]``."""
        with self._lock:
            self._history["events"].append({"step": self.step + 1, "event": event, **fields})
        self._announce(self._history["events"][-1])

    def _announce(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(copy.deepcopy(event))

    def _publish(self, why: str) -> None:
        """After a step (``"step"``), an evaluation (``"eval"``) or while paused
        (``"paused"``): a subclass writes what followers read."""

    def _poll_control(self) -> bool:
        """Apply the control channel's decision (the same on every rank); ``False``: stop."""
        ch = self.control_channel
        if ch is None or not ch.due(self.step):
            return True
        paused = False
        try:
            while True:
                d = ch.exchange(self.config)
                if d.refused is not None:
                    self.log_event("control_refused", reason=d.refused)
                if d.changes:
                    self._live.request(self.config, d.changes)
                if d.command is not None:
                    self.log_event(d.command)
                if d.command == "stop":
                    self._stop_flag = True
                    return False
                if d.command == "pause" or (paused and d.command is None):
                    if not paused:
                        paused = True
                        self._flush()
                        with self._cond:
                            self.state = "paused"
                    self._publish("paused")
                    time.sleep(min(0.5, 0.05 * ch.every))
                    continue
                return True
        finally:
            if paused:
                with self._cond:
                    self.state = "running" if not self._stop_flag else self.state

    def _completed(self) -> bool:
        return self.step >= self.config.steps
