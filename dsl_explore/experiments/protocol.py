r"""The training protocol of the reproduction: data, model and optimiser per dimensionality and
data kind, the objectives compared, and how a table row becomes a :class:`TrainingConfig`.

How the settings were chosen (tuning seeds 100 and 101, never the reported seeds 0-4)
------------------------------------------------------------------------------------
- **1D.** The first protocol (``bumps`` with 12 extrema, 16x compression, Adam 5e-4) put the
  autoencoder on a plateau near the mean signal: on tuning seed 101 plain MSE ended at
  validation MSE 0.063 against 0.0625 for predicting the mean signal, while MSE + DSL left it
  (0.015); on seed 100 both left it. A plateau that one objective leaves by chance flatters
  it, so 1D now uses 8x compression (a depth-3 encoder, 32 latent values for 16 extrema), 16
  extrema and Adam 1e-3: on both tuning seeds plain MSE ends at 0.0029 and 0.0036 against
  0.058 and 0.060 for the mean signal (16-20x lower), and MSE + DSL at 0.0036 (seed 100).
  Every reported run records the mean-signal MSE of its validation split beside its own.
- **2D and 3D** keep the first protocol (16x compression, Adam 5e-4, ``blobs``), chosen on
  tuning seed 100 in an earlier round; only the step counts were cut (2D 800 -> 600, 3D 600 ->
  400) so that the paper suite with 5 seeds, real data and the whole-batch PH baseline fits
  about an hour on two CPU cores.
- **DSL**: lambda 0.5, k 20 (data in [0, 1]); the sweeps suite varies both.
- **PH loss**: lambda 0.1 (0.5 stalled 1D training in the first round). The reference row
  computes it on the first ``ph_samples=2`` samples of each batch, as the first tables did; the
  ``mse+ph (whole batch)`` row computes it on every sample, the fair comparison of cost and
  effect.
- **Real data** (:mod:`dsl_explore.real_data`; training and validation windows from disjoint
  parts of every source) uses the same model, optimiser and step counts as the synthetic data
  of its dimensionality; nothing was tuned on it. 1D windows are 64 samples long (at 256 only
  CO2 is long enough to give validation windows; at 64 all three series do).

Examples
--------
>>> cfg = config_for(2, "synthetic", SETTINGS["mse+dsl"], seed=0, quick=True)
>>> cfg.loss, cfg.lam, cfg.k, cfg.size, cfg.data
('mse+dsl', 0.5, 20.0, (16, 16), 'blobs')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dsl_explore.training import TrainingConfig

__all__ = [
    "COMMON",
    "DATA_KINDS",
    "DEFAULTS",
    "QUICK",
    "REAL",
    "SETTINGS",
    "TUNING_SEEDS",
    "Setting",
    "config_for",
]

TUNING_SEEDS = (100, 101)
"""Seeds the protocol was chosen on; reported runs use seeds 0, 1, 2, ..."""

DATA_KINDS = ("synthetic", "real")
"""The two kinds of data of the reproduction."""

COMMON: dict[str, Any] = dict(
    compression=16, lr=5e-4, val_fraction=0.25, eval_samples=2, betti_thresholds=16,
)
"""Options shared by every run unless a dimensionality overrides them."""

DEFAULTS: dict[int, dict[str, Any]] = {
    1: dict(
        data="bumps", size=256, data_options={"n_extrema": 16}, n_samples=512, batch_size=32,
        base_channels=8, steps=1000, eval_every=200, compression=8, lr=1e-3,
    ),
    2: dict(
        data="blobs", size=32, data_options={"n_blobs": 12}, n_samples=320, batch_size=16,
        base_channels=16, steps=600, eval_every=200,
    ),
    3: dict(
        data="blobs", size=16, data_options={"n_blobs": 8}, n_samples=192, batch_size=8,
        base_channels=8, steps=400, eval_every=200,
    ),
}
"""Per dimensionality: the synthetic data and the training sizes of the default protocol."""

REAL: dict[int, dict[str, Any]] = {
    1: dict(data="real", data_options={}, size=64),
    2: dict(data="real", data_options={}),
    3: dict(data="real", data_options={}),
}
"""Per dimensionality: what changes for real data (:mod:`dsl_explore.real_data`)."""

QUICK: dict[int, dict[str, Any]] = {
    1: dict(size=64, n_samples=64, batch_size=8, steps=150, compression=8),
    2: dict(size=16, data_options={"n_blobs": 6}, n_samples=64, batch_size=8, steps=150),
    3: dict(size=8, data_options={"n_blobs": 4}, n_samples=32, batch_size=4, steps=60),
}
"""Overrides for ``quick=True`` (CI smoke scale: the numbers are not meaningful)."""

QUICK_SYNTHETIC_OPTIONS: dict[int, dict[str, Any]] = {1: {"n_extrema": 6}}
"""Generator options of the quick synthetic 1D data (fewer extrema fit 64 samples)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One objective of a table: a row name and the config fields it sets.

    Attributes
    ----------
    name : str
        The row's name (``"mse+dsl"``, ``"mse+dsl lam=2"``, ...), unique within a suite.
    fields : Mapping
        :class:`TrainingConfig` fields: ``loss`` and, as needed, ``lam``, ``k``,
        ``surrogate``, ``ph_samples``.
    """

    name: str
    fields: Mapping[str, Any]

    @property
    def loss(self) -> str:
        return str(self.fields["loss"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": dict(self.fields)}


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("mse", {"loss": "mse"}),
        Setting("mse+dsl", {"loss": "mse+dsl", "lam": 0.5, "k": 20.0}),
        Setting("mse+ph", {"loss": "mse+ph", "lam": 0.1, "ph_samples": 2}),
        Setting("mse+ph (whole batch)", {"loss": "mse+ph", "lam": 0.1, "ph_samples": None}),
    )
}
"""The objectives of the paper table (the sweeps add their own, see :mod:`.suites`)."""


def config_for(
    dims: int,
    data_kind: str,
    setting: Setting,
    *,
    seed: int,
    quick: bool = False,
    size: int | None = None,
    steps: int | None = None,
    device: str = "cpu",
) -> TrainingConfig:
    """The :class:`TrainingConfig` of one run: protocol + data kind + objective + seed.

    The seed sets the data (``data_seed``), the split, the initialisation and the data order,
    so the objectives of one (dimensionality, data kind, seed) share all of them.

    Raises
    ------
    ValueError
        An unknown ``dims`` or ``data_kind``, or a size that does not suit the model.
    """
    if dims not in DEFAULTS:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")
    if data_kind not in DATA_KINDS:
        raise ValueError(f"data kind must be one of {DATA_KINDS}, got {data_kind!r}")
    opts: dict[str, Any] = {**COMMON, **DEFAULTS[dims]}
    if quick:
        opts.update(QUICK[dims])
        if data_kind == "synthetic" and dims in QUICK_SYNTHETIC_OPTIONS:
            opts["data_options"] = dict(QUICK_SYNTHETIC_OPTIONS[dims])
    if data_kind == "real":
        opts.update(REAL[dims])
    if size is not None:
        opts["size"] = int(size)
    if steps is not None:
        opts["steps"] = int(steps)
    opts["eval_every"] = max(1, min(int(opts["eval_every"]), int(opts["steps"]) or 1))
    opts.update(setting.fields)
    return TrainingConfig(**opts, spatial_dims=dims, seed=seed, data_seed=seed, device=device)
