r"""Training that runs live: an autoencoder trains in a background thread under your hands.

A :class:`TrainingRun` trains a :class:`~dsl_explore.models.ConvAutoencoder` on one of the
generated data sets of :mod:`dsl_explore.data` (or your own array) with

.. math::

    \mathcal{L} = \mathrm{MSE}(x, y) + \lambda \, \mathrm{DSL}_{k,w}(x, y)
    \qquad\text{or}\qquad
    \mathcal{L} = \mathrm{MSE}(x, y) + \lambda \, \mathrm{PH}_p(x, y),

(``loss="mse"``, ``"mse+dsl"`` or ``"mse+ph"``; see :mod:`dsl_explore.loss` and
:mod:`dsl_explore.phloss`). It runs in a daemon thread so a notebook kernel and its widgets stay
responsive: :meth:`TrainingRun.start`, :meth:`~TrainingRun.pause`, :meth:`~TrainingRun.resume`,
:meth:`~TrainingRun.stop`, and :meth:`~TrainingRun.set` changes ``lam``, ``k``, ``weights``,
``surrogate`` and ``lr`` while it runs (applied before the next step and recorded in the history
as an event).

How the hot loop avoids host syncs
----------------------------------
The loss terms of every step are written into a small tensor buffer on the training device
(``eval_every`` rows); nothing is read back to the host per step. Every ``eval_every`` steps (and
before a checkpoint, a pause or the end) the buffer is copied to the host in one transfer and
appended to :attr:`TrainingRun.history`. At the same moments the model reconstructs a *fixed*
validation batch; the reconstruction, its target and its metrics (those of the metric registry
:data:`~dsl_explore.training.metrics.METRICS`: the exact sign-mismatch rate in [0, 1],
mismatched critical points, Betti error) are computed on CPU numpy copies of a few samples and
published as :meth:`TrainingRun.snapshot`. So the per-step history lags by at most
``eval_every`` steps. (The PH-loss baseline is the exception: it computes persistence on the CPU
every step, which is exactly its cost.)

Device and precision
--------------------
``device="auto"`` takes CUDA when available, else the CPU. ``amp=True`` runs the model under
``torch.autocast`` in bfloat16 (float16 with a gradient scaler where bfloat16 is unsupported) on
CUDA only; **on the CPU ``amp`` is ignored** (training stays float32). The losses are always
computed in float32.

Checkpoints and resuming
------------------------
:meth:`TrainingRun.checkpoint` writes model and optimizer state, the (live) config, the
history, the step, the data-order generator and RNG states atomically (a temporary file, then
``os.replace``). :meth:`TrainingRun.from_checkpoint` loads it with ``torch.load(...,
weights_only=True)`` and continues: on the CPU a run killed at step ``s`` and resumed from its
checkpoint with the same number of torch threads has exactly the history of an uninterrupted run
(the data order comes from a seeded ``torch.Generator`` whose state is checkpointed; torch's
convolution gradients depend on the thread count through their summation order). Evaluations
happen at multiples of ``eval_every`` and at the final step.

The package
-----------
One concept per module: :mod:`~.config` (:class:`TrainingConfig`, TOML), :mod:`~.inputs`
(device, data, data order), :mod:`~.step` (the optimisation step behind the
:class:`~dsl_explore.training.step.Stepper` protocol), :mod:`~.metrics` (the metric registry),
:mod:`~.evaluate`, :mod:`~.history`, :mod:`~.checkpoint`, :mod:`~.live` (settings changed while
it runs), :mod:`~.control` (the thread and its controls) and :mod:`~.run` (:class:`TrainingRun`,
:func:`train`).

Examples
--------
>>> from dsl_explore.training import TrainingConfig, train
>>> cfg = TrainingConfig(spatial_dims=1, size=64, n_samples=24, steps=4, eval_every=2,
...                      batch_size=8, base_channels=4)
>>> run = train(cfg, progress=False)
>>> run.step, run.history["steps"]["step"]
(4, [1, 2, 3, 4])
>>> sorted(run.snapshot()["metrics"])[:3]
['betti_per_dim', 'betti_total', 'changed']
"""

from __future__ import annotations

from dsl_explore.training.checkpoint import load_checkpoint
from dsl_explore.training.config import (
    DEVICES,
    LIVE_FIELDS,
    LOSSES,
    RESUME_OVERRIDABLE,
    TrainingConfig,
)
from dsl_explore.training.control import Terminated
from dsl_explore.training.errors import CheckpointError, TrainingError
from dsl_explore.training.evaluate import evaluate_model
from dsl_explore.training.inputs import make_training_data, resolve_device
from dsl_explore.training.metrics import METRICS, Metric, sign_mismatch_rate
from dsl_explore.training.run import TrainingRun, train
from dsl_explore.training.step import SingleProcessStepper, Stepper

__all__ = [
    "DEVICES",
    "LIVE_FIELDS",
    "LOSSES",
    "METRICS",
    "RESUME_OVERRIDABLE",
    "CheckpointError",
    "Metric",
    "SingleProcessStepper",
    "Stepper",
    "Terminated",
    "TrainingConfig",
    "TrainingError",
    "TrainingRun",
    "evaluate_model",
    "load_checkpoint",
    "make_training_data",
    "resolve_device",
    "sign_mismatch_rate",
    "train",
]
