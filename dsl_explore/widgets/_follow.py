"""A run that another process trains, seen through its run directory, for the dashboard.

:class:`FollowedRun` has what :class:`~dsl_explore.widgets.TrainingDashboard` reads from a
:class:`~dsl_explore.training.TrainingRun` (``state``, ``step``, ``config``, ``history``,
``snapshot()``, ...), read from the files rank 0 writes
(:class:`~dsl_explore.training.follow.RunDirectory`), and what its controls call (``set``,
``pause``, ``resume``, ``stop``), which write ``control.json``
(:func:`~dsl_explore.training.control_file.write_control`). Settings are validated here first
(the same checks as ``TrainingRun.set``); the run applies them at its next read of the file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dsl_explore.training import TrainingConfig
from dsl_explore.training.control_file import write_control
from dsl_explore.training.follow import RunDirectory
from dsl_explore.training.history import new_history
from dsl_explore.training.live import check_live_changes

__all__ = ["FollowedRun"]


class FollowedRun:
    """A run in another process, read from ``run_dir`` and steered through its control file.

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run directory the other process writes.
    stale_s : float
        A run whose status was not updated for this long reads as ended (``"failed"``).
    wait_s : float
        How long to wait for the run directory and its ``config.toml`` to appear.

    Raises
    ------
    FileNotFoundError
        No run directory with a ``config.toml`` (or a status) after ``wait_s`` seconds.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, stale_s: float = 60.0,
                 wait_s: float = 30.0) -> None:
        self.run_dir = Path(run_dir)
        deadline = time.monotonic() + float(wait_s)
        cfg = None
        while True:
            if self.run_dir.is_dir():
                self.files = RunDirectory(self.run_dir, stale_s=stale_s)
                cfg = self.files.config()
            if cfg is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if cfg is None:
            raise FileNotFoundError(
                f"{str(self.run_dir)!r} is not a training run directory (no config.toml after "
                f"{wait_s:g} s); start the run first (torchrun -m dsl_explore.train ...)"
            )
        self._config: TrainingConfig = cfg
        self._wanted = "running"
        self.val_data = None  # the fixed batch comes with the first snapshot

    # -- what the dashboard reads ---------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        return self.files.status() or {}

    @property
    def state(self) -> str:
        """``"created"`` until the run writes its status, then the run's state."""
        return str(self._status().get("state", "created"))

    @property
    def step(self) -> int:
        return int(self._status().get("step", 0))

    @property
    def config(self) -> TrainingConfig:
        """The run's live config (its newest status), else ``config.toml``."""
        cfg = self._status().get("config")
        if isinstance(cfg, dict):
            try:
                self._config = TrainingConfig.from_dict(cfg)
            except (TypeError, ValueError):
                pass
        return self._config

    @property
    def device(self) -> str:
        st = self._status()
        world = st.get("world_size")
        dev = str(st.get("device", "?"))
        return dev if not world or world == 1 else f"{dev} × {world} ranks"

    @property
    def seconds_per_step(self) -> float:
        v = self._status().get("seconds_per_step")
        return float(v) if isinstance(v, (int, float)) else float("nan")

    @property
    def error(self) -> BaseException | None:
        msg = self._status().get("error")
        return RuntimeError(msg) if msg else None

    @property
    def history(self) -> dict[str, Any]:
        return self.files.history() or new_history(self._config.loss)

    def snapshot(self) -> dict[str, Any] | None:
        snap = self.files.snapshot()
        return None if snap is None else {**snap, "state": self.state}

    def is_alive(self) -> bool:
        return self.state in ("created", "running", "paused")

    # -- what the controls call -----------------------------------------------------------------

    def set(self, **changes: Any) -> None:
        """Validate live setting changes and write them to the control file."""
        clean = check_live_changes(self.config, changes)
        write_control(self.run_dir, settings=clean, run=self._wanted)

    def _want(self, state: str) -> None:
        self._wanted = state
        write_control(self.run_dir, run=state)

    def pause(self, wait: bool = False, timeout: float | None = None) -> None:
        """Ask the run to pause (at its next read of the control file)."""
        self._want("paused")

    def resume(self) -> None:
        self._want("running")

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Ask the run to stop (it writes its final checkpoint and history)."""
        self._want("stopped")

    def start(self) -> FollowedRun:
        """Resume a paused run; a run of another process cannot be started from here."""
        if self.state == "paused":
            self.resume()
            return self
        raise RuntimeError(
            "this run is trained by another process; start it there (rerunning its command "
            "resumes it from the newest checkpoint)"
        )

    def checkpoint(self, path: Any = None) -> Path:
        raise RuntimeError(
            "a followed run writes its checkpoints itself (config field checkpoint_every, and "
            "at the end or on stop)"
        )
