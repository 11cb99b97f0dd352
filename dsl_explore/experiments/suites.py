"""The suites ``dsl-explore reproduce`` runs: which dimensionalities, data kinds, objectives and
seeds, and against which baseline the relative changes are taken.

- ``paper``: the paper's claim. 1D, 2D and 3D, synthetic and real data, 5 seeds; MSE, MSE + DSL,
  MSE + PH on 2 samples per batch and MSE + PH on the whole batch (synthetic data only: it is the
  costliest row, and its question, what the subsampling costs the PH baseline, does not depend
  on the data); then the per-step cost of each objective, measured interleaved.
- ``sweeps``: the trade-off. 2D synthetic data, 5 seeds; MSE + DSL over lambda (k = 20) and over
  k (lambda = 0.5), and the five sign surrogates at the defaults; for the Pareto figure of Betti
  error against MSE.

A new suite is one entry in :data:`SUITES`.

Examples
--------
>>> [s.name for s in SUITES["sweeps"].settings][:3]
['mse', 'mse+dsl lam=0.1', 'mse+dsl lam=0.5']
>>> SUITES["paper"].n_runs(quick=False)
105
"""

from __future__ import annotations

import dataclasses

from dsl_explore.experiments.protocol import SETTINGS, Setting
from dsl_explore.registry import SURROGATES

__all__ = ["SUITES", "SWEEP_K", "SWEEP_LAM", "Suite"]


@dataclasses.dataclass(frozen=True)
class Suite:
    """A set of runs and how they are reported.

    Attributes
    ----------
    name : str
        ``--suite`` name.
    dims : tuple of int
        Dimensionalities.
    data_kinds : tuple of str
        ``"synthetic"`` and/or ``"real"``.
    settings : tuple of Setting
        The objectives (table rows); the first is the baseline of every relative change.
    seeds : int
        Reported seeds 0..seeds-1.
    quick_seeds : int
        Seeds of ``--quick`` (enough for an interval to exist).
    synthetic_only : tuple of str
        Settings run on synthetic data only.
    cost : bool
        Whether the suite ends with the interleaved per-step cost measurement.
    """

    name: str
    dims: tuple[int, ...]
    data_kinds: tuple[str, ...]
    settings: tuple[Setting, ...]
    seeds: int = 5
    quick_seeds: int = 2
    synthetic_only: tuple[str, ...] = ()
    cost: bool = False

    @property
    def baseline(self) -> Setting:
        return self.settings[0]

    def settings_for(self, data_kind: str) -> tuple[Setting, ...]:
        """The settings run on ``data_kind``."""
        if data_kind == "synthetic":
            return self.settings
        return tuple(s for s in self.settings if s.name not in self.synthetic_only)

    def n_runs(self, *, quick: bool, dims: tuple[int, ...] | None = None,
               data_kinds: tuple[str, ...] | None = None, seeds: int | None = None) -> int:
        """Number of training runs of the suite (with optional restrictions)."""
        n_seeds = seeds if seeds is not None else (self.quick_seeds if quick else self.seeds)
        kinds = data_kinds if data_kinds is not None else self.data_kinds
        n_dims = len(dims if dims is not None else self.dims)
        return n_dims * n_seeds * sum(len(self.settings_for(k)) for k in kinds)


SWEEP_LAM = (0.1, 0.5, 2.0, 8.0)
"""lambda values of the sweeps (k = 20)."""

SWEEP_K = (5.0, 20.0, 80.0, 320.0)
"""k values of the sweeps (lambda = 0.5), for data in [0, 1]."""


def _dsl(lam: float, k: float, surrogate: str = "tanh") -> dict[str, object]:
    return {"loss": "mse+dsl", "lam": lam, "k": k, "surrogate": surrogate}


def _sweep_settings() -> tuple[Setting, ...]:
    out: dict[str, Setting] = {"mse": SETTINGS["mse"]}
    for lam in SWEEP_LAM:
        out[f"mse+dsl lam={lam:g}"] = Setting(f"mse+dsl lam={lam:g}", _dsl(lam, 20.0))
    for k in SWEEP_K:
        if k != 20.0:  # lam=0.5, k=20 is already there
            out[f"mse+dsl k={k:g}"] = Setting(f"mse+dsl k={k:g}", _dsl(0.5, k))
    for name in SURROGATES:
        if name != "tanh":  # tanh at the defaults is "mse+dsl lam=0.5"
            out[f"mse+dsl {name}"] = Setting(f"mse+dsl {name}", _dsl(0.5, 20.0, name))
    return tuple(out.values())


SUITES: dict[str, Suite] = {
    "paper": Suite(
        name="paper",
        dims=(1, 2, 3),
        data_kinds=("synthetic", "real"),
        settings=tuple(SETTINGS.values()),
        synthetic_only=("mse+ph (whole batch)",),
        cost=True,
    ),
    "sweeps": Suite(
        name="sweeps",
        dims=(2,),
        data_kinds=("synthetic",),
        settings=_sweep_settings(),
    ),
}
"""The suites by ``--suite`` name."""
