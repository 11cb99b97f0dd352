r"""Per-step cost of the objectives, measured interleaved so that they share the machine's state.

For each dimensionality, one stepper per objective is built on the same data and
initialisation (:func:`~dsl_explore.experiments.protocol.config_for`, seed 0); after a warm-up,
``rounds`` rounds each time ``steps`` optimisation steps of every objective in turn, in an
order rotated every round, so that a slow phase of a shared machine hits every objective alike.
The reported figure is the median over rounds of the seconds per step, and the *ratio* of each
objective's median to the MSE median (the paper's claim is about overhead, a ratio).

Examples
--------
>>> from dsl_explore.experiments.protocol import SETTINGS
>>> res = measure_cost((1,), [SETTINGS["mse"], SETTINGS["mse+dsl"]], rounds=2, steps=2,
...                    quick=True)
>>> sorted(res["1"])
['mse', 'mse+dsl']
>>> res["1"]["mse"]["ratio_to_mse"]
1.0
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from dsl_explore.experiments.protocol import Setting, config_for
from dsl_explore.training.inputs import DataOrder, make_training_data, resolve_device
from dsl_explore.training.step import SingleProcessStepper, build_training_model

__all__ = ["measure_cost"]


def measure_cost(
    dims: Sequence[int],
    settings: Sequence[Setting],
    *,
    data_kind: str = "synthetic",
    rounds: int = 7,
    steps: int = 10,
    warmup: int = 3,
    quick: bool = False,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Median seconds per training step of each objective, interleaved, and ratios to MSE.

    Parameters
    ----------
    dims
        Dimensionalities, each at its default size (:data:`~.protocol.DEFAULTS`).
    settings
        The objectives; one named ``"mse"`` gives the ratios' denominator (without it the
        first setting does).
    data_kind
        ``"synthetic"`` or ``"real"``.
    rounds, steps, warmup
        Timed rounds, steps per objective per round, untimed steps per objective first.
    quick
        The quick sizes of the protocol.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA is synchronised around each timed block).
    progress
        Called with a one-line message per dimensionality.

    Returns
    -------
    dict
        ``{str(dims): {setting name: {"seconds_per_step", "seconds_per_step_rounds",
        "ratio_to_mse", "batch_size", "ph_samples"}}}``.
    """
    if rounds < 1 or steps < 1 or warmup < 0:
        raise ValueError(
            f"rounds and steps must be >= 1 and warmup >= 0, got {rounds}, {steps}, {warmup}"
        )
    dev = resolve_device(device)
    ref = next((s.name for s in settings if s.name == "mse"), settings[0].name)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in dims:
        if progress is not None:
            progress(f"cost: {d}D, {len(settings)} objectives, {rounds} rounds of {steps} steps")
        cfgs = {
            s.name: config_for(d, data_kind, s, seed=0, quick=quick, device=dev.type)
            for s in settings
        }
        first = next(iter(cfgs.values()))
        train_arr, _ = make_training_data(first)
        steppers = {}
        for name, cfg in cfgs.items():
            data = DataOrder(torch.from_numpy(train_arr).to(dev), seed=cfg.seed)
            model = build_training_model(cfg, in_channels=train_arr.shape[1])
            steppers[name] = SingleProcessStepper(model, data, cfg, dev)
        for name, st in steppers.items():
            for _ in range(warmup):
                st.step(cfgs[name])
        times: dict[str, list[float]] = {name: [] for name in steppers}
        names = list(steppers)
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                st, cfg = steppers[name], cfgs[name]
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                for _ in range(steps):
                    st.step(cfg)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                times[name].append((time.perf_counter() - t0) / steps)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        out[str(d)] = {
            name: {
                "seconds_per_step": med[name],
                "seconds_per_step_rounds": times[name],
                "ratio_to_mse": med[name] / med[ref],
                "batch_size": cfgs[name].batch_size,
                "ph_samples": cfgs[name].ph_samples,
            }
            for name in names
        }
    return out
