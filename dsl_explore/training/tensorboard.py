"""TensorBoard scalars and events of a run, written by rank 0 (optional extra ``tensorboard``).

``tensorboard --logdir RUN_DIR/tensorboard`` then shows, per step, the loss terms (``loss/mse``,
``loss/dsl``, ``loss/total``), the settings (``setting/lr``, ``setting/lam``), per evaluation the
live metrics (``eval/val_mse``, ``eval/count_rate``, ``eval/betti_total``, ``eval/betti_h0``,
...) and every event of the history as text (``events``). It uses
:class:`torch.utils.tensorboard.SummaryWriter`; :meth:`TensorBoardLogger.create` returns None
(and the run goes on without it) when the ``tensorboard`` package is missing.

Examples
--------
>>> import tempfile, pathlib
>>> from dsl_explore.training.history import new_history
>>> with tempfile.TemporaryDirectory() as tmp:
...     tb = TensorBoardLogger.create(pathlib.Path(tmp))
...     if tb is not None:
...         h = new_history("mse"); h["steps"].update(step=[1], mse=[0.5], total=[0.5], lr=[1e-3])
...         tb.write(h); tb.close()
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["TENSORBOARD_DIR", "TensorBoardLogger"]

TENSORBOARD_DIR = "tensorboard"


class TensorBoardLogger:
    """Appends what is new in a history to TensorBoard event files (see the module docstring).

    Parameters
    ----------
    writer : torch.utils.tensorboard.SummaryWriter
        Where to write.
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self._n_steps = self._n_evals = self._n_events = 0

    @classmethod
    def create(cls, run_dir: Path) -> TensorBoardLogger | None:
        """A logger writing to ``run_dir/tensorboard``, or None without ``tensorboard``."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return cls(SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR)))

    def write(self, history: Mapping[str, Any]) -> None:
        """Write the rows, evaluations and events added since the last call, then flush."""
        st, ev = history["steps"], history["evals"]
        w = self.writer
        for i in range(self._n_steps, len(st["step"])):
            for col, vals in st.items():
                if col != "step" and i < len(vals):
                    group = "setting" if col in ("lr", "lam") else "loss"
                    _scalar(w, f"{group}/{col}", vals[i], st["step"][i])
        self._n_steps = len(st["step"])
        for i in range(self._n_evals, len(ev["step"])):
            step = ev["step"][i]
            for col, vals in ev.items():
                if col == "step" or i >= len(vals):
                    continue
                if isinstance(vals[i], (list, tuple)):
                    for q, v in enumerate(vals[i]):
                        _scalar(w, f"eval/betti_h{q}", v, step)
                else:
                    _scalar(w, f"eval/{col}", vals[i], step)
        self._n_evals = len(ev["step"])
        events = history.get("events", [])
        for e in events[self._n_events:]:
            w.add_text("events", json.dumps(e), int(e.get("step", 0)))
        self._n_events = len(events)
        w.flush()

    def close(self) -> None:
        self.writer.close()


def _scalar(writer: Any, tag: str, value: Any, step: int) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        writer.add_scalar(tag, float(value), int(step))
