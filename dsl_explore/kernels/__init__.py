r"""Fast paths for the Directional Sign Loss and the exact sign-mismatch count.

Two public entry points with the semantics of :func:`dsl_explore.loss.directional_sign_loss`
and of the per-sample, per-axis counts of :func:`dsl_explore.counting.sign_mismatch_count`:

- :func:`dsl_loss` -- the loss with a fused, hand-written gradient;
- :func:`mismatch_count` -- exact int64 counts, shape ``(*sample_shape, len(dims))``.

Backends (``backend=``):

``"triton"``
    Fused Triton kernels (:mod:`dsl_explore.kernels.triton_dsl`) for CUDA tensors of float32,
    float16 or bfloat16 (float32 arithmetic). On CPU tensors the same kernels run in Triton's
    interpreter (slow; that is how the test suite checks the GPU code without a GPU).
``"cpu"``
    A small C library built on first use (:mod:`dsl_explore.kernels.cpu`), float32/float64.
``"torch"``
    The reference implementation (:func:`dsl_explore._reference.dsl_torch` and
    :func:`dsl_explore._reference.count_per_axis`).
``"auto"`` (default)
    ``"triton"`` for CUDA float32/float16/bfloat16 tensors when triton imports, ``"cpu"`` for CPU
    tensors when the C library builds (every surrogate of :data:`FUSED_SURROGATES`), ``"torch"``
    otherwise (e.g. CUDA float64, or a surrogate
    of the registry that is not in :data:`FUSED_SURROGATES`).

The fused backends run as torch custom ops (:mod:`dsl_explore.kernels._op`:
``torch.ops.dsl_explore.dsl_fused`` and ``dsl_fused_grad``, with fake implementations and an
autograd formula), so ``torch.compile(fullgraph=True)`` traces a step that calls
:func:`dsl_loss` or :func:`~dsl_explore.loss.directional_sign_loss`, and ``backend="auto"`` is
the fused path by default on CPU (where a C compiler exists) and CUDA.

Gradient modes (``fused_backward=``):

``True`` (default, *single pass*)
    When ``x`` (or ``y``) requires grad, the forward pass computes the loss and the gradient in one
    pass; the first ``backward`` scales that buffer in place by the upstream gradient and hands it
    to autograd without a copy, skipping even the scaling when the upstream gradient is 1 (checked
    on the device for CUDA: no host synchronisation). fwd+bwd moves ``x``, ``y`` and the gradient
    once (``3 N`` elements). A further backward through the same graph (``retain_graph=True``)
    recomputes the gradient from ``x`` and ``y``; under ``torch.compile`` the backward graph is a
    fused multiply by the upstream gradient.
``False`` (*two pass*)
    The forward pass computes only the loss and saves ``x`` and ``y``; the backward pass is one
    fused kernel over all axes (``5 N`` elements in total).

Both are deterministic: per-program (Triton) or per-row (C) partial sums go to a buffer that is
reduced in a fixed order, no floating-point atomics; counts are int64 end to end. No double
backward: ``create_graph=True`` raises a RuntimeError that names ``backend="torch"`` (the
reference, which supports it).

Examples
--------
>>> import torch
>>> from dsl_explore.kernels import dsl_loss, mismatch_count
>>> x, y = torch.rand(2, 1, 8, 8, requires_grad=True), torch.rand(2, 1, 8, 8)
>>> loss = dsl_loss(x, y, k=10.0, backend="torch")
>>> loss.backward()
>>> mismatch_count(x.detach(), y, backend="torch").shape
torch.Size([2, 1, 2])
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from typing import overload

import numpy as np
import torch

from dsl_explore._reference import count_per_axis, dsl_torch
from dsl_explore._validation import (
    ArrayLike,
    as_tensor,
    check_choice,
    check_k,
    check_pair,
    check_real,
    check_real_floating,
    resolve_dims,
    resolve_weights,
)
from dsl_explore.kernels import _op  # noqa: F401  (registers torch.ops.dsl_explore.*)
from dsl_explore.kernels._common import FUSED_SURROGATES, Layout, Spec
from dsl_explore.registry import REDUCTIONS, get_surrogate

__all__ = [
    "BACKENDS",
    "FUSED_SURROGATES",
    "available_backends",
    "dsl_loss",
    "mismatch_count",
    "select_backend",
    "triton_available",
]

BACKENDS = ("auto", "triton", "cpu", "torch")
_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when ``triton`` imports (needed for the CUDA kernels and for the interpreter)."""
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception:  # broken install: treat as absent
        return False
    return True


def available_backends() -> dict[str, bool]:
    """Which backends can run here: ``{"triton": ..., "cpu": ..., "torch": True}``."""
    from dsl_explore.kernels import cpu

    return {"triton": triton_available(), "cpu": cpu.available(), "torch": True}


def select_backend(x: torch.Tensor, backend: str = "auto", *, op: str = "loss") -> str:
    """The backend ``backend="auto"`` resolves to for ``x`` (``op``: ``"loss"`` or ``"count"``)."""
    check_choice(backend, "backend", BACKENDS)
    if backend != "auto":
        return backend
    if x.is_cuda:
        if triton_available() and (op == "count" or x.dtype in _TRITON_DTYPES):
            return "triton"
        return "torch"
    if x.device.type == "cpu":
        from dsl_explore.kernels.cpu import CpuBackend

        ok = CpuBackend.supports_count(x) if op == "count" else CpuBackend.supports(x)
        if ok:
            return "cpu"
    return "torch"


def _check_impl(name: str, x: torch.Tensor, op: str) -> None:
    """Raise when backend ``name`` cannot take ``x`` (``_impl`` without building the object)."""
    _impl(name, x, op)


def _impl(name: str, x: torch.Tensor, op: str):
    if name == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package")
        if op == "loss" and x.dtype not in _TRITON_DTYPES:
            raise TypeError(f"backend='triton' computes float32/float16/bfloat16, got {x.dtype}")
        from dsl_explore.kernels.triton_dsl import TritonBackend

        return TritonBackend()
    if name == "cpu":
        from dsl_explore.kernels import cpu

        if x.device.type != "cpu":
            raise ValueError(f"backend='cpu' needs CPU tensors, got device {x.device}")
        if not cpu.available():
            raise RuntimeError(f"the CPU kernels are unavailable: {cpu.build_error()}")
        return cpu.CpuBackend()
    return None


@overload
def dsl_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: float = ...,
    weights: Sequence[float] | None = ...,
    dims: int | Sequence[int] | None = ...,
    surrogate: str = ...,
    reduction: str = ...,
    backend: str = ...,
    fused_backward: bool = ...,
) -> torch.Tensor: ...


@overload
def dsl_loss(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: float = ...,
    weights: Sequence[float] | None = ...,
    dims: int | Sequence[int] | None = ...,
    surrogate: str = ...,
    reduction: str = ...,
    backend: str = ...,
    fused_backward: bool = ...,
) -> np.ndarray: ...


def dsl_loss(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: float = 10.0,
    weights: Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    surrogate: str = "tanh",
    reduction: str = "mean",
    backend: str = "auto",
    fused_backward: bool = True,
) -> ArrayLike:
    r"""Directional Sign Loss through a fused backend (same result as
    :func:`~dsl_explore.loss.directional_sign_loss`).

    .. math::

        \mathrm{DSL}_{k,w}(x, y) = \sum_{a \in \mathrm{dims}} w_a \, R\!\left(
            \tfrac12 \left| s(k\, D_a x) - s(k\, D_a y) \right| \right)

    Parameters
    ----------
    x, y, k, weights, dims, surrogate, reduction
        As in :func:`~dsl_explore.loss.directional_sign_loss` (``k`` must be finite in the
        compute dtype: float32 for float16/bfloat16/float32 inputs, float64 for float64).
    backend : {"auto", "triton", "cpu", "torch"}
        See the module docstring.
    fused_backward : bool
        ``True``: the gradient is computed in the forward pass (single pass); ``False``: a fused
        backward kernel (two passes). Ignored by ``backend="torch"`` and when nothing requires
        grad.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A 0-d value (``"mean"``, ``"sum"``) or one value per sample (``"none"``), in ``x``'s dtype.
    """
    check_pair(x, y)
    check_real_floating(x, "x")
    check_real_floating(y, "y")
    k = check_k(k, dtype=x.dtype)
    fn = get_surrogate(surrogate).fn
    check_choice(reduction, "reduction", REDUCTIONS)
    check_choice(backend, "backend", BACKENDS)
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        out = dsl_loss(as_tensor(x), as_tensor(y), k=k, weights=w, dims=dims_t,
                       surrogate=surrogate, reduction=reduction, backend=backend,
                       fused_backward=fused_backward)
        return np.asarray(as_tensor(out).numpy())
    name = select_backend(x, backend, op="loss")
    if name != "torch" and surrogate not in FUSED_SURROGATES:
        if backend != "auto":
            raise ValueError(
                f"backend={name!r} has no fused code for surrogate {surrogate!r} (it has "
                f"{', '.join(map(repr, FUSED_SURROGATES))}); use backend='torch' or 'auto'"
            )
        name = "torch"
    if name == "torch":
        return dsl_torch(x, y, k=k, weights=w, dims=dims_t, surrogate=fn, reduction=reduction)
    _check_impl(name, x, "loss")
    if y.dtype != x.dtype:
        y = y.to(x.dtype)
    lay = Layout.make(tuple(x.shape), dims_t)
    if lay.numel == 0:
        return Spec.make(lay, k, w, surrogate, reduction).zero_loss(x.device, x.dtype)
    grad_on = torch.is_grad_enabled()
    single = bool(fused_backward)
    gx_now = single and grad_on and x.requires_grad
    gy_now = single and grad_on and y.requires_grad
    weights_l = [1.0] * len(dims_t) if w is None else [float(v) for v in w]
    out, _, _ = torch.ops.dsl_explore.dsl_fused(
        x, y, list(dims_t), weights_l, float(k), surrogate, reduction, name, gx_now, gy_now
    )
    return out


@overload
def mismatch_count(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dims: int | Sequence[int] | None = ...,
    backend: str = ...,
) -> torch.Tensor: ...


@overload
def mismatch_count(
    x: np.ndarray,
    y: np.ndarray,
    *,
    dims: int | Sequence[int] | None = ...,
    backend: str = ...,
) -> np.ndarray: ...


def mismatch_count(
    x: ArrayLike,
    y: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    backend: str = "auto",
) -> ArrayLike:
    r"""Exact per-sample, per-axis sign-mismatch counts
    :math:`\sum_i [\operatorname{sgn} D_a x[i] \ne \operatorname{sgn} D_a y[i]]`.

    Signs come from comparisons (no subtraction), sums are int64, so the counts are exact for any
    size. The inputs are not checked for NaN/inf (a NaN compares as neither larger nor smaller:
    sign 0); :func:`~dsl_explore.counting.sign_mismatch_count` validates before it dispatches.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        int64, shape ``x.shape`` without ``dims`` plus a last axis of length ``len(dims)``
        (in the order of ``dims``).
    """
    check_pair(x, y)
    check_real(x, "x")
    check_real(y, "y")
    check_choice(backend, "backend", BACKENDS)
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        counts = mismatch_count(as_tensor(x), as_tensor(y), dims=dims_t, backend=backend)
        return as_tensor(counts).numpy()
    if y.dtype != x.dtype:
        common = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(common), y.to(common)
    x, y = x.detach(), y.detach()
    name = select_backend(x, backend, op="count")
    if name == "cpu":
        from dsl_explore.kernels.cpu import CpuBackend

        if x.device.type == "cpu" and not CpuBackend.supports_count(x):
            name = "torch"  # a dtype the C library does not take (uint64)
    impl = _impl(name, x, "count")
    lay = Layout.make(tuple(x.shape), dims_t)
    if impl is None or lay.numel == 0:
        if lay.numel == 0:
            return torch.zeros(*lay.sample_shape, len(dims_t), dtype=torch.int64, device=x.device)
        return count_per_axis(x, y, dims_t)
    return impl.count(lay.view4(x), lay.view4(y), lay)
