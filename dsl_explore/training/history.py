"""A run's history: per-step loss terms, evaluations and events, and how they are written.

A history is a plain dict (so that it pickles into checkpoints and dumps to JSON as is)::

    {"steps":  {"step": [...], "mse": [...], "dsl" | "ph": [...], "total": [...], "lr": [...],
                "lam": [...]},
     "evals":  {"step": [...], "val_mse": [...], "count_rate": [...], ...},
     "events": [{"step": s, "event": "set", "changes": {...}}, ...]}

Its columns come from the metric registry (:mod:`dsl_explore.training.metrics`). The per-step
terms are first collected on the training device by a :class:`LossBuffer` and appended here
in one host transfer (:func:`append_steps`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from dsl_explore.training.metrics import history_keys, step_columns

__all__ = [
    "LossBuffer",
    "add_event",
    "append_eval",
    "append_steps",
    "history_csv",
    "new_history",
]


def new_history(loss: str) -> dict[str, Any]:
    """An empty history for the objective ``loss``.

    Examples
    --------
    >>> h = new_history("mse+dsl")
    >>> list(h["steps"])
    ['step', 'mse', 'dsl', 'total', 'lr', 'lam']
    >>> list(h["evals"])[:3], h["events"]
    (['step', 'val_mse', 'count_rate'], [])
    """
    cols = ["step", *step_columns(loss), *history_keys("setting", loss)]
    return {
        "steps": {c: [] for c in cols},
        "evals": {c: [] for c in ("step", *history_keys("eval"))},
        "events": [],
    }


class LossBuffer:
    """The loss terms of up to ``rows`` steps, kept on the training device (no host sync).

    Parameters
    ----------
    rows : int
        Capacity (``eval_every``); :meth:`add` refuses a row when full.
    loss : str
        The objective; its :func:`~dsl_explore.training.metrics.step_columns` are the columns.
    device : torch.device
        Where the terms live.
    """

    def __init__(self, rows: int, loss: str, device: torch.device) -> None:
        self.columns = step_columns(loss)
        self._values = torch.zeros((rows, len(self.columns)), device=device)
        self._meta: list[tuple[int, float, float]] = []  # (step, lr, lam) per buffered row

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def full(self) -> bool:
        """Whether no row is left."""
        return len(self._meta) >= self._values.shape[0]

    def add(self, terms: torch.Tensor, *, step: int, lr: float, lam: float) -> None:
        """Store one step's terms (a tensor of ``len(columns)`` values) without a host copy."""
        if self.full:
            raise RuntimeError("the loss buffer is full: drain it first")
        with torch.no_grad():
            self._values[len(self._meta)] = terms
        self._meta.append((step, lr, lam))

    def drain(self) -> list[tuple[int, float, float, list[float]]]:
        """``(step, lr, lam, terms)`` of every stored row (one device-to-host copy); empties it."""
        n = len(self._meta)
        if n == 0:
            return []
        values = self._values[:n].cpu().tolist()
        rows = [(*meta, vals) for meta, vals in zip(self._meta, values, strict=True)]
        self._meta = []
        return rows


def append_steps(
    history: Mapping[str, Any], rows: Sequence[tuple[int, float, float, list[float]]],
    columns: Sequence[str],
) -> None:
    """Append drained :class:`LossBuffer` rows to ``history["steps"]``."""
    st = history["steps"]
    for step, lr, lam, vals in rows:
        st["step"].append(step)
        for c, v in zip(columns, vals, strict=True):
            st[c].append(float(v))
        st["lr"].append(float(lr))
        if "lam" in st:
            st["lam"].append(float(lam))


def append_eval(history: Mapping[str, Any], step: int, metrics: Mapping[str, Any]) -> None:
    """Append one evaluation (metrics keyed by their history column) to ``history["evals"]``."""
    ev = history["evals"]
    ev["step"].append(step)
    for key, v in metrics.items():
        ev[key].append(v)


def add_event(history: Mapping[str, Any], step: int, changes: Mapping[str, Any]) -> None:
    """Record live setting changes applied from ``step`` on."""
    history["events"].append({"step": step, "event": "set", "changes": dict(changes)})


def history_csv(hist: Mapping[str, Any]) -> str:
    """CSV text of a history: one row per step, evaluation columns filled at evaluation steps,
    ``betti_h<q>`` per homology dimension, empty cells for missing or non-finite values.

    Examples
    --------
    >>> h = new_history("mse")
    >>> h["steps"].update(step=[1], mse=[0.5], total=[0.5], lr=[0.001])
    >>> print(history_csv(h).splitlines()[1])
    1,0.5,0.5,0.001,,,,,,
    """
    st, ev = hist["steps"], hist["evals"]
    step_cols = [c for c in st if c != "step"]
    n_dims = max((len(v) for v in ev.get("betti_per_dim", [])), default=0)
    ev_cols = [c for c in ev if c not in ("step", "betti_per_dim")]
    header = ["step", *step_cols, *ev_cols, *(f"betti_h{q}" for q in range(n_dims))]
    rows: dict[int, dict[str, Any]] = {}
    for i, s in enumerate(st["step"]):
        rows.setdefault(s, {}).update({c: st[c][i] for c in step_cols})
    for i, s in enumerate(ev["step"]):
        r = rows.setdefault(s, {})
        r.update({c: ev[c][i] for c in ev_cols})
        for q, v in enumerate(ev["betti_per_dim"][i]):
            r[f"betti_h{q}"] = v
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for s in sorted(rows):
        r = rows[s]
        w.writerow([s, *(_csv_cell(r.get(c)) for c in header[1:])])
    return out.getvalue()


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)
