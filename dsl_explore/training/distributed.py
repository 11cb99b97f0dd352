r"""Training on several processes with torch's own engine: ``torch.distributed`` and DDP.

:class:`DistributedStepper` is the :class:`~dsl_explore.training.step.Stepper` of a process
group that ``torchrun`` started (one process per device; gloo on the CPU, NCCL on CUDA):

- the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages
  the gradients over the ranks in its backward pass;
- every rank draws the *same* global batch of ``config.batch_size`` samples from the seeded
  :class:`~dsl_explore.training.inputs.DataOrder` and keeps its shard ``batch[rank::world]``
  (the strided split of :class:`~torch.utils.data.DistributedSampler`), so the global batch is
  the one a single process would draw and the data order (in checkpoints) is the same on every
  rank, whatever their number;
- the loss terms of a step are averaged over the ranks (``all_reduce``), and so are the
  metrics of an evaluation (:meth:`DistributedStepper.live_metrics`: each rank measures its
  shard of the fixed validation batch; means weighted by the shard sizes).

With equal shards the mean of the shards' means is the global mean, so a step on ``W`` ranks
computes the same loss and gradient as one process on the same global batch, up to the order
of the float32 additions:

.. math::

    \frac{1}{W} \sum_{r=0}^{W-1} \nabla \frac{W}{B} \sum_{i \in S_r} \ell_i
    = \nabla \frac{1}{B} \sum_{i=1}^{B} \ell_i .

(The PH term with ``ph_samples`` takes the first samples of each *shard*, which is not the
first samples of the global batch: that objective is not rank-count invariant.)

Examples
--------
>>> import torch.distributed as dist
>>> is_distributed()  # no process group here
False
>>> shard_of(torch.arange(6), rank=1, world_size=2).tolist()
[1, 3, 5]
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dsl_explore.models import ConvAutoencoder
from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.evaluate import live_metrics
from dsl_explore.training.inputs import DataOrder
from dsl_explore.training.step import SingleProcessStepper, loss_terms

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DistributedContext",
    "DistributedStepper",
    "broadcast_object",
    "init_distributed",
    "is_distributed",
    "rank_device",
    "shard_of",
]

DEFAULT_TIMEOUT_S = 120.0
"""Seconds a collective waits for the other ranks before the process group gives up."""


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the process group (torchrun's environment).

    Attributes
    ----------
    rank, world_size, local_rank : int
        ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.
    backend : str
        ``"gloo"`` or ``"nccl"``.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the run directory; the others write nothing."""
        return self.rank == 0


def is_distributed() -> bool:
    """Whether a process group is initialised in this process."""
    return dist.is_available() and dist.is_initialized()


def init_distributed(device: str = "auto", *, timeout_s: float = DEFAULT_TIMEOUT_S
                     ) -> DistributedContext:
    """Join the process group torchrun describes (``env://``): NCCL for CUDA, gloo else.

    ``timeout_s`` bounds every collective: a rank that died makes the others fail after at
    most that long (torchrun's monitor usually stops them sooner).

    Raises
    ------
    RuntimeError
        Not started by torchrun (``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` unset).
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"not started by torchrun: {', '.join(missing)} unset; run "
            "`torchrun --nproc-per-node N -m dsl_explore.train --config run.toml --run-dir DIR`"
        )
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    if not is_distributed():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=float(timeout_s)))
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def rank_device(device: torch.device) -> torch.device:
    """``device`` with this rank's CUDA index (``LOCAL_RANK``) inside a process group."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_of(batch: torch.Tensor, *, rank: int, world_size: int) -> torch.Tensor:
    """The samples ``rank::world_size`` of a global batch (DistributedSampler's split)."""
    return batch[rank::world_size]


def broadcast_object(obj: Any, *, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (a no-op without a process group)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class DistributedStepper(SingleProcessStepper):
    """Adam under DistributedDataParallel: one shard of every global batch per rank.

    Needs an initialised process group (:func:`init_distributed`). ``config.batch_size`` is the
    *global* batch; it must be a multiple of the world size.

    Parameters
    ----------
    model, data, config, device
        As for :class:`~dsl_explore.training.step.SingleProcessStepper`; ``data`` holds the
        whole training set on every rank (only the order's shard is used).

    Raises
    ------
    RuntimeError
        No process group.
    ValueError
        A ``batch_size`` that the world size does not divide.
    """

    def __init__(
        self, model: ConvAutoencoder, data: DataOrder, config: TrainingConfig,
        device: torch.device,
    ) -> None:
        if not is_distributed():
            raise RuntimeError("DistributedStepper needs a process group (init_distributed)")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        _check_global_batch(config.batch_size, self.world_size)
        super().__init__(model, data, config, device)
        ids = [device.index] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.model, device_ids=ids)

    @property
    def launch(self) -> dict[str, Any]:
        """World size, backend and the global and per-rank batch (recorded in the run dir)."""
        return {"world_size": self.world_size, "backend": dist.get_backend()}

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amp:
            with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                out = self.ddp(x)
            return out.float()
        return self.ddp(x)

    def step(self, config: TrainingConfig) -> torch.Tensor:
        _check_global_batch(config.batch_size, self.world_size)
        x = shard_of(self.data.next_batch(config.batch_size), rank=self.rank,
                     world_size=self.world_size)
        terms = loss_terms(self._train_forward(x), x, config)
        total = terms[-1]
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            total.backward()  # DDP averages the gradients over the ranks here
            self.optimizer.step()
        with torch.no_grad():
            out = torch.stack([t.detach().float() for t in terms])
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
            return out / self.world_size

    def live_metrics(self, recon: np.ndarray, target: np.ndarray, *,
                     thresholds: int) -> dict[str, Any]:
        """The evaluation metrics of the fixed batch: each rank measures its shard, then the
        shard means are averaged with the shard sizes as weights (every metric is a mean over
        samples). A batch smaller than the world is measured whole on every rank."""
        n = recon.shape[0]
        if n < self.world_size:
            return live_metrics(recon, target, thresholds=thresholds)
        mine = live_metrics(recon[self.rank::self.world_size],
                            target[self.rank::self.world_size], thresholds=thresholds)
        keys, flat = _flatten(mine)
        weight = recon[self.rank::self.world_size].shape[0]
        buf = torch.tensor([*(v * weight for v in flat), float(weight)], dtype=torch.float64)
        if self.device.type == "cuda":
            buf = buf.to(self.device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        vals = (buf[:-1] / buf[-1]).cpu().tolist()
        return _unflatten(keys, vals, mine)


def _check_global_batch(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise ValueError(
            f"config field 'batch_size' ({batch_size}) is the global batch and must be a "
            f"multiple of the world size ({world_size})"
        )


def _flatten(metrics: Mapping[str, Any]) -> tuple[list[tuple[str, int]], list[float]]:
    keys: list[tuple[str, int]] = []
    flat: list[float] = []
    for key, v in metrics.items():
        vals = list(v) if isinstance(v, (list, tuple)) else [v]
        keys.append((key, len(vals) if isinstance(v, (list, tuple)) else -1))
        flat.extend(float("nan") if x is None else float(x) for x in vals)
    return keys, flat


def _unflatten(keys: list[tuple[str, int]], vals: list[float],
               like: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    for key, n in keys:
        if n < 0:
            out[key] = vals[i] if like[key] is not None else None
            i += 1
        else:
            out[key] = vals[i : i + n]
            i += n
    return out
