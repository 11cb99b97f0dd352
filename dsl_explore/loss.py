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

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dsl_explore._validation import (
    ArrayLike,
    as_tensor,
    check_choice,
    check_k,
    check_pair,
    check_real_floating,
    is_torch,
    resolve_dims,
    resolve_weights,
    sample_shape,
)

__all__ = [
    "REDUCTIONS",
    "SURROGATES",
    "DirectionalSignLoss",
    "directional_sign_loss",
    "surrogate_fn",
]


def _arctan(t: torch.Tensor) -> torch.Tensor:
    return torch.atan(t) * (2.0 / math.pi)


def _sigmoid(t: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.sigmoid(t) - 1.0


SURROGATES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "softsign": F.softsign,
    "arctan": _arctan,
    "erf": torch.erf,
    "sigmoid": _sigmoid,
}
"""Smooth sign surrogates ``s: R -> (-1, 1)``, odd, increasing, tending to ``sign(t)``:
``tanh(t)``, ``softsign(t) = t / (1 + |t|)``, ``arctan(t) = (2/pi) atan(t)``, ``erf(t)`` and
``sigmoid(t) = 2 sigma(t) - 1`` (which equals ``tanh(t/2)``)."""

REDUCTIONS = ("mean", "sum", "none")


def surrogate_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the sign surrogate called ``name`` (one of :data:`SURROGATES`)."""
    check_choice(name, "surrogate", tuple(SURROGATES))
    return SURROGATES[name]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed in float32 (as torch's own ops accumulate), then cast back."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _dsl_torch(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: float,
    weights: tuple[float, ...] | None,
    dims: tuple[int, ...],
    surrogate: str,
    reduction: str,
) -> torch.Tensor:
    s = SURROGATES[surrogate]
    cdt = _compute_dtype(x.dtype)
    xc, yc = x.to(cdt), y.to(cdt)
    if reduction == "none":
        total = xc.new_zeros(sample_shape(x.shape, dims))
    else:
        total = xc.new_zeros(())
    for j, a in enumerate(dims):
        if x.shape[a] < 2:  # an axis of length 1 (or 0) has no differences
            continue
        term = 0.5 * (s(k * torch.diff(xc, dim=a)) - s(k * torch.diff(yc, dim=a))).abs()
        if term.numel() == 0:  # empty batch: nothing to average
            continue
        if reduction == "sum":
            r = term.sum()
        elif reduction == "mean":
            r = term.mean()
        else:
            r = term.mean(dim=dims)
        total = total + (r if weights is None else weights[j] * r)
    return total.to(x.dtype)


def _fused_available(x: torch.Tensor) -> bool:
    """True when the Triton kernels can take this CUDA tensor (triton imports, fp32/16/bf16)."""
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return False
    from dsl_explore.kernels import triton_available

    return triton_available()


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
        Sharpness, finite and > 0. Read it against the data's scale (the kit normalises to [0, 1]).
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
        ``"auto"`` runs CUDA tensors through the fused Triton kernels of
        :mod:`dsl_explore.kernels` (when triton imports; float32/float16/bfloat16) and everything
        else through the plain torch implementation, which ``torch.compile`` can trace and which
        supports double backward. ``"cpu"`` opts into the fused C path for CPU tensors (about
        10x faster than eager torch, see :mod:`dsl_explore.kernels.cpu`; one backward per
        forward), ``"torch"`` forces the reference.

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
        On a shape or device mismatch, bad ``dims``, ``weights``, ``k``, ``surrogate`` or
        ``reduction``.

    Notes
    -----
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
    k = check_k(k)
    check_choice(surrogate, "surrogate", tuple(SURROGATES))
    check_choice(reduction, "reduction", REDUCTIONS)
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    check_choice(backend, "backend", ("auto", "torch", "triton", "cpu"))
    use_kernels = backend in ("triton", "cpu") or (
        backend == "auto" and is_torch(x) and x.is_cuda and _fused_available(x)
    )
    if use_kernels:
        from dsl_explore import kernels

        return kernels.dsl_loss(
            x,
            y,
            k=k,
            weights=w,
            dims=dims_t,
            surrogate=surrogate,
            reduction=reduction,
            backend="triton" if backend == "auto" else backend,
        )
    if is_torch(x):
        return _dsl_torch(
            x, y, k=k, weights=w, dims=dims_t, surrogate=surrogate, reduction=reduction
        )
    out = _dsl_torch(
        as_tensor(x),
        as_tensor(y),
        k=k,
        weights=w,
        dims=dims_t,
        surrogate=surrogate,
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
        self.backend = check_choice(backend, "backend", ("auto", "torch", "triton", "cpu"))
        self.k = check_k(k)
        self.surrogate = check_choice(surrogate, "surrogate", tuple(SURROGATES))
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        # dims are checked against the input's number of axes at call time.
        self.dims = dims if dims is None or isinstance(dims, int) else tuple(dims)
        n_weights = len(weights) if hasattr(weights, "__len__") else 1
        self.weights = resolve_weights(weights, n_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return directional_sign_loss(
            x,
            y,
            k=self.k,
            weights=self.weights,
            dims=self.dims,
            surrogate=self.surrogate,
            reduction=self.reduction,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, weights={self.weights}, dims={self.dims}, "
            f"surrogate={self.surrogate!r}, reduction={self.reduction!r}"
        )
