r"""The exact finite-difference sign-mismatch count: the non-differentiable target of DSL.

.. math::

    M_a(x, y) = \sum_i \left[ \operatorname{sgn} D_a x[i] \ne \operatorname{sgn} D_a y[i] \right],
    \qquad M_w(x, y) = \sum_a w_a M_a(x, y),

with the forward difference :math:`D_a x[i] = x[i + e_a] - x[i]` (``numpy.diff`` semantics) and
:math:`\operatorname{sgn} 0 = 0`. The signs are taken from comparisons (``x[i+1] > x[i]``), never
from a subtraction, so they are exact for every dtype (no overflow, no rounding), and the counts
are accumulated in int64, exact for inputs of any size. Large inputs are processed in slabs, so
the extra memory stays bounded (about :data:`CHUNK_ELEMENTS` booleans) instead of growing with
the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dsl_explore._reference import CHUNK_ELEMENTS, axis_mismatch, count_per_axis
from dsl_explore._validation import (
    ArrayLike,
    as_ordered_tensor,
    as_tensor,
    check_choice,
    check_finite,
    check_pair,
    check_real,
    is_torch,
    resolve_dims,
    resolve_weights,
    sample_shape,
)
from dsl_explore.registry import COUNT_REDUCTIONS

__all__ = ["CHUNK_ELEMENTS", "MismatchMap", "sign_mismatch_count", "sign_mismatch_map"]

# CHUNK_ELEMENTS: inputs larger than this are counted slab by slab (read at call time, so a test
# may lower it on this module).


def _triton_available() -> bool:
    from dsl_explore.kernels import triton_available

    return triton_available()


def _n_differences(shape: Sequence[int], a: int, dims: tuple[int, ...]) -> int:
    """Number of differences along axis ``a`` in one sample."""
    n = 1
    for d in dims:
        n *= shape[d] - 1 if d == a else shape[d]
    return max(n, 0)


def sign_mismatch_count(
    x: ArrayLike,
    y: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    reduction: str = "sum",
    per_axis: bool = False,
) -> ArrayLike:
    r"""Exact number of finite differences whose signs differ between ``x`` and ``y``.

    .. math::

        M_w(x, y) = \sum_{a \in \mathrm{dims}} w_a \sum_i
            \left[ \operatorname{sgn} D_a x[i] \ne \operatorname{sgn} D_a y[i] \right]

    Parameters
    ----------
    x, y : numpy.ndarray or torch.Tensor
        Arrays of one kind, shape and device, with a real dtype (bool, integer of any width and
        signedness, or float); NaN and infinity are rejected. The two dtypes may differ.
    dims : int or sequence of int, optional, keyword-only
        The axes to difference along; ``None`` means the spatial axes of ``(N, C, *spatial)``
        (1-3 of them), as in :func:`~dsl_explore.loss.directional_sign_loss`.
    weights : sequence of float, optional, keyword-only
        One weight ``w_a >= 0`` per entry of ``dims``. Without weights the counts are exact
        int64; with weights they are float64.
    reduction : {"sum", "mean", "none"}, keyword-only
        ``"sum"``: the total over all samples. ``"none"``: one count per sample (the axes not in
        ``dims``). ``"mean"``: the mismatch *rate*, each axis' count divided by its number of
        differences over all samples, then weighted and summed over axes (float64; the exact
        counterpart of DSL's ``reduction="mean"``).
    per_axis : bool, keyword-only
        Add a last axis of length ``len(dims)`` holding each axis' value instead of summing them.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same kind (and device) as the input: int64 counts, or float64 with weights or
        ``reduction="mean"``. Shape ``()`` for ``"sum"``/``"mean"``, ``x.shape`` without ``dims``
        for ``"none"``; plus ``(len(dims),)`` at the end when ``per_axis``.

    Notes
    -----
    Peak extra memory: O(:data:`CHUNK_ELEMENTS`) booleans plus the result; plus one (widened)
    copy of an input that is uint16/32/64, read-only, byte-swapped or negatively strided.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore import sign_mismatch_count
    >>> y = np.array([0.0, 1.0, 0.0, 1.0])
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> int(sign_mismatch_count(x, y, dims=0))
    1
    >>> sign_mismatch_count(np.stack([x, y]), np.stack([y, y]), dims=-1, reduction="none")
    array([1, 0])
    """
    check_pair(x, y)
    check_real(x, "x")
    check_real(y, "y")
    check_finite(x, "x")
    check_finite(y, "y")
    check_choice(reduction, "reduction", COUNT_REDUCTIONS)
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    xt, yt = as_ordered_tensor(x), as_ordered_tensor(y)
    if xt.is_cuda and _triton_available():  # fused kernel: exact int64, no host round trip
        from dsl_explore.kernels import mismatch_count

        per = as_tensor(mismatch_count(xt, yt, dims=dims_t, backend="triton"))
    else:
        # (*samples, n_axes), int64
        per = count_per_axis(xt, yt, dims_t, chunk_elements=CHUNK_ELEMENTS)
    if reduction == "mean":
        n_samples = int(np.prod(sample_shape(x.shape, dims_t), dtype=np.int64))
        denom = torch.tensor(
            [_n_differences(x.shape, a, dims_t) * n_samples for a in dims_t],
            dtype=torch.float64,
            device=per.device,
        )
        per = per.reshape(-1, len(dims_t)).sum(0).to(torch.float64) / denom.clamp_min(1)
    elif reduction == "sum":
        per = per.reshape(-1, len(dims_t)).sum(0)
    if w is not None:
        per = per.to(torch.float64) * torch.tensor(w, dtype=torch.float64, device=per.device)
    out = per if per_axis else per.sum(-1)
    return out if is_torch(x) else out.numpy()


@dataclass(frozen=True)
class MismatchMap:
    """Where the signs of the finite differences of ``x`` and ``y`` disagree.

    Attributes
    ----------
    dims : tuple of int
        The axes, in the order of ``per_axis``.
    per_axis : tuple of arrays
        One boolean array per axis ``a`` of shape ``x.shape`` with axis ``a`` shortened by one:
        entry ``i`` compares ``sgn D_a x[i]`` with ``sgn D_a y[i]``.
    incidence : array
        int8 array of ``x``'s shape: at each vertex, the number of mismatched differences that
        touch it (each difference touches its two end vertices), from 0 to ``2 * len(dims)``.
    vertex : array
        Boolean array of ``x``'s shape, ``incidence > 0``: the vertex-level map for plotting.
    """

    dims: tuple[int, ...]
    per_axis: tuple[ArrayLike, ...]
    incidence: ArrayLike
    vertex: ArrayLike


def sign_mismatch_map(
    x: ArrayLike, y: ArrayLike, *, dims: int | Sequence[int] | None = None
) -> MismatchMap:
    r"""Boolean maps of the finite differences whose signs disagree, per axis and per vertex.

    ``per_axis[j][i] = [sgn D_a x[i] != sgn D_a y[i]]`` for ``a = dims[j]``; a vertex is marked
    when any difference that starts or ends at it is mismatched.

    Parameters
    ----------
    x, y : numpy.ndarray or torch.Tensor
        As in :func:`sign_mismatch_count`.
    dims : int or sequence of int, optional, keyword-only
        The axes to difference along; ``None`` means the spatial axes of ``(N, C, *spatial)``.

    Returns
    -------
    MismatchMap
        Arrays of the input's kind and device.

    Notes
    -----
    Peak extra memory: the result (one bool per difference and axis, plus an int8 and a bool
    per vertex) and one axis' comparison temporaries (about 3 booleans per element).

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore import sign_mismatch_map
    >>> x, y = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0, 1.0])
    >>> m = sign_mismatch_map(x, y, dims=0)
    >>> m.per_axis[0]
    array([False,  True, False])
    >>> m.vertex
    array([False,  True,  True, False])
    """
    check_pair(x, y)
    check_real(x, "x")
    check_real(y, "y")
    check_finite(x, "x")
    check_finite(y, "y")
    dims_t = resolve_dims(x.ndim, dims, default="spatial")
    xt, yt = as_ordered_tensor(x), as_ordered_tensor(y)
    incidence = torch.zeros(xt.shape, dtype=torch.int8, device=xt.device)
    maps = []
    for a in dims_t:
        n = xt.shape[a]
        if n < 2:
            shape = list(xt.shape)
            shape[a] = max(n - 1, 0)
            m = torch.zeros(shape, dtype=torch.bool, device=xt.device)
        else:
            m = axis_mismatch(xt, yt, a)
            mi = m.to(torch.int8)
            incidence.narrow(a, 0, n - 1).add_(mi)
            incidence.narrow(a, 1, n - 1).add_(mi)
        maps.append(m)
    vertex = incidence > 0
    if is_torch(x):
        return MismatchMap(dims_t, tuple(maps), incidence, vertex)
    return MismatchMap(dims_t, tuple(m.numpy() for m in maps), incidence.numpy(), vertex.numpy())
