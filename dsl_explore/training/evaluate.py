"""Measure reconstructions: a trained model on held-out data, or a run's fixed batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsl_explore.training.metrics import EvalBatch, compute_metrics

__all__ = ["evaluate_model", "live_metrics"]


def live_metrics(recon: np.ndarray, target: np.ndarray, *, thresholds: int) -> dict[str, Any]:
    """The metrics logged in ``history["evals"]``, keyed by their history column."""
    return compute_metrics(EvalBatch(recon, target, betti_thresholds=thresholds), live=True)


def evaluate_model(
    model: torch.nn.Module,
    data: np.ndarray | torch.Tensor,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    betti_thresholds: int = 16,
    bottleneck: bool = True,
    k: float | None = 20.0,
) -> dict[str, Any]:
    """Reconstruct held-out ``data`` and measure it: means over samples.

    Returns a dict with every evaluation metric of the registry
    (:data:`~dsl_explore.training.metrics.METRICS`): ``mse``, ``psnr`` (peak 1, the data being
    in [0, 1]), ``count_rate`` (exact sign-mismatch rate in [0, 1], the mean over axes),
    ``spurious``/``lost``/``changed`` (mismatched axis-wise critical points per sample),
    ``betti_per_dim``, ``betti_total``, ``betti_relative``, ``bottleneck`` (optional) and
    ``dsl`` (DSL with sharpness ``k``, mean reduction; left out for ``k=None``).

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.models import build_model
    >>> m = evaluate_model(build_model(1, compression=8, base_channels=4),
    ...                    np.random.default_rng(0).random((3, 1, 32), dtype=np.float32))
    >>> sorted(m)
    ['betti_per_dim', 'betti_relative', 'betti_total', 'bottleneck', 'changed', 'count_rate',
     'dsl', 'lost', 'mse', 'psnr', 'spurious']
    >>> 0.0 <= m["count_rate"] <= 1.0
    True
    """
    dev = torch.device(device)
    x = torch.as_tensor(np.asarray(data, dtype=np.float32) if not torch.is_tensor(data) else data)
    was_training = model.training
    model.eval()
    recs = []
    try:
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                recs.append(model(x[i : i + batch_size].to(dev)).float().cpu())
    finally:
        model.train(was_training)
    batch = EvalBatch(
        torch.cat(recs).numpy(), x.float().cpu().numpy(), betti_thresholds=betti_thresholds,
        bottleneck=bottleneck, k=k,
    )
    return compute_metrics(batch)
