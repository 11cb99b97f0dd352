"""``TrainingRun``: a training run in a background thread, steered while it runs; ``train()``.

The run wires the pieces of :mod:`dsl_explore.training` together: the thread and its controls
(:class:`~dsl_explore.training.control.BackgroundRun`), the step
(:class:`~dsl_explore.training.step.Stepper`), the history and its loss buffer
(:mod:`~dsl_explore.training.history`), the evaluation of the fixed validation batch
(:mod:`~dsl_explore.training.evaluate`), live setting changes
(:mod:`~dsl_explore.training.live`) and checkpoints (:mod:`~dsl_explore.training.checkpoint`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from dsl_explore.io import atomic_write_json, atomic_write_text, remove_stale_temps, write_checksum
from dsl_explore.training.checkpoint import (
    CKPT_FORMAT,
    Checkpointer,
    capture_rng,
    load_checkpoint,
    load_newest_intact,
    restore_rng,
    resume_config,
    resume_dir,
    save_checkpoint,
)
from dsl_explore.training.config import ARRAY_DATA, TrainingConfig, check_data_memory
from dsl_explore.training.distributed import DistributedStepper, is_distributed, rank_device
from dsl_explore.training.errors import CheckpointError
from dsl_explore.training.follow import LiveFiles
from dsl_explore.training.history import (
    history_csv,
)
from dsl_explore.training.inputs import DataOrder, make_training_data, resolve_device
from dsl_explore.training.loop import TrainingLoop
from dsl_explore.training.metrics import METRICS_VERSION, upgrade_history
from dsl_explore.training.step import SingleProcessStepper, Stepper, build_training_model

__all__ = ["TrainingRun", "train"]

log = logging.getLogger("dsl_explore.training")


def _as_config(config: TrainingConfig | Mapping[str, Any]) -> TrainingConfig:
    if isinstance(config, Mapping):
        config = TrainingConfig.from_dict(config)
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig or a dict, got {type(config).__name__}")
    return config


def _check_run_dir(
    run_dir: str | os.PathLike[str] | None, *, overwrite: bool, resuming_here: bool
) -> Path | None:
    if run_dir is None:
        return None
    d = Path(run_dir)
    if d.exists() and not d.is_dir():
        raise ValueError(f"run directory {str(d)!r} is a file")
    if d.is_dir() and any(d.iterdir()) and not overwrite and not resuming_here:
        raise FileExistsError(
            f"run directory {str(d)!r} exists and is not empty; pass "
            "overwrite=True (--overwrite) to reuse it, or resume from its checkpoint"
        )
    return d


def _training_arrays(config: TrainingConfig, data: Any) -> tuple[np.ndarray, np.ndarray]:
    if data is None and config.data_path is None and config.data != ARRAY_DATA:
        check_data_memory(config)  # before the generator allocates anything
    train_arr, val_arr = make_training_data(config, data)
    if config.batch_size > train_arr.shape[0]:
        raise ValueError(
            f"config field 'batch_size' ({config.batch_size}) is larger than the training "
            f"set ({train_arr.shape[0]} samples)"
        )
    if config.weights is not None and len(config.weights) != train_arr.ndim - 2:
        raise ValueError("config field 'weights' needs one entry per spatial axis")
    return train_arr, val_arr


class TrainingRun(TrainingLoop):
    """A training run that can execute in a background thread and be steered while it runs.

    Parameters
    ----------
    config : TrainingConfig or dict
        What to train (a dict is passed to :meth:`TrainingConfig.from_dict`).
    run_dir : path, optional
        Where ``config.toml``, ``checkpoints/step_*.pt``, ``history.json``/``.csv`` and
        ``metrics.json`` go. An existing non-empty directory is an error unless
        ``overwrite=True`` (or the run resumes from a checkpoint in it). Without a run
        directory nothing is written unless you call :meth:`checkpoint` / :meth:`save_history`
        with a path.
    progress : bool
        Show a ``tqdm.auto`` progress bar (terminal or notebook).
    overwrite : bool
        Allow a non-empty ``run_dir`` (its old checkpoints are removed when the run starts).
    data : array or tensor, optional
        Training data ``(N, C, *spatial)`` (or anything :func:`~dsl_explore.data.load_array`
        reads) instead of the config's generator; ``config.data`` should be ``"array"``.
    live_files : bool
        Also keep ``history.json``, ``snapshot.npz`` and ``status.json`` up to date while it
        runs, for followers in other processes (:mod:`~dsl_explore.training.follow`).
    tensorboard : bool
        Also write TensorBoard events to ``run_dir/tensorboard`` (skipped without the
        ``tensorboard`` package; :mod:`~dsl_explore.training.tensorboard`).
    writer : bool
        ``False``: write nothing at all (the ranks other than 0 of a distributed run).

    Attributes
    ----------
    model, optimizer, device, step, config
        The live objects; ``config`` reflects the latest :meth:`set` changes.
    stepper : Stepper
        The training backend (:class:`~dsl_explore.training.step.SingleProcessStepper`).
    error : BaseException or None
        The exception that ended the training thread, if any.

    Examples
    --------
    >>> cfg = TrainingConfig(spatial_dims=1, size=64, n_samples=24, steps=6, eval_every=3,
    ...                      batch_size=8, base_channels=4, lam=0.0)
    >>> run = TrainingRun(cfg)
    >>> run.set(lam=0.5)                 # applied before the next step (here: step 1)
    >>> run.start().join()
    >>> run.step, run.history["events"][0]["changes"]
    (6, {'lam': 0.5})
    """

    def __init__(
        self, config: TrainingConfig | Mapping[str, Any], *,
        run_dir: str | os.PathLike[str] | None = None, progress: bool = False,
        overwrite: bool = False, data: Any = None, live_files: bool = False,
        tensorboard: bool = False, writer: bool = True,
        _resume: Mapping[str, Any] | None = None,
    ) -> None:
        config = _as_config(config)
        self.initial_config = config if _resume is None else TrainingConfig.from_dict(
            _resume.get("initial_config", _resume["config"])
        )
        self.device = rank_device(resolve_device(config.device))
        here = _resume is not None and bool(_resume.get("_same_dir", False))
        self.run_dir = _check_run_dir(run_dir if writer else None, overwrite=overwrite,
                                      resuming_here=here)
        self._overwrite = bool(overwrite)
        train_arr, self.val_data = _training_arrays(config, data)  # before anything is built
        model = build_training_model(config, int(train_arr.shape[1]))
        model.check_input_shape(train_arr.shape)
        order = DataOrder(torch.from_numpy(train_arr).to(self.device), seed=config.seed)
        n_fixed = min(config.eval_samples, self.val_data.shape[0])
        super().__init__(
            config, _make_stepper(model, order, config, self.device),
            torch.from_numpy(self.val_data[:n_fixed]).to(self.device), progress=progress,
        )
        self._wrote_config = False
        self.last_checkpoint: Path | None = None
        self._checkpointer = None if self.run_dir is None else Checkpointer(
            self.run_dir, keep=config.keep_checkpoints)
        if _resume is not None:
            self._load_state(_resume)
        self._outputs = _outputs(self.run_dir, live_files=live_files, tensorboard=tensorboard)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], *, run_dir: str | os.PathLike[str] | None = None,
        config: TrainingConfig | Mapping[str, Any] | None = None, progress: bool = False,
        overwrite: bool = False, data: Any = None, live_files: bool = False,
        tensorboard: bool = False, writer: bool = True, **overrides: Any,
    ) -> TrainingRun:
        """Resume a run from a checkpoint file (or a run directory's newest checkpoint).

        ``run_dir`` defaults to the checkpoint's own run directory (resuming there is allowed
        although it is not empty). A ``config`` must match the checkpoint except in ``steps``,
        ``checkpoint_every``, ``keep_checkpoints`` and ``device`` (which it then sets);
        ``overrides`` are the same fields as keywords, e.g. ``steps=2000`` to train longer.

        Raises
        ------
        CheckpointError
            Unreadable / corrupt file, or a checkpoint of another model or config. Nothing is
            written in that case.
        """
        ckpt, skipped = _load_for_resume(path)
        new_cfg = resume_config(ckpt, config, overrides)
        out_dir, same_dir = resume_dir(Path(ckpt["path"]), run_dir)
        state = {**ckpt, "_same_dir": same_dir}
        run = cls(new_cfg, run_dir=out_dir, progress=progress, overwrite=overwrite, data=data,
                  live_files=live_files, tensorboard=tensorboard, writer=writer, _resume=state)
        if skipped:
            _record_skipped(run, skipped)
        return run

    def _load_state(self, ckpt: Mapping[str, Any]) -> None:
        self.stepper.load_state_dict(ckpt, lr=self.config.lr)
        self.step = int(ckpt["step"])
        hist = ckpt.get("history")
        if not isinstance(hist, dict) or "steps" not in hist:
            raise CheckpointError("checkpoint lacks a valid history")
        self._history = copy.deepcopy(hist)
        upgrade_history(self._history, spatial_dims=self.config.spatial_dims,
                        version=int(ckpt.get("metrics_version", 1)))
        restore_rng(ckpt.get("rng") or {})
        self.last_checkpoint = Path(ckpt["path"]) if "path" in ckpt else None

    # -- public --------------------------------------------------------------------------------

    model = property(lambda self: self.stepper.model, doc="The model being trained.")
    optimizer = property(lambda self: self.stepper.optimizer, doc="The optimizer.")
    n_train = property(lambda self: self.stepper.n_train, doc="Number of training samples.")
    amp = property(lambda self: self.stepper.amp, doc="Whether mixed precision is on (CUDA).")

    def checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write a checkpoint atomically and return its path.

        ``path=None`` writes ``run_dir/checkpoints/step_XXXXXXXX.pt`` (keeping the newest
        ``keep_checkpoints``). Safe to call while training: the training thread writes it
        between two steps.
        """
        if path is None and self.run_dir is None:
            raise ValueError("checkpoint() needs a path when the run has no run_dir")
        return self._in_worker(lambda: self._write_checkpoint(path))

    def save_history(self, path: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write the history atomically: ``.json`` (everything) or ``.csv``
        (:func:`~dsl_explore.training.history.history_csv`).

        ``path=None`` writes ``history.json`` and ``history.csv`` in the run directory. The
        JSON file also holds ``metrics_version``
        (:data:`~dsl_explore.training.metrics.METRICS_VERSION`).
        """
        if path is None:
            if self.run_dir is None:
                raise ValueError("save_history() needs a path when the run has no run_dir")
            targets = [self.run_dir / "history.json", self.run_dir / "history.csv"]
        else:
            targets = [Path(path)]
            if targets[0].suffix not in (".json", ".csv"):
                raise ValueError(f"history path must end in .json or .csv, got {str(path)!r}")
        self._in_worker(self._flush)
        hist = self.history
        for t in targets:
            if t.suffix == ".json":  # the file says which metric definitions it holds
                atomic_write_json(t, {**hist, "metrics_version": METRICS_VERSION})
                if path is None:  # the run directory's history.json: with its checksum
                    write_checksum(t)
            else:
                atomic_write_text(t, history_csv(hist))
        return targets

    def final_metrics(self, state: str | None = None) -> dict[str, Any]:
        """The last evaluation plus timing, as written to ``metrics.json``; ``state`` overrides
        :attr:`state` (the run writes the file just before it turns "finished" or "stopped")."""
        ev = self.history["evals"]
        sps = self.seconds_per_step
        return {
            "step": self.step,
            "state": self.state if state is None else state,
            "device": str(self.device),
            "seconds_per_step": sps,
            "steps_per_second": (1.0 / sps) if sps == sps and sps > 0 else None,
            "last_eval": {k: v[-1] for k, v in ev.items() if v} if ev["step"] else {},
            "config": self.config.to_dict(),
        }

    # -- the loop ------------------------------------------------------------------------------

    # -- files ---------------------------------------------------------------------------------

    def _before_loop(self) -> None:
        if self.run_dir is None or self._checkpointer is None or self._wrote_config:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_files(self.run_dir)
        if self._overwrite and self.step == 0:
            self._checkpointer.clear()
        atomic_write_text(self.run_dir / "config.toml", _config_toml(self.config, self.stepper))
        self._wrote_config = True

    def _write_checkpoint(self, path: str | os.PathLike[str] | None) -> Path:
        self._flush()
        with self._lock:
            state = {
                "format": CKPT_FORMAT, "config": self.config.to_dict(),
                "initial_config": self.initial_config.to_dict(), **self.stepper.state_dict(),
                "step": self.step, "history": copy.deepcopy(self._history),
                "rng": capture_rng(), "torch_version": str(torch.__version__),
                "metrics_version": METRICS_VERSION,
            }
        if path is None:
            assert self._checkpointer is not None
            target = self._checkpointer.save(state, step=self.step)
        else:
            target = save_checkpoint(state, path)
        self.last_checkpoint = target
        return target

    def _publish(self, why: str) -> None:
        out = self._outputs
        if out.live is None and out.tensorboard is None:
            return
        if why == "eval":
            hist = self.history
            if out.live is not None:
                out.live.write_history(hist)
                snap = self.snapshot()
                if snap is not None:
                    out.live.write_snapshot(snap)
            if out.tensorboard is not None:
                out.tensorboard.write(hist)
        if out.live is not None:
            if why == "step":
                out.live.maybe_status(self.live_status)
            else:
                out.live.write_status(self.live_status())

    def live_status(self, state: str | None = None) -> dict[str, Any]:
        """What ``status.json`` holds (:mod:`~dsl_explore.training.follow`)."""
        sps = self.seconds_per_step
        return {
            "state": state or self.state, "step": self.step, "steps": self.config.steps,
            "seconds_per_step": sps if sps == sps else None, "device": str(self.device),
            **launch_info(self.stepper, self.config),
            "config": self.config.to_dict(),
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }

    def _close_outputs(self, state: str) -> None:
        out = self._outputs
        if out.live is not None:
            out.live.write_status(self.live_status(state))
        if out.tensorboard is not None:
            out.tensorboard.write(self.history)
            out.tensorboard.close()

    def _periodic_checkpoint(self) -> None:
        if self.run_dir is not None:
            self._write_checkpoint(None)

    def _save_final(self, state: str) -> None:
        if self.run_dir is not None and self.step > 0:
            self._write_checkpoint(None)
            self.save_history()
            atomic_write_json(self.run_dir / "metrics.json", self.final_metrics(state))
        self._close_outputs(state)

    def _save_after_failure(self) -> None:
        if self.run_dir is not None:  # keep what we have: history (the last checkpoint stays)
            self.save_history()
        self._close_outputs("failed")


class _Outputs(NamedTuple):
    live: LiveFiles | None
    tensorboard: Any  # a TensorBoardLogger, or None


def _outputs(run_dir: Path | None, *, live_files: bool, tensorboard: bool) -> _Outputs:
    """The files a run writes for followers (rank 0 only: ``run_dir`` is None elsewhere)."""
    if run_dir is None:
        return _Outputs(None, None)
    tb = None
    if tensorboard:
        from dsl_explore.training.tensorboard import TensorBoardLogger

        tb = TensorBoardLogger.create(run_dir)
    return _Outputs(LiveFiles(run_dir) if live_files else None, tb)


def _make_stepper(model: Any, order: DataOrder, config: TrainingConfig,
                  device: torch.device) -> Stepper:
    """The training backend: DDP inside a process group (torchrun), else one process."""
    if is_distributed():
        return DistributedStepper(model, order, config, device)
    return SingleProcessStepper(model, order, config, device)


def launch_info(stepper: Stepper, config: TrainingConfig) -> dict[str, Any]:
    """``world_size``, ``global_batch``, ``per_rank_batch`` (and ``backend``) of a run."""
    world = int(getattr(stepper, "world_size", 1))
    info = {"world_size": world, "global_batch": config.batch_size,
            "per_rank_batch": config.batch_size // world}
    if isinstance(stepper, DistributedStepper):
        info["backend"] = stepper.launch["backend"]
    return info


def _config_toml(config: TrainingConfig, stepper: Stepper) -> str:
    """``config.toml``; a distributed run adds a ``[launch]`` table (world size, batches) after
    the ``[training]`` one (which :meth:`TrainingConfig.from_toml` reads)."""
    if not isinstance(stepper, DistributedStepper):
        return config.to_toml()
    head, *body = config.to_toml().splitlines()
    launch = "\n".join(f"{k} = {json.dumps(v)}" for k, v in launch_info(stepper, config).items())
    return "\n".join([head, "[training]", *body, "", "[launch]", launch]) + "\n"


def _load_for_resume(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """A checkpoint file as is; for a run directory, its newest intact checkpoint and the
    reasons the newer ones were skipped (each logged as a warning)."""
    if not Path(path).is_dir():
        return load_checkpoint(path), []
    ckpt, skipped = load_newest_intact(path)
    for why in skipped:
        log.warning("skipped a checkpoint while resuming from %s: %s", ckpt["path"], why)
    return ckpt, skipped


def _record_skipped(run: TrainingRun, skipped: list[str]) -> None:
    """An event in the history: which newer checkpoints the resumed run skipped, and why."""
    with run._lock:
        run._history["events"].append({
            "step": run.step, "event": "checkpoint skipped", "skipped": list(skipped),
        })


def _remove_stale_files(run_dir: Path) -> None:
    """Delete what interrupted atomic writes left in the run directory and its checkpoints."""
    for d in (run_dir, run_dir / "checkpoints"):
        for f in remove_stale_temps(d):
            log.info("removed the stale partial file %s", f)


def train(
    config: TrainingConfig | Mapping[str, Any], *, run_dir: str | os.PathLike[str] | None = None,
    progress: bool = True, overwrite: bool = False, data: Any = None,
) -> TrainingRun:
    """Train to completion in the calling thread and return the finished :class:`TrainingRun`.

    Ctrl-C stops it: a final checkpoint and the history are written (with a run directory) and
    the KeyboardInterrupt is re-raised. A failure raises :class:`TrainingError`.
    """
    run = TrainingRun(config, run_dir=run_dir, progress=progress, overwrite=overwrite, data=data)
    return run.run()
