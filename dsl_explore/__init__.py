"""dsl_explore: the Directional Sign Loss, its exact counterpart, critical points and topology.

The math lives in small modules that import only numpy, torch and gudhi:

- :mod:`dsl_explore.loss`: :func:`directional_sign_loss`, :class:`DirectionalSignLoss`
- :mod:`dsl_explore.counting`: :func:`sign_mismatch_count`, :func:`sign_mismatch_map`
- :mod:`dsl_explore.critical`: :func:`critical_points`, :func:`mismatched_critical_points`
- :mod:`dsl_explore.topology`: :func:`betti_curve`, :func:`betti_error`, :func:`diagram_distance`

Names are loaded on first use, so ``import dsl_explore`` stays light; the interactive parts
(:mod:`dsl_explore.plots`, :mod:`dsl_explore.widgets`, :mod:`dsl_explore.export`) import plotly,
ipywidgets and pyvista only when they are imported themselves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "directional_sign_loss": "loss",
    "DirectionalSignLoss": "loss",
    "SURROGATES": "loss",
    "sign_mismatch_count": "counting",
    "sign_mismatch_map": "counting",
    "MismatchMap": "counting",
    "CriticalType": "critical",
    "CriticalMismatch": "critical",
    "critical_points": "critical",
    "mismatched_critical_points": "critical",
    "betti_curve": "topology",
    "betti_error": "topology",
    "BettiError": "topology",
    "diagram_distance": "topology",
    "persistence_diagrams": "topology",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from dsl_explore.counting import MismatchMap, sign_mismatch_count, sign_mismatch_map
    from dsl_explore.critical import (
        CriticalMismatch,
        CriticalType,
        critical_points,
        mismatched_critical_points,
    )
    from dsl_explore.loss import SURROGATES, DirectionalSignLoss, directional_sign_loss
    from dsl_explore.topology import (
        BettiError,
        betti_curve,
        betti_error,
        diagram_distance,
        persistence_diagrams,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsl_explore' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"dsl_explore.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
