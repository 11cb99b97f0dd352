"""A run directory seen from another process: the files rank 0 writes while it trains.

Besides ``config.toml``, ``checkpoints/`` and (at the end) ``history.csv``/``metrics.json``, a
run with live files (``TrainingRun(..., live_files=True)``; every ``torchrun -m
dsl_explore.train`` run) keeps, each written atomically by rank 0:

- ``history.json``: the history, rewritten at every evaluation;
- ``snapshot.npz``: the newest evaluation of the fixed validation batch (``reconstruction``,
  ``target`` and a JSON ``meta`` with ``step``, ``metrics``, ``loss``, ``config``);
- ``status.json``: ``state``, ``step``, ``steps``, ``seconds_per_step``, ``device``,
  ``world_size``, ``global_batch``, the live ``config``, ``pid``, ``host``, ``error`` and
  ``updated`` (wall time), rewritten every couple of seconds while it runs.

:class:`LiveFiles` writes them; :class:`RunDirectory` reads them (re-reading a file only when
it changed). A run whose status still says running but that stopped writing it for
``stale_s`` seconds (or whose process is gone, on the same host) reads as ``"failed"``.

Examples
--------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     files = LiveFiles(pathlib.Path(tmp))
...     _ = files.write_status({"state": "running", "step": 3})
...     print(RunDirectory(tmp).status()["step"])
3
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dsl_explore.io import atomic_write_bytes, atomic_write_json, jsonable
from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.metrics import METRICS_VERSION

__all__ = ["HISTORY_FILE", "SNAPSHOT_FILE", "STATUS_FILE", "LiveFiles", "RunDirectory"]

HISTORY_FILE = "history.json"
SNAPSHOT_FILE = "snapshot.npz"
STATUS_FILE = "status.json"


class LiveFiles:
    """Rank 0's writer of ``history.json``, ``snapshot.npz`` and ``status.json``.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    status_every_s : float
        :meth:`maybe_status` rewrites the status at most this often.
    """

    def __init__(self, run_dir: Path, *, status_every_s: float = 2.0) -> None:
        self.run_dir = run_dir
        self.status_every_s = float(status_every_s)
        self._last_status = -float("inf")

    def write_history(self, history: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.run_dir / HISTORY_FILE,
                                 {**history, "metrics_version": METRICS_VERSION})

    def write_snapshot(self, snap: Mapping[str, Any]) -> Path:
        meta = {k: snap.get(k) for k in ("step", "metrics", "loss", "config")}
        buf = io.BytesIO()
        np.savez(buf, reconstruction=np.asarray(snap["reconstruction"]),
                 target=np.asarray(snap["target"]),
                 meta=np.array(json.dumps(jsonable(meta))))
        return atomic_write_bytes(self.run_dir / SNAPSHOT_FILE, buf.getvalue())

    def write_status(self, status: Mapping[str, Any]) -> Path:
        self._last_status = time.monotonic()
        doc = {**status, "pid": os.getpid(), "host": socket.gethostname(), "updated": time.time()}
        return atomic_write_json(self.run_dir / STATUS_FILE, doc)

    def maybe_status(self, status: Any) -> None:
        """Call ``status()`` and write it when the last write is ``status_every_s`` old."""
        if time.monotonic() - self._last_status >= self.status_every_s:
            self.write_status(status())


class RunDirectory:
    """Reads a run directory that another process writes (see the module docstring).

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run directory.
    stale_s : float
        A running status not updated for this long reads as ended (``"failed"``).

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a directory.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, stale_s: float = 60.0) -> None:
        self.path = Path(run_dir)
        if not self.path.is_dir():
            raise FileNotFoundError(f"run directory {str(self.path)!r} does not exist")
        self.stale_s = float(stale_s)
        self._cache: dict[str, tuple[tuple[int, int], Any]] = {}

    def _read(self, name: str, parse: Any) -> Any:
        p = self.path / name
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            value = parse(p.read_bytes())
        except (OSError, ValueError, KeyError):  # replaced while reading: keep the old one
            return None if hit is None else hit[1]
        self._cache[name] = (key, value)
        return value

    def config(self) -> TrainingConfig | None:
        """The live config (from the status), else ``config.toml``; None before either exists."""
        st = self.status()
        if st and isinstance(st.get("config"), dict):
            return TrainingConfig.from_dict(st["config"])
        if (self.path / "config.toml").is_file():
            return TrainingConfig.from_toml(self.path / "config.toml")
        return None

    def status(self) -> dict[str, Any] | None:
        """``status.json`` with ``state`` corrected for a run that ended without saying so."""
        st = self._read(STATUS_FILE, lambda b: json.loads(b.decode("utf-8")))
        if st is None:
            return None
        st = dict(st)
        if st.get("state") in ("running", "paused", "created") and self._gone(st):
            st["error"] = st.get("error") or (
                f"the run stopped writing {STATUS_FILE} (last update "
                f"{time.time() - float(st.get('updated', 0)):.0f} s ago): its process ended")
            st["state"] = "failed"
        return st

    def _gone(self, st: Mapping[str, Any]) -> bool:
        if time.time() - float(st.get("updated", 0)) > self.stale_s:
            return True
        pid = st.get("pid")
        if st.get("host") == socket.gethostname() and isinstance(pid, int):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def history(self) -> dict[str, Any] | None:
        """``history.json`` (as of the run's newest evaluation), or None."""
        return self._read(HISTORY_FILE, lambda b: json.loads(b.decode("utf-8")))

    def snapshot(self) -> dict[str, Any] | None:
        """The newest evaluation: ``step``, ``reconstruction``, ``target``, ``metrics``,
        ``loss``, ``config`` (as :meth:`~dsl_explore.training.TrainingRun.snapshot`), or None."""
        def parse(raw: bytes) -> dict[str, Any]:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return {**meta, "reconstruction": z["reconstruction"], "target": z["target"]}
        return self._read(SNAPSHOT_FILE, parse)
