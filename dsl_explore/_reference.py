r"""The plain torch implementations of DSL and of the exact count: the references.

:func:`dsl_torch` is what :func:`dsl_explore.loss.directional_sign_loss` runs off the fused
kernels (``torch.compile`` can trace it; autograd gives the gradient, double backward included)
and what :mod:`dsl_explore.kernels` and the tests check the kernels against.
:func:`count_per_axis` is the exact count of :mod:`dsl_explore.counting` and the kernels' torch
backend. The functions take validated arguments (the public functions check them) and a surrogate
*function*, not a name: the names live in :mod:`dsl_explore.registry`, a sibling of this module.

Examples
--------
>>> import torch
>>> x = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
>>> y = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])
>>> dsl_torch(x, y, k=100.0, weights=None, dims=(2,), surrogate=torch.tanh, reduction="sum")
tensor(1.)
>>> count_per_axis(x, y, (2,))
tensor([[[1]]])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dsl_explore._validation import sample_shape

__all__ = [
    "CHUNK_ELEMENTS",
    "compute_dtype",
    "count_axis",
    "count_per_axis",
    "dsl_term",
    "dsl_torch",
    "mismatch",
]

CHUNK_ELEMENTS = 1 << 23
"""Inputs larger than this are counted slab by slab (about 8 Mi elements per slab: about
120 MiB of temporaries, whatever the input size)."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype DSL is computed in: float16/bfloat16 in float32 (as torch's own ops
    accumulate), every other dtype in itself.

    Examples
    --------
    >>> compute_dtype(torch.bfloat16), compute_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def dsl_term(
    x: torch.Tensor,
    y: torch.Tensor,
    dim: int,
    *,
    k: float,
    surrogate: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    r"""The DSL term of every difference along axis ``dim``, in the inputs' dtype.

    .. math::

        T_a[i] = \tfrac12 \left| s(k\, D_a x[i]) - s(k\, D_a y[i]) \right|,
        \qquad D_a x[i] = x[i + e_a] - x[i].

    Parameters
    ----------
    x, y : torch.Tensor
        Floating tensors of one shape and dtype.
    dim : int
        The axis ``a``.
    k : float
        Sharpness.
    surrogate : callable
        The sign surrogate ``s`` (a value of :data:`dsl_explore.registry.SURROGATES`).

    Returns
    -------
    torch.Tensor
        ``x.shape`` with axis ``dim`` shortened by one; each value in ``[0, 1]``.

    Examples
    --------
    >>> x, y = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 0.0])
    >>> dsl_term(x, y, 0, k=100.0, surrogate=torch.tanh)
    tensor([0., 1.])
    """
    s = surrogate
    return 0.5 * (s(k * torch.diff(x, dim=dim)) - s(k * torch.diff(y, dim=dim))).abs()


def dsl_torch(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: float,
    weights: tuple[float, ...] | None,
    dims: tuple[int, ...],
    surrogate: Callable[[torch.Tensor], torch.Tensor],
    reduction: str,
) -> torch.Tensor:
    r"""DSL in plain torch (see :func:`dsl_explore.loss.directional_sign_loss` for the options).

    .. math::

        \mathrm{DSL}_{k,w}(x, y) = \sum_{a \in \mathrm{dims}} w_a\, R(T_a)

    with :math:`T_a` from :func:`dsl_term` and :math:`R` the mean, the sum, or (``"none"``) the
    mean over ``dims`` per sample. Arguments are taken as validated: ``dims`` distinct
    non-negative axes, ``weights`` one per entry of ``dims`` or None, ``reduction`` one of
    :data:`dsl_explore.registry.REDUCTIONS`.

    Returns
    -------
    torch.Tensor
        A 0-d tensor, or for ``"none"`` the shape of ``x`` without ``dims``; ``x``'s dtype
        (float16/bfloat16 computed in float32). Axes of length < 2 and empty inputs add 0.

    Examples
    --------
    >>> x = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    >>> y = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])
    >>> dsl_torch(x, y, k=100.0, weights=None, dims=(2,), surrogate=torch.tanh, reduction="none")
    tensor([[0.3333]])
    """
    cdt = compute_dtype(x.dtype)
    xc, yc = x.to(cdt), y.to(cdt)
    if reduction == "none":
        total = xc.new_zeros(sample_shape(x.shape, dims))
    else:
        total = xc.new_zeros(())
    for j, a in enumerate(dims):
        if x.shape[a] < 2:  # an axis of length 1 (or 0) has no differences
            continue
        term = dsl_term(xc, yc, a, k=k, surrogate=surrogate)
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


def mismatch(
    x0: torch.Tensor, x1: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor
) -> torch.Tensor:
    r"""Boolean :math:`\operatorname{sgn}(x_1 - x_0) \ne \operatorname{sgn}(y_1 - y_0)`, from
    comparisons only (exact for every dtype: no subtraction, so no overflow or rounding).

    Examples
    --------
    >>> mismatch(torch.tensor([0, 0]), torch.tensor([1, 0]), torch.tensor([0, 0]),
    ...          torch.tensor([1, 1]))
    tensor([False,  True])
    """
    up = x1 > x0
    up ^= y1 > y0
    down = x1 < x0
    down ^= y1 < y0
    return up.logical_or_(down)  # in place: at most 3 boolean temporaries alive at once


def axis_mismatch(x: torch.Tensor, y: torch.Tensor, a: int) -> torch.Tensor:
    """:func:`mismatch` of every difference along axis ``a`` (that axis shortened by one)."""
    n = x.shape[a]
    return mismatch(
        x.narrow(a, 0, n - 1), x.narrow(a, 1, n - 1), y.narrow(a, 0, n - 1), y.narrow(a, 1, n - 1)
    )


def count_axis(
    x: torch.Tensor,
    y: torch.Tensor,
    a: int,
    dims: tuple[int, ...],
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    r"""Per-sample int64 count of sign mismatches along axis ``a``.

    .. math::

        M_a = \sum_{i} \left[\operatorname{sgn} D_a x[i] \ne \operatorname{sgn} D_a y[i]\right],

    summed over the axes in ``dims``. Inputs above ``chunk_elements`` are counted slab by slab,
    so the extra memory stays about ``chunk_elements`` booleans.

    Returns
    -------
    torch.Tensor
        int64, shape ``x.shape`` without ``dims``.

    Examples
    --------
    >>> x, y = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    >>> count_axis(x, y, 1, (1,))
    tensor([1])
    """
    out = torch.zeros(sample_shape(x.shape, dims), dtype=torch.int64, device=x.device)
    n = x.shape[a]
    if n < 2 or x.numel() == 0:
        return out
    if x.numel() <= chunk_elements:
        return axis_mismatch(x, y, a).sum(dim=dims, dtype=torch.int64)
    # Slab along the largest other axis; when there is none worth cutting, along `a` itself
    # with an overlap of one element so that no difference is lost or counted twice.
    others = [c for c in range(x.ndim) if c != a]
    c = max(others, key=lambda i: x.shape[i]) if others else a
    if not others or x.shape[c] == 1:
        c = a
    per_slab = max(1, chunk_elements // max(1, x.numel() // x.shape[c]))
    if c == a:
        start = 0
        while start < n - 1:
            stop = min(n, start + per_slab + 1)
            out += axis_mismatch(
                x.narrow(a, start, stop - start), y.narrow(a, start, stop - start), a
            ).sum(dim=dims, dtype=torch.int64)
            start = stop - 1
        return out
    sample_axes = [i for i in range(x.ndim) if i not in dims]
    for start in range(0, x.shape[c], per_slab):
        length = min(per_slab, x.shape[c] - start)
        part = axis_mismatch(x.narrow(c, start, length), y.narrow(c, start, length), a).sum(
            dim=dims, dtype=torch.int64
        )
        if c in dims:
            out += part
        else:
            out.narrow(sample_axes.index(c), start, length).copy_(part)
    return out


def count_per_axis(
    x: torch.Tensor,
    y: torch.Tensor,
    dims: tuple[int, ...],
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Per-sample, per-axis int64 counts: :func:`count_axis` for each axis of ``dims``, stacked.

    Returns
    -------
    torch.Tensor
        int64, shape ``x.shape`` without ``dims`` plus a last axis of length ``len(dims)``.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> count_per_axis(x, 1.0 - x, (0, 1))
    tensor([2, 2])
    """
    counts = [count_axis(x, y, a, dims, chunk_elements=chunk_elements) for a in dims]
    return torch.stack(counts, dim=-1)
