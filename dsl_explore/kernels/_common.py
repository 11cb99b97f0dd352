"""What the backends share: the canonical ``(B, N0, N1, N2)`` layout, the reduction factors and
the torch-side finish (the autograd formula and its two gradient modes live in
:mod:`dsl_explore.kernels._op`).

Layout
------
``dims`` may name any axes. The kernels see the tensor permuted to ``(*sample axes, *sorted(dims))``
with the sample axes merged into one ``B`` (a view when the strides allow it, a copy otherwise) and
the spatial axes padded in front to three: 1D is ``(B, 1, 1, L)``, 2D ``(B, 1, H, W)``, 3D
``(B, D, H, W)``. *Kernel axis* ``a`` in 0..2 is the ``a``-th of these; the weights follow the
entries of ``dims`` to their kernel axis. For the usual ``dims`` (the last 1-3 axes) of a
contiguous tensor this is a free view, and the Triton kernels also take the strided view as it is
(no copy); the CPU path makes the view contiguous (a copy only for non-contiguous inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch

from dsl_explore.registry import surrogate_id

FUSED_SURROGATES = ("tanh", "softsign", "arctan", "erf", "sigmoid")
"""The surrogates of :data:`dsl_explore.registry.SIGN_SURROGATES` whose float32 and float64 code is
written in :mod:`~dsl_explore.kernels._csrc` (C) and :mod:`~dsl_explore.kernels._triton_src`
(Triton). Their ids come from the registry; a registry entry missing here runs on the torch
reference only (``backend="auto"``), and the kernels refuse an id they have no code for."""


@dataclass(frozen=True)
class Layout:
    """How a tensor of ``shape`` with difference axes ``dims`` maps to ``(B, N0, N1, N2)``."""

    shape: tuple[int, ...]
    dims: tuple[int, ...]
    perm: tuple[int, ...]
    inv: tuple[int, ...]
    sample_shape: tuple[int, ...]
    spatial: tuple[int, ...]
    B: int
    N: tuple[int, int, int]
    ndim: int
    kaxis: tuple[int, ...]  # kernel axis of each entry of dims
    in_order: bool  # perm is the identity: the sample axes come first, dims are the last axes

    @classmethod
    def make(cls, shape: tuple[int, ...], dims: tuple[int, ...]) -> Layout:
        """The layout of ``shape`` for ``dims`` (memoised: every call with the same plain-int
        shape and dims returns the same frozen object)."""
        key = (tuple(shape), tuple(dims))
        if all(type(n) is int for n in key[0]):  # not symbolic sizes (torch.compile tracing)
            return _layout(*key)
        return cls._build(*key)

    @classmethod
    def _build(cls, shape: tuple[int, ...], dims: tuple[int, ...]) -> Layout:
        shape = tuple(int(n) for n in shape)
        sd = sorted(dims)
        sa = [i for i in range(len(shape)) if i not in dims]
        perm = tuple(sa + sd)
        inv = tuple(sorted(range(len(perm)), key=lambda i: perm[i]))
        sample_shape = tuple(shape[i] for i in sa)
        spatial = tuple(shape[i] for i in sd)
        ndim = len(sd)
        n = (1,) * (3 - ndim) + spatial
        kaxis = tuple(3 - ndim + sd.index(d) for d in dims)
        return cls(shape, tuple(dims), perm, inv, sample_shape, spatial, math.prod(sample_shape),
                   (n[0], n[1], n[2]), ndim, kaxis, perm == tuple(range(len(shape))))

    @property
    def numel(self) -> int:
        return self.B * self.N[0] * self.N[1] * self.N[2]

    @property
    def rows(self) -> int:
        return self.B * self.N[0] * self.N[1]

    def view4(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` as ``(B, N0, N1, N2)``: a view where the strides allow it, else a copy."""
        if self.in_order:  # the usual case: one view (this runs on every call)
            try:
                return t.view(self.B, *self.N)
            except RuntimeError:
                return t.reshape(self.B, *self.N)
        p = t.permute(self.perm)
        try:
            v = p.view(self.B, *self.spatial)
        except RuntimeError:
            v = p.reshape(self.B, *self.spatial)
        for _ in range(3 - self.ndim):
            v = v.unsqueeze(1)
        return v

    def unview4(self, g: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`view4` for a contiguous ``(B, N0, N1, N2)`` tensor."""
        if self.in_order:
            return g.view(self.shape)
        return g.reshape(*self.sample_shape, *self.spatial).permute(self.inv)

    def differences(self) -> tuple[int, int, int]:
        """Number of differences per sample along kernel axes 0, 1, 2 (0 where inactive)."""
        total = self.N[0] * self.N[1] * self.N[2]
        out = []
        for a in range(3):
            active = a >= 3 - self.ndim
            out.append(total // self.N[a] * (self.N[a] - 1) if active and self.N[a] >= 2 else 0)
        return out[0], out[1], out[2]


@dataclass(frozen=True)
class Spec:
    """Everything a backend needs besides the tensors."""

    layout: Layout
    k: float
    surrogate: str
    reduction: str
    wk: tuple[float, float, float]  # weight per kernel axis (0 for axes not in dims)

    @property
    def surrogate_id(self) -> int:
        """The kernel id of :attr:`surrogate`, read from the registry at call time."""
        return surrogate_id(self.surrogate)

    @classmethod
    def make(cls, layout: Layout, k: float, weights, surrogate: str, reduction: str) -> Spec:
        """The spec of one call (memoised like :meth:`Layout.make`)."""
        w = None if weights is None else tuple(float(v) for v in weights)
        return _spec(layout, float(k), w, surrogate, reduction)

    @classmethod
    def _build(cls, layout: Layout, k: float, weights, surrogate: str, reduction: str) -> Spec:
        wk = [0.0, 0.0, 0.0]
        for j, a in enumerate(layout.kaxis):
            wk[a] = 1.0 if weights is None else float(weights[j])
        return cls(layout, float(k), surrogate, reduction, (wk[0], wk[1], wk[2]))

    def loss_factors(self) -> tuple[float, float, float]:
        """Per kernel axis: the factor that turns a sum of ``|s(k Dx) - s(k Dy)|`` into the loss
        (``0.5 * w_a`` times the reduction's scale; 0 where an axis has no differences)."""
        return self._loss_factors

    @cached_property
    def _loss_factors(self) -> tuple[float, float, float]:
        n = self.layout.differences()
        out = []
        for a in range(3):
            if n[a] == 0 or self.layout.B == 0:
                out.append(0.0)
            elif self.reduction == "mean":
                out.append(0.5 * self.wk[a] / (n[a] * self.layout.B))
            elif self.reduction == "none":
                out.append(0.5 * self.wk[a] / n[a])
            else:
                out.append(0.5 * self.wk[a])
        return out[0], out[1], out[2]

    def grad_factors(self) -> tuple[float, float, float]:
        """Per kernel axis: ``dL/dd = factor * s'(k d) * sign(s(k d) - s(k d_y))`` for an upstream
        gradient of 1 (the chain rule's ``k`` times the loss factor)."""
        return tuple(self.k * f for f in self.loss_factors())  # type: ignore[return-value]

    def finish(self, sums: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The loss from per-sample, per-kernel-axis sums ``(B, 3)`` (float64), in a fixed order."""
        f = self.loss_factors()
        if self.reduction == "none":
            f_t = torch.tensor(f, dtype=torch.float64, device=sums.device)
            return (sums * f_t).sum(1).reshape(self.layout.sample_shape).to(dtype)
        t = sums.sum(0).tolist()  # three per-axis totals (a host copy on the CPU path)
        return torch.tensor((t[0] * f[0] + t[1] * f[1]) + t[2] * f[2], dtype=dtype,
                            device=sums.device)

    def zero_loss(self, device, dtype) -> torch.Tensor:
        shape = self.layout.sample_shape if self.reduction == "none" else ()
        return torch.zeros(shape, dtype=dtype, device=device)


@lru_cache(maxsize=256)
def _layout(shape: tuple[int, ...], dims: tuple[int, ...]) -> Layout:
    return Layout._build(shape, dims)


@lru_cache(maxsize=256)
def _spec(layout: Layout, k: float, weights: tuple[float, ...] | None, surrogate: str,
          reduction: str) -> Spec:
    return Spec._build(layout, k, weights, surrogate, reduction)


def go_is_one(go: torch.Tensor) -> bool:
    """Host-side check used by the CPU path (free there: no device synchronisation)."""
    if go.numel() == 1:
        return go.item() == 1
    return bool((go == 1).all())
