r"""One optimisation step, behind a small protocol so that other backends can plug in.

A :class:`Stepper` owns the model, the optimizer, the precision policy and the data order, and
knows nothing of threads, history or UI: :class:`~dsl_explore.training.TrainingRun` calls
:meth:`Stepper.step` once per step and gets the loss terms back *on the device* (no host sync).
:class:`SingleProcessStepper` is the one-process implementation; a distributed (DDP) stepper
would wrap the model, shard the data order and reduce the terms behind the same interface.

The objective of a step is

.. math::

    \mathcal{L} = \mathrm{MSE}(x, y) + \lambda \, \mathrm{aux}(x, y),
    \qquad \mathrm{aux} \in \{\mathrm{DSL}_{k,w}, \mathrm{PH}_p\}

(:data:`AUX_TERMS`; plain ``"mse"`` has no auxiliary term). The terms come back in the order
of :func:`~dsl_explore.training.metrics.step_columns`: ``(mse, total)`` or
``(mse, aux, total)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from dsl_explore.loss import directional_sign_loss
from dsl_explore.models import ConvAutoencoder, build_model, model_config
from dsl_explore.phloss import persistent_homology_loss
from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.errors import CheckpointError
from dsl_explore.training.inputs import DataOrder

__all__ = ["AUX_TERMS", "SingleProcessStepper", "Stepper", "build_training_model", "loss_terms"]


def _dsl_term(out: torch.Tensor, x: torch.Tensor, cfg: TrainingConfig) -> torch.Tensor:
    return directional_sign_loss(out, x, k=cfg.k, weights=cfg.weights, surrogate=cfg.surrogate)


def _ph_term(out: torch.Tensor, x: torch.Tensor, cfg: TrainingConfig) -> torch.Tensor:
    n = x.shape[0] if cfg.ph_samples is None else min(cfg.ph_samples, x.shape[0])
    return persistent_homology_loss(out[:n], x[:n], order=cfg.ph_order)


AUX_TERMS: dict[str, Callable[[torch.Tensor, torch.Tensor, TrainingConfig], torch.Tensor]] = {
    "mse+dsl": _dsl_term,
    "mse+ph": _ph_term,
}
"""The auxiliary term of each objective that has one (looked up at call time)."""


def loss_terms(out: torch.Tensor, x: torch.Tensor, cfg: TrainingConfig) -> list[torch.Tensor]:
    """The loss terms of ``cfg.loss``; the last one is the total that is minimised.

    Examples
    --------
    >>> x = torch.zeros(2, 1, 8); out = torch.ones(2, 1, 8)
    >>> [float(t) for t in loss_terms(out, x, TrainingConfig(loss="mse", spatial_dims=1))]
    [1.0, 1.0]
    """
    mse = F.mse_loss(out, x)
    if cfg.loss == "mse":
        return [mse, mse]
    aux = AUX_TERMS[cfg.loss](out, x, cfg)
    return [mse, aux, mse + cfg.lam * aux]


def build_training_model(config: TrainingConfig, in_channels: int) -> ConvAutoencoder:
    """The model of ``config``, initialised from ``config.seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(
            config.spatial_dims, compression=config.compression,
            base_channels=config.base_channels, in_channels=in_channels,
        )


class Stepper(Protocol):
    """What :class:`~dsl_explore.training.TrainingRun` needs from a training backend."""

    model: ConvAutoencoder
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp: bool
    n_train: int

    def step(self, config: TrainingConfig) -> torch.Tensor:
        """One optimisation step; the detached float32 loss terms, on the device."""
        ...

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for ``x`` in eval mode, without gradients."""
        ...

    def set_lr(self, lr: float) -> None:
        """Change the learning rate of every parameter group."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint entries of the model, optimizer, scaler and data order."""
        ...

    def load_state_dict(self, state: Mapping[str, Any], *, lr: float) -> None:
        """Restore :meth:`state_dict`'s entries (``CheckpointError`` when they do not fit)."""
        ...


class SingleProcessStepper:
    """Adam on one device, with optional CUDA mixed precision.

    ``amp`` runs the model under ``torch.autocast`` in bfloat16 (float16 with a gradient
    scaler where bfloat16 is unsupported) on CUDA only; on the CPU it is ignored. The losses
    are always computed in float32.

    Parameters
    ----------
    model : ConvAutoencoder
        Moved to ``device``.
    data : DataOrder
        The training batches (already on ``device``).
    config : TrainingConfig
        Its ``lr`` and ``amp``.
    device : torch.device
        Where training runs.
    """

    def __init__(
        self, model: ConvAutoencoder, data: DataOrder, config: TrainingConfig,
        device: torch.device,
    ) -> None:
        self.device = device
        self.model: ConvAutoencoder = model.to(device)
        self.optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.data = data
        self.n_train = data.n_train
        self.amp = bool(config.amp and device.type == "cuda")
        bf16 = self.amp and torch.cuda.is_bf16_supported()
        self._amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self._scaler = (
            torch.amp.GradScaler("cuda") if self.amp and not bf16 else None
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amp:
            with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                out = self.model(x)
            return out.float()
        return self.model(x)

    def step(self, config: TrainingConfig) -> torch.Tensor:
        x = self.data.next_batch(config.batch_size)
        terms = loss_terms(self._forward(x), x, config)
        total = terms[-1]
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            total.backward()
            self.optimizer.step()
        with torch.no_grad():
            return torch.stack([t.detach().float() for t in terms])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        try:
            with torch.no_grad():
                return self._forward(x)
        finally:
            self.model.train()

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "model_config": model_config(self.model),
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer_state": _to_cpu(self.optimizer.state_dict()),
            "scaler_state": None if self._scaler is None else self._scaler.state_dict(),
            **self.data.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any], *, lr: float) -> None:
        mine, theirs = model_config(self.model), dict(state["model_config"])
        if mine != theirs:
            raise CheckpointError(
                f"checkpoint is from another model: {theirs} vs this run's {mine}"
            )
        try:
            self.model.load_state_dict(state["model_state"], strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0:3]
            raise CheckpointError(
                "checkpoint's model state does not fit this model: " + " ".join(first)
            ) from exc
        try:
            self.optimizer.load_state_dict(state["optimizer_state"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint's optimizer state does not fit: {exc}") from exc
        self.set_lr(lr)
        if self._scaler is not None and state.get("scaler_state"):
            self._scaler.load_state_dict(state["scaler_state"])
        self.data.load_state_dict(state)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj
