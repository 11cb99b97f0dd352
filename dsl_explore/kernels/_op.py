r"""The fused DSL as two torch custom ops, so that ``torch.compile`` traces through it.

``torch.ops.dsl_explore.dsl_fused(x, y, dims, weights, k, surrogate, reduction, backend,
grad_x, grad_y) -> (loss, gx, gy)``
    The loss and, for ``grad_x`` / ``grad_y``, the gradient with respect to ``x`` / ``y`` for an
    upstream gradient of 1, computed in the same pass (*single pass*); a gradient that was not
    asked for is an empty tensor. ``backend`` is ``"cpu"`` (the C library) or ``"triton"``.
``torch.ops.dsl_explore.dsl_fused_grad(x, y, go, dims, weights, k, surrogate, reduction,
backend) -> gx``
    ``dL/dx`` for the upstream gradient ``go`` (*two pass*; ``dL/dy`` is the same call with
    ``x`` and ``y`` swapped).

Both have a fake (meta) implementation, so Dynamo and AOTAutograd see shapes, dtypes and strides
without running the kernels, and ``dsl_fused`` has an autograd formula
(``torch.library.register_autograd``):

- *eager*, single pass: the first backward hands the gradient buffer over, scaled in place by the
  upstream gradient (skipped when that is 1: on the CPU a host check, on CUDA a device-side test,
  no synchronisation), so autograd takes it as ``x.grad`` without a copy. A second backward
  through the same graph (``retain_graph=True``) recomputes the gradient from the saved ``x``
  and ``y`` with ``dsl_fused_grad`` (no limit on the number of backward passes);
- *compiled* (``torch.compile``), single pass: the backward graph is ``gx * go`` (a fused,
  functional multiply that inductor places in the backward graph);
- two pass: ``dsl_fused_grad`` on the saved ``x`` and ``y``.

Double backward (``create_graph=True``) is refused with a RuntimeError that names
``backend="torch"``: the hand-written gradient is not itself differentiable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dsl_explore.kernels._common import Layout, Spec

__all__ = ["DOUBLE_BACKWARD_MESSAGE", "dsl_fused", "dsl_fused_grad"]

DOUBLE_BACKWARD_MESSAGE = (
    "the fused DSL kernels have a hand-written gradient that is not itself differentiable: "
    "double backward (create_graph=True, gradgradcheck, gradient penalties) needs "
    "backend='torch'"
)


def _spec(shape: Any, dims: list[int], weights: list[float], k: float, surrogate: str,
          reduction: str) -> Spec:
    lay = Layout.make(tuple(int(n) for n in shape), tuple(dims))
    return Spec.make(lay, k, weights, surrogate, reduction)


def _backend(name: str) -> Any:
    if name == "triton":
        from dsl_explore.kernels.triton_dsl import TritonBackend

        return TritonBackend()
    if name == "cpu":
        from dsl_explore.kernels.cpu import CpuBackend

        return CpuBackend()
    raise ValueError(f"backend must be 'cpu' or 'triton' for the fused op, got {name!r}")


def _grad_like(x: Tensor, lay: Layout) -> Tensor:
    """An uninitialised gradient laid out as the kernels write it (contiguous ``(B, N0, N1, N2)``
    seen through the inverse permutation): what the fake implementations return."""
    return lay.unview4(x.new_empty((lay.B, *lay.N)))


@torch.library.custom_op("dsl_explore::dsl_fused", mutates_args=())
def dsl_fused(x: Tensor, y: Tensor, dims: list[int], weights: list[float], k: float,
              surrogate: str, reduction: str, backend: str, grad_x: bool,
              grad_y: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The loss and the single-pass gradients (upstream 1); see the module docstring."""
    spec = _spec(x.shape, dims, weights, k, surrogate, reduction)
    lay, impl = spec.layout, _backend(backend)
    xl, yl = lay.view4(x), lay.view4(y)
    out, gx = impl.run(xl, yl, spec, want_loss=True, want_grad=grad_x, dtype=x.dtype)
    gy = None
    if grad_y:
        _, gy = impl.run(yl, xl, spec, want_loss=False, want_grad=True, dtype=y.dtype)
    gx = x.new_empty(0) if gx is None else lay.unview4(gx)
    gy = y.new_empty(0) if gy is None else lay.unview4(gy)
    return out, gx, gy


@dsl_fused.register_fake
def _dsl_fused_fake(x, y, dims, weights, k, surrogate, reduction, backend, grad_x, grad_y):
    lay = Layout.make(tuple(x.shape), tuple(dims))
    loss = x.new_empty(lay.sample_shape if reduction == "none" else ())
    gx = _grad_like(x, lay) if grad_x else x.new_empty(0)
    gy = _grad_like(y, lay) if grad_y else y.new_empty(0)
    return loss, gx, gy


@torch.library.custom_op("dsl_explore::dsl_fused_grad", mutates_args=())
def dsl_fused_grad(x: Tensor, y: Tensor, go: Tensor, dims: list[int], weights: list[float],
                   k: float, surrogate: str, reduction: str, backend: str) -> Tensor:
    """``dL/dx`` for the upstream gradient ``go`` (two pass); see the module docstring."""
    spec = _spec(x.shape, dims, weights, k, surrogate, reduction)
    lay, impl = spec.layout, _backend(backend)
    _, g = impl.run(lay.view4(x), lay.view4(y), spec, want_loss=False, want_grad=True, go=go,
                    dtype=x.dtype)
    return lay.unview4(g)


@dsl_fused_grad.register_fake
def _dsl_fused_grad_fake(x, y, go, dims, weights, k, surrogate, reduction, backend):
    return _grad_like(x, Layout.make(tuple(x.shape), tuple(dims)))


def _setup_context(ctx, inputs, output) -> None:
    x, y, dims, weights, k, surrogate, reduction, backend, grad_x, grad_y = inputs
    _, gx, gy = output
    ctx.mark_non_differentiable(gx, gy)
    # gx and gy are never differentiated: without this, autograd fills a zero gradient of x's
    # size for each of them before every backward (0.3-0.8 ms per step at 8 MB, one core)
    ctx.set_materialize_grads(False)
    ctx.args = (list(dims), list(weights), k, surrogate, reduction, backend)
    ctx.single = (bool(grad_x), bool(grad_y))
    ctx.compiled = torch.compiler.is_compiling()
    if ctx.compiled:
        # traced once into a functional backward graph: save what that graph reads
        ctx.save_for_backward(x if not grad_x else None, y if not grad_y else None,
                              gx if grad_x else None, gy if grad_y else None)
        ctx.grads = None
    else:
        # x and y for a second backward (retain_graph=True); the buffers on ctx itself, so that
        # the first backward can drop our reference and autograd takes them without a copy
        ctx.save_for_backward(x, y)
        ctx.grads = [gx if grad_x else None, gy if grad_y else None]


def _broadcast_go(go: Tensor, x: Tensor, dims: list[int], reduction: str) -> Tensor:
    if reduction != "none":
        return go
    return go.reshape([1 if i in dims else int(n) for i, n in enumerate(x.shape)])


def _backward(ctx, go: Tensor, _ggx: Tensor, _ggy: Tensor):
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        raise RuntimeError(DOUBLE_BACKWARD_MESSAGE)
    dims, weights, k, surrogate, reduction, backend = ctx.args
    if go is None:  # no gradient reached the loss (grads are not materialised): zero
        return (None,) * 10
    need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grads: list[Tensor | None] = [None, None]
    if ctx.compiled:
        x, y, gx, gy = ctx.saved_tensors
        for i, (g, a, b) in enumerate(((gx, x, y), (gy, y, x))):
            if not (need_x, need_y)[i]:
                continue
            if g is not None:
                grads[i] = g * _broadcast_go(go, g, dims, reduction)
            else:
                grads[i] = dsl_fused_grad(a, b, go, dims, weights, k, surrogate, reduction,
                                          backend)
    else:
        handed = ctx.grads
        ctx.grads = None  # a later backward recomputes (retain_graph=True)
        x, y = None, None
        impl = None
        for i in range(2):
            if not (need_x, need_y)[i]:
                continue
            g = handed[i] if handed is not None else None
            if g is not None:
                if impl is None:
                    impl = _backend(backend)
                spec = _spec(g.shape, dims, weights, k, surrogate, reduction)
                impl.scale_(spec.layout.view4(g), go, spec)  # in place, skipped when go == 1
                grads[i] = g
                continue
            if x is None:
                x, y = ctx.saved_tensors
            a, b = (x, y) if i == 0 else (y, x)
            grads[i] = dsl_fused_grad(a, b, go.contiguous(), dims, weights, k, surrogate,
                                      reduction, backend)
    return (grads[0], grads[1], None, None, None, None, None, None, None, None)


dsl_fused.register_autograd(_backward, setup_context=_setup_context)
