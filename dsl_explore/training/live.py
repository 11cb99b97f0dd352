"""Settings changed while a run goes: validated at once, applied between two steps."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from dsl_explore._validation import check_choice, check_k, resolve_weights
from dsl_explore.loss import SURROGATES
from dsl_explore.training.config import LIVE_FIELDS, TrainingConfig, config_float

__all__ = ["LiveSettings", "check_live_changes"]


def _check_one(key: str, value: Any, config: TrainingConfig) -> Any:
    loss = config.loss
    if key == "lam":
        if loss == "mse":
            raise ValueError(
                "lam has no effect with loss='mse'; use loss='mse+dsl' with lam=0 to "
                "change it live"
            )
        return config_float(value, "lam", minimum=0.0, strict=False)
    if key == "lr":
        return config_float(value, "lr", minimum=0.0, strict=True)
    if loss != "mse+dsl":
        raise ValueError(f"{key} is a DSL setting; this run's loss is {loss!r}")
    if key == "k":
        return check_k(value)
    if key == "weights":
        w = resolve_weights(value, config.spatial_dims)
        return None if w is None else list(w)
    return check_choice(value, "surrogate", tuple(SURROGATES))


def check_live_changes(config: TrainingConfig, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate changes of :data:`LIVE_FIELDS` for a run of ``config``; the clean values.

    ``lam`` needs a DSL or PH objective, ``k``, ``weights`` and ``surrogate`` ``"mse+dsl"``.

    Raises
    ------
    ValueError
        An unknown or not live field, a value out of range, or a setting the objective lacks.

    Examples
    --------
    >>> check_live_changes(TrainingConfig(loss="mse+dsl"), {"lam": 1, "weights": (1, 2)})
    {'lam': 1.0, 'weights': [1.0, 2.0]}
    """
    unknown = sorted(set(changes) - set(LIVE_FIELDS))
    if unknown:
        raise ValueError(
            f"set() takes {', '.join(LIVE_FIELDS)}; cannot change {', '.join(unknown)} live"
        )
    return {key: _check_one(key, v, config) for key, v in changes.items()}


class LiveSettings:
    """Validated changes waiting for the next step (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}

    def request(self, config: TrainingConfig, changes: Mapping[str, Any]) -> None:
        """Validate ``changes`` now and queue them (later ones win)."""
        clean = check_live_changes(config, changes)
        with self._lock:
            self._pending.update(clean)

    def take(self) -> dict[str, Any]:
        """The queued changes (empty when none), removed from the queue."""
        with self._lock:
            out, self._pending = self._pending, {}
        return out

    @staticmethod
    def apply(config: TrainingConfig, changes: Mapping[str, Any]) -> TrainingConfig:
        """``config`` with ``changes`` (lists become tuples)."""
        upd = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items()}
        return config.replace(**upd)
