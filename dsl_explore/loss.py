r"""The Directional Sign Loss (DSL): a smooth count of finite-difference sign mismatches.

For a reconstruction ``x`` and a target ``y`` of one shape, and the forward difference along axis
:math:`a`, :math:`D_a x[i] = x[i + e_a] - x[i]` (``numpy.diff`` semantics: no padding, no
wrap-around), the loss is

.. math::

    \mathrm{DSL}_{k,w}(x, y) = \sum_a w_a \, R\!\left(
        \tfrac12 \left| s(k\, D_a x) - s(k\, D_a y) \right| \right)

with a smooth sign surrogate :math:`s`, sharpness :math:`k > 0`, per-axis ("directional") weights
:math:`w_a \ge 0` and a reduction :math:`R` over the differences. Each term lies in ``[0, 1]``; as
:math:`k \to \infty` it tends to 1 where the signs are opposite, 1/2 where exactly one difference is
zero and 0 where the signs agree, so on data without zero differences ``DSL`` with ``R = sum``
tends to the exact count of :func:`dsl_explore.counting.sign_mismatch_count`.

``k`` acts on the differences, so it is only meaningful relative to the data's scale: the kit
normalises data to ``[0, 1]`` (:func:`dsl_explore.data.normalize`) and its defaults assume that.

References
----------
.. [1] C. Dam, A. Agarwal, S. Gopalakrishnan, "Directional Sign Loss: A Topology-Preserving Loss
       Function that Approximates the Sign of Finite Differences", arXiv:2504.04202, 2025.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np
import torch
from torch import nn

from dsl_explore._reference import dsl_term as _dsl_term_ref
from dsl_explore._reference import dsl_torch
from dsl_explore._validation import (
    ArrayLike,
    as_tensor,
    check_choice,
    check_k,
    check_pair,
    check_real_floating,
    resolve_dims,
    resolve_weights,
)
from dsl_explore.registry import REDUCTIONS, SURROGATES, get_surrogate

__all__ = [
    "REDUCTIONS",
    "SURROGATES",
    "DirectionalSignLoss",
    "directional_sign_loss",
    "dsl_term",
    "surrogate_fn",
]

BACKENDS = ("auto", "torch", "triton", "cpu")


def surrogate_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the sign surrogate called ``name`` (one of :data:`SURROGATES`).

    Raises
    ------
    ValueError
        If ``name`` is not a registered surrogate.

    Examples
    --------
    >>> import torch
    >>> surrogate_fn("tanh")(torch.tensor(0.0))
    tensor(0.)
    """
    return get_surrogate(name).fn


def dsl_term(
    x: torch.Tensor, y: torch.Tensor, *, dim: int, k: float, surrogate: str = "tanh"
) -> torch.Tensor:
    r"""The DSL term of every difference along one axis, before weights and reduction.

    .. math::

        T_a[i] = \tfrac12 \left| s(k\, D_a x[i]) - s(k\, D_a y[i]) \right|,
        \qquad D_a x[i] = x[i + e_a] - x[i].

    :func:`directional_sign_loss` reduces these (``"sum"``: :math:`\sum_a w_a \sum_i T_a[i]`).

    Parameters
    ----------
    x, y : torch.Tensor
        Floating tensors of one shape and dtype (float16/bfloat16 are not promoted here).
    dim : int, keyword-only
        The axis ``a``.
    k : float, keyword-only
        Sharpness, > 0 and finite in the compute dtype (float32 for float16/bfloat16/float32
        inputs, float64 for float64).
    surrogate : str, keyword-only
        A name of :data:`SURROGATES`.

    Returns
    -------
    torch.Tensor
        ``x.shape`` with axis ``dim`` shortened by one, values in ``[0, 1]``.

    Raises
    ------
    ValueError
        On a bad ``k`` or ``surrogate``.

    Examples
    --------
    >>> import torch
    >>> y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    >>> dsl_term(x, y, dim=0, k=100.0)
    tensor([0., 1., 0.])
    """
    fn = get_surrogate(surrogate).fn
    return _dsl_term_ref(x, y, dim, k=check_k(k, dtype=x.dtype), surrogate=fn)


@overload
def directional_sign_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: float = ...,
    weights: Sequence[float] | None = ...,
    dims: int | Sequence[int] | None = ...,
    surrogate: str = ...,
    reduction: str = ...,
    backend: str = ...,
) -> torch.Tensor: ...


@overload
def directional_sign_loss(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: float = ...,
    weights: Sequence[float] | None = ...,
    dims: int | Sequence[int] | None = ...,
    surrogate: str = ...,
    reduction: str = ...,
    backend: str = ...,
) -> np.ndarray: ...


def directional_sign_loss(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: float = 10.0,
    weights: Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    surrogate: str = "tanh",
    reduction: str = "mean",
    backend: str = "auto",
) -> ArrayLike:
    r"""Directional Sign Loss between a reconstruction ``x`` and a target ``y``.

    .. math::

        \mathrm{DSL}_{k,w}(x, y) = \sum_{a \in \mathrm{dims}} w_a \, R\!\left(
            \tfrac12 \left| s(k\, D_a x) - s(k\, D_a y) \right| \right),
        \qquad D_a x[i] = x[i + e_a] - x[i].

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Reconstruction (prediction), real floating point (float16, bfloat16, float32, float64).
    y : numpy.ndarray or torch.Tensor
        Target, same kind, shape and device as ``x``. It is a fixed target: no gradient flows to
        it unless it requires grad itself.
    k : float, keyword-only
        Sharpness, > 0 and finite in the dtype DSL is computed in (float32 for float16, bfloat16
        and float32 inputs, float64 for float64). Read it against the data's scale (the kit
        normalises to [0, 1]). Huge ``k`` is fine: ``s`` saturates, so terms stay in [0, 1]
        and the gradient goes to 0 (never NaN) where ``k * D_a x`` overflows.
    weights : sequence of float, optional, keyword-only
        One finite weight ``w_a >= 0`` per entry of ``dims``; default all 1.
    dims : int or sequence of int, optional, keyword-only
        The axes the differences run along. ``None`` takes the layout ``(N, C, *spatial)`` with
        1-3 spatial axes and uses every spatial axis. Any explicit value overrides, e.g.
        ``dims=(-1,)`` for ``(N, L)`` signals or ``dims=(0, 1)`` for a bare 2D array. The other
        axes are independent samples.
    surrogate : {"tanh", "softsign", "arctan", "erf", "sigmoid"}, keyword-only
        The smooth sign :math:`s` (see :data:`SURROGATES`).
    reduction : {"mean", "sum", "none"}, keyword-only
        ``"mean"`` averages each axis term over that axis' differences (a mismatch *rate* in
        [0, 1] per axis, independent of the resolution), then takes the weighted sum over axes.
        ``"sum"`` sums the terms (it approximates the exact count as k grows). ``"none"``
        returns the ``"mean"`` value of every sample (the axes not in ``dims``), so
        ``reduction="none"`` followed by ``.mean()`` equals ``reduction="mean"``.
    backend : {"auto", "torch", "triton", "cpu"}, keyword-only
        ``"auto"`` (default) runs the fused kernels of :mod:`dsl_explore.kernels` wherever they
        apply: CUDA float32/float16/bfloat16 tensors through Triton (when triton imports), CPU
        tensors and numpy arrays through the C library (when a C compiler built it; about 10x
        faster than eager torch per core, see :mod:`dsl_explore.kernels.cpu`), for the
        surrogates of :data:`dsl_explore.kernels.FUSED_SURROGATES`; everything else through the
        plain torch reference. Both are ``torch.compile``-traceable (the kernels are custom ops
        with a fake implementation). ``"torch"`` forces the reference, which also supports double
        backward (``create_graph=True``); the fused kernels raise a RuntimeError there.
        ``"cpu"`` / ``"triton"`` force a fused backend (an error where it cannot run).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A 0-d value, or for ``"none"`` an array of shape ``x.shape`` without the ``dims`` axes
        (``(N, C)`` for the default layout). Same kind, device and dtype as ``x``
        (float16/bfloat16 are computed in float32 and cast back). NaN in the input propagates
        to the result, as in torch's own losses. Axes of length 1 contribute 0; an empty input
        gives 0.

    Raises
    ------
    TypeError
        If ``x``/``y`` are not both numpy arrays or both tensors, or not real floating point.
    ValueError
        On a shape or device mismatch, bad ``dims``, ``weights``, ``k`` (including a ``k``
        that overflows the compute dtype), ``surrogate`` or ``reduction``.

    Notes
    -----
    Peak extra memory, torch reference: about 2x the input in the compute dtype (the
    differences and surrogate values of one axis; autograd keeps some for the backward pass);
    fused kernels: the gradient (one input's size) and O(rows) partial sums. A numpy input
    that is read-only, byte-swapped or negatively strided is copied once.

    The gradient with respect to :math:`d = D_a x[i]` is
    :math:`w_a \tfrac{k}{2} s'(k d)\, \mathrm{sign}(s(k d) - s(k D_a y[i]))` (scaled by the
    reduction), passed on as +1 to ``x[i + e_a]`` and -1 to ``x[i]``. It vanishes for large
    :math:`|k d|`, which is why DSL is mixed with MSE in training.

    Examples
    --------
    >>> import torch
    >>> from dsl_explore import directional_sign_loss
    >>> y = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])      # (N, C, L): up, down, up
    >>> x = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])      # up, up, up: the middle sign is wrong
    >>> round(float(directional_sign_loss(x, y, k=100.0, reduction="sum")), 4)
    1.0
    >>> round(float(directional_sign_loss(x, y, k=100.0)), 4)   # mean over the 3 differences
    0.3333
    """
    check_pair(x, y)
    check_real_floating(x, "x")
    check_real_floating(y, "y")
    k = check_k(k, dtype=x.dtype)
    fn = get_surrogate(surrogate).fn
    check_choice(reduction, "reduction", REDUCTIONS)
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    check_choice(backend, "backend", BACKENDS)
    if backend != "torch":
        from dsl_explore import kernels

        opts: dict[str, Any] = {
            "k": k, "weights": w, "dims": dims_t, "surrogate": surrogate,
            "reduction": reduction, "backend": backend,
        }
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return kernels.dsl_loss(x, y, **opts)
        return kernels.dsl_loss(np.asarray(x), np.asarray(y), **opts)  # check_pair: same kind
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
        return dsl_torch(x, y, k=k, weights=w, dims=dims_t, surrogate=fn, reduction=reduction)
    out = dsl_torch(
        as_tensor(x),
        as_tensor(y),
        k=k,
        weights=w,
        dims=dims_t,
        surrogate=fn,
        reduction=reduction,
    )
    return np.asarray(out.numpy())


class DirectionalSignLoss(nn.Module):
    r"""Module form of :func:`directional_sign_loss`; it stores the options and calls the function.

    Parameters
    ----------
    k, weights, dims, surrogate, reduction
        As in :func:`directional_sign_loss`, validated at construction time.

    Shape
    -----
    - x, y: ``(N, C, *spatial)`` with 1-3 spatial axes, or any shape with explicit ``dims``.
    - output: scalar, or ``(N, C)`` (the non-``dims`` axes) for ``reduction="none"``.

    Examples
    --------
    >>> import torch
    >>> from dsl_explore import DirectionalSignLoss
    >>> criterion = DirectionalSignLoss(k=10.0, weights=(1.0, 0.5))
    >>> x = torch.rand(2, 1, 8, 8, requires_grad=True)
    >>> loss = criterion(x, torch.rand(2, 1, 8, 8))
    >>> loss.backward()
    >>> x.grad.shape
    torch.Size([2, 1, 8, 8])

    Raises
    ------
    ValueError
        At construction for bad options; at call time for a ``k`` that overflows the compute
        dtype of the inputs (e.g. ``k=1e39`` with float32 inputs).
    """

    def __init__(
        self,
        *,
        k: float = 10.0,
        weights: Sequence[float] | None = None,
        dims: int | Sequence[int] | None = None,
        surrogate: str = "tanh",
        reduction: str = "mean",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.backend = check_choice(backend, "backend", BACKENDS)
        self.k = check_k(k)
        self.surrogate = get_surrogate(surrogate).name
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        # dims are checked against the input's number of axes at call time.
        self.dims = dims if dims is None or isinstance(dims, int) else tuple(dims)
        n_weights = 1 if weights is None or not hasattr(weights, "__len__") else len(weights)
        self.weights = resolve_weights(weights, n_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = directional_sign_loss(
            x,
            y,
            k=self.k,
            weights=self.weights,
            dims=self.dims,
            surrogate=self.surrogate,
            reduction=self.reduction,
            backend=self.backend,
        )
        return out

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, weights={self.weights}, dims={self.dims}, "
            f"surrogate={self.surrogate!r}, reduction={self.reduction!r}"
        )
