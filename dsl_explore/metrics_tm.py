r"""The exact sign-mismatch rate and the Betti error as ``torchmetrics`` Metrics.

For Lightning modules or your own loops (optional extra ``torchmetrics``): each keeps sums as
its states with ``dist_reduce_fx="sum"``, so under DDP :meth:`~torchmetrics.Metric.compute`
synchronises them across the ranks and returns the value of the whole data set, exactly
(integer counts for the rate).

- :class:`SignMismatchRate`: the mean over the spatial axes of each axis' fraction of finite
  differences whose signs differ (the ``count_rate`` of training,
  :func:`~dsl_explore.training.metrics.sign_mismatch_rate`),

  .. math::

      r = \frac{1}{d} \sum_{a=1}^{d} \frac{\sum_{\text{batches}} M_a}
      {\sum_{\text{batches}} N_a} \in [0, 1].

- :class:`BettiError`: the mean over samples (and channels) of the total Betti error
  :math:`\sum_q \frac{1}{T}\sum_i |\beta_q(x, t_i) - \beta_q(y, t_i)|`
  (:func:`~dsl_explore.topology.betti_error`; the ``betti_total`` of training);
  :meth:`BettiError.per_dim` gives each homology dimension's mean.

Inputs are ``(N, C, *spatial)`` tensors with ``spatial_dims`` spatial axes (1-3).

Examples
--------
>>> import torch
>>> rate = SignMismatchRate(spatial_dims=1)
>>> rate.update(torch.tensor([[[0.0, 1.0, 2.0, 3.0]]]), torch.tensor([[[0.0, 1.0, 0.0, 1.0]]]))
>>> float(rate.compute())
0.3333333333333333
>>> betti = BettiError(spatial_dims=1, thresholds=4)
>>> betti.update(torch.zeros(2, 1, 8), torch.zeros(2, 1, 8))
>>> float(betti.compute())
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from dsl_explore._validation import check_int
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.topology import betti_error

__all__ = ["BettiError", "SignMismatchRate"]


def _check_batch(preds: torch.Tensor, target: torch.Tensor, spatial_dims: int) -> None:
    if not (torch.is_tensor(preds) and torch.is_tensor(target)):
        raise TypeError("preds and target must be torch tensors")
    if preds.shape != target.shape or preds.ndim != spatial_dims + 2:
        raise ValueError(
            f"preds and target must have one shape (N, C, *spatial) with {spatial_dims} "
            f"spatial axes, got {tuple(preds.shape)} and {tuple(target.shape)}"
        )


class SignMismatchRate(Metric):
    """The exact sign-mismatch rate in [0, 1], synchronised across ranks (module docstring).

    Parameters
    ----------
    spatial_dims : int
        1, 2 or 3.
    **kwargs
        Passed to :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    mismatches: torch.Tensor
    differences: torch.Tensor

    def __init__(self, spatial_dims: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spatial_dims = check_int(spatial_dims, "spatial_dims", minimum=1, maximum=3)
        zeros = torch.zeros(self.spatial_dims, dtype=torch.int64)
        self.add_state("mismatches", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("differences", default=zeros.clone(), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch's exact per-axis mismatch counts and numbers of differences."""
        _check_batch(preds, target, self.spatial_dims)
        p, t = preds.detach(), target.detach()
        per = sign_mismatch_count(p, t, reduction="sum", per_axis=True)
        self.mismatches += torch.as_tensor(per).to(self.mismatches.device, torch.int64)
        n = int(np.prod(p.shape))
        diffs = [n // p.shape[a] * (p.shape[a] - 1) for a in range(2, p.ndim)]
        self.differences += torch.tensor(diffs, dtype=torch.int64, device=self.differences.device)

    def compute(self) -> torch.Tensor:
        """The mean over axes of ``mismatches / differences`` (float64)."""
        return (self.mismatches.double() / self.differences.clamp_min(1).double()).mean()


class BettiError(Metric):
    """The mean total Betti error per sample, synchronised across ranks (module docstring).

    Parameters
    ----------
    spatial_dims : int
        1, 2 or 3.
    thresholds : int
        Thresholds of :func:`~dsl_explore.topology.betti_error` (quantiles of each target).
    **kwargs
        Passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    per_dim_sum: torch.Tensor
    samples: torch.Tensor

    def __init__(self, spatial_dims: int, *, thresholds: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spatial_dims = check_int(spatial_dims, "spatial_dims", minimum=1, maximum=3)
        self.thresholds = check_int(thresholds, "thresholds", minimum=1)
        self.add_state("per_dim_sum", default=torch.zeros(self.spatial_dims, dtype=torch.float64),
                       dist_reduce_fx="sum")
        self.add_state("samples", default=torch.zeros((), dtype=torch.int64),
                       dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add each sample's (and channel's) Betti error per homology dimension."""
        _check_batch(preds, target, self.spatial_dims)
        p = preds.detach().float().cpu().numpy()
        t = target.detach().float().cpu().numpy()
        err = betti_error(p, t, thresholds=self.thresholds, dims=tuple(range(2, p.ndim)))
        per = np.asarray(err.per_dim, dtype=np.float64).reshape(-1, self.spatial_dims)
        dev = self.per_dim_sum.device
        self.per_dim_sum += torch.from_numpy(per.sum(0)).to(dev)
        self.samples += per.shape[0]

    def per_dim(self) -> torch.Tensor:
        """The mean Betti error of each homology dimension (local states; no sync)."""
        return self.per_dim_sum / self.samples.clamp_min(1).double()

    def compute(self) -> torch.Tensor:
        """The mean total Betti error (the sum over dimensions of :meth:`per_dim`)."""
        return (self.per_dim_sum / self.samples.clamp_min(1).double()).sum()
