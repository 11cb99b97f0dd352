"""Steer a run from another process: a small control file in the run directory.

A follower (:meth:`~dsl_explore.widgets.TrainingDashboard.follow`, or you with an editor)
writes ``run_dir/control.json`` atomically (:func:`write_control`)::

    {"format": "dsl_explore.control/1", "seq": 3,
     "settings": {"k": 30.0, "lam": 0.5}, "run": "running" | "paused" | "stopped"}

``settings`` are the live settings wanted (:data:`~dsl_explore.training.config.LIVE_FIELDS`,
cumulative: a writer keeps the earlier ones), ``run`` the wanted state. Rank 0 of the run reads
the file every ``every`` steps (:class:`ControlChannel`) and broadcasts what it decided, so
every rank applies a change before the same step. Only settings that differ from the run's
current ones are applied. A file that is not valid JSON, not of this format, or holds a value
out of range is refused as a whole (nothing of it is applied) and logged as a
``"control_refused"`` event; the run goes on. A file left from before the run started is
ignored until it changes.

Examples
--------
>>> import tempfile, pathlib
>>> from dsl_explore.training.config import TrainingConfig
>>> with tempfile.TemporaryDirectory() as tmp:
...     ch = ControlChannel(pathlib.Path(tmp), every=1)
...     _ = write_control(pathlib.Path(tmp), settings={"k": 30}, run="running")
...     d = ch.exchange(TrainingConfig(loss="mse+dsl"))
>>> d.changes, d.command, d.refused
({'k': 30.0}, None, None)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsl_explore.io import atomic_write_json
from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.distributed import broadcast_object
from dsl_explore.training.live import check_live_changes

__all__ = [
    "CONTROL_FILE",
    "CONTROL_FORMAT",
    "RUN_STATES",
    "ControlChannel",
    "ControlDecision",
    "parse_control",
    "read_control",
    "write_control",
]

CONTROL_FILE = "control.json"
CONTROL_FORMAT = "dsl_explore.control/1"
RUN_STATES = ("running", "paused", "stopped")
"""The states a control file may ask for."""


def parse_control(raw: bytes) -> dict[str, Any]:
    """The control document in ``raw`` (checked in form, not against a run); ValueError else.

    Examples
    --------
    >>> parse_control(b'{"format": "dsl_explore.control/1", "seq": 1, "run": "paused"}')
    {'seq': 1, 'settings': {}, 'run': 'paused'}
    >>> parse_control(b'{"seq": 1')
    Traceback (most recent call last):
    ...
    ValueError: control file is not valid JSON: Expecting ',' delimiter: line 1 column 10 (char 9)
    """
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"control file is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CONTROL_FORMAT:
        raise ValueError(f"control file must be a JSON object with format {CONTROL_FORMAT!r}")
    seq, settings, run = doc.get("seq", 0), doc.get("settings", {}), doc.get("run", "running")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValueError(f"control file field 'seq' must be an int, got {seq!r}")
    if not isinstance(settings, dict):
        raise ValueError(f"control file field 'settings' must be an object, got {settings!r}")
    if run not in RUN_STATES:
        raise ValueError(f"control file field 'run' must be one of {RUN_STATES}, got {run!r}")
    return {"seq": seq, "settings": settings, "run": run}


def read_control(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's control document, or None when there is none (ValueError if bad)."""
    try:
        raw = (run_dir / CONTROL_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return parse_control(raw)


def write_control(run_dir: str | os.PathLike[str], *, settings: Mapping[str, Any] | None = None,
                  run: str = "running") -> Path:
    """Write ``control.json`` atomically: these settings merged into the file's, and ``run``.

    Raises
    ------
    ValueError
        ``run`` not in :data:`RUN_STATES`.
    """
    if run not in RUN_STATES:
        raise ValueError(f"run must be one of {RUN_STATES}, got {run!r}")
    d = Path(run_dir)
    try:
        old = read_control(d) or {"seq": 0, "settings": {}}
    except ValueError:  # a bad file is replaced as a whole
        old = {"seq": 0, "settings": {}}
    merged = {**old["settings"], **dict(settings or {})}
    doc = {"format": CONTROL_FORMAT, "seq": int(old["seq"]) + 1, "settings": merged, "run": run}
    return atomic_write_json(d / CONTROL_FILE, doc)


@dataclasses.dataclass(frozen=True)
class ControlDecision:
    """What rank 0 made of the control file, the same on every rank.

    Attributes
    ----------
    changes : dict
        Validated live settings to apply before the next step (only those that change).
    command : {"pause", "resume", "stop"} or None
        A change of the wanted run state.
    refused : str or None
        Why a new control file was refused (nothing of it is applied).
    """

    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    command: str | None = None
    refused: str | None = None


class ControlChannel:
    """Rank 0 reads ``run_dir/control.json`` every ``every`` steps and broadcasts a decision.

    Every rank builds one and calls :meth:`exchange` at the same steps (:meth:`due`); only rank
    0 (``run_dir`` given) reads the file. Outside a process group it is just the file reader.

    Parameters
    ----------
    run_dir : Path or None
        The run directory on rank 0; None on the other ranks.
    every : int
        Read the file every this many steps (>= 1).
    """

    def __init__(self, run_dir: Path | None, *, every: int = 10) -> None:
        self.run_dir = run_dir
        self.every = max(1, int(every))
        self.wanted = "running"
        self._last_digest = self._digest()  # a file from before the start is ignored

    def _digest(self) -> str | None:
        if self.run_dir is None:
            return None
        try:
            return hashlib.sha256((self.run_dir / CONTROL_FILE).read_bytes()).hexdigest()
        except OSError:
            return None

    def due(self, step: int) -> bool:
        """Whether the file is read before step ``step + 1``."""
        return step % self.every == 0

    def _decide(self, config: TrainingConfig) -> ControlDecision:
        if self.run_dir is None:
            return ControlDecision()
        digest = self._digest()
        if digest is None or digest == self._last_digest:
            return ControlDecision()
        self._last_digest = digest
        try:
            doc = read_control(self.run_dir)
            if doc is None:
                return ControlDecision()
            clean = check_live_changes(config, doc["settings"])
        except (ValueError, TypeError, OSError) as exc:
            return ControlDecision(refused=str(exc).splitlines()[0] if str(exc) else
                                   type(exc).__name__)
        current = config.to_dict()
        changes = {k: v for k, v in clean.items() if _differs(v, current.get(k))}
        command = None
        if doc["run"] != self.wanted:
            command = {"paused": "pause", "stopped": "stop", "running": "resume"}[doc["run"]]
            self.wanted = doc["run"]
        return ControlDecision(changes=changes, command=command)

    def exchange(self, config: TrainingConfig) -> ControlDecision:
        """Rank 0's decision on the control file, on every rank (a collective)."""
        decision = self._decide(config)
        out = broadcast_object(decision)
        assert isinstance(out, ControlDecision)
        if out.command is not None:
            self.wanted = {"pause": "paused", "stop": "stopped", "resume": "running"}[out.command]
        return out


def _differs(new: Any, old: Any) -> bool:
    if isinstance(new, (list, tuple)) or isinstance(old, (list, tuple)):
        return old is None or new is None or list(new) != list(old)
    return bool(new != old)
