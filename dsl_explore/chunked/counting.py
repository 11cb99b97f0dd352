r"""Chunked exact count, DSL value and mismatch map on dask arrays (and zarr stores, memmaps).

Each difference :math:`D_a x[i] = x[i + e_a] - x[i]` is assigned to the block that holds its
first sample :math:`i`; the block sees :math:`x[i + e_a]` through its one-sample halo, so every
difference is evaluated exactly once, by the in-memory functions
:func:`dsl_explore.counting.sign_mismatch_count` and :func:`dsl_explore.loss.directional_sign_loss`
on the block. Counts are summed in int64 (exact); DSL partial sums are added across blocks with
:func:`math.fsum` (correctly rounded), so the DSL value differs from the in-memory one only by the
in-memory function's own summation rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch

from dsl_explore._validation import (
    check_choice,
    check_k,
    resolve_dims,
    resolve_weights,
    sample_shape,
)
from dsl_explore.chunked._blocks import Halo, core, forward, keep_samples, map_halo, pair
from dsl_explore.counting import MismatchMap
from dsl_explore.counting import sign_mismatch_count as in_memory_count
from dsl_explore.counting import sign_mismatch_map as in_memory_map
from dsl_explore.loss import REDUCTIONS, SURROGATES
from dsl_explore.loss import directional_sign_loss as in_memory_dsl

__all__ = ["directional_sign_loss", "sign_mismatch_count", "sign_mismatch_map"]

COUNT_REDUCTIONS = ("sum", "mean", "none")


def _count_block(
    xb: np.ndarray, yb: np.ndarray, *, halo: Halo, dims: tuple[int, ...]
) -> np.ndarray:
    """Per-sample int64 counts of the block's differences, dims axes kept with length 1."""
    own = xb[core(halo, xb.shape)]
    shape = [1 if d in dims else n for d, n in enumerate(own.shape)] + [len(dims)]
    out = np.zeros(shape, dtype=np.int64)
    for j, a in enumerate(dims):
        idx = forward(halo, xb.shape, a)
        px, py = xb[idx], yb[idx]
        if px.shape[a] < 2:
            continue
        c = np.asarray(in_memory_count(px, py, dims=a, reduction="none"))
        others = tuple(d - (d > a) for d in dims if d != a)
        out[..., j] = np.expand_dims(c.sum(axis=others, keepdims=True), a)
    return out


def _per_sample_counts(x: da.Array, y: da.Array, dims: tuple[int, ...]) -> da.Array:
    chunks = [*keep_samples(x.chunks, dims), (len(dims),)]
    per = map_halo(_count_block, [x, y], dims, chunks=chunks, dtype=np.int64,
                   neighbours="high", new_axis=x.ndim, dims=dims)
    return per.sum(axis=dims, dtype=np.int64)  # (*samples, n_axes)


def _finish_count(
    per_np: np.ndarray,
    shape: tuple[int, ...],
    dims: tuple[int, ...],
    w: tuple[float, ...] | None,
    reduction: str,
    per_axis: bool,
) -> np.ndarray:
    """The in-memory function's own final arithmetic, on the exact per-sample counts."""
    per = torch.from_numpy(np.ascontiguousarray(per_np, dtype=np.int64))
    if reduction == "mean":
        n_samples = int(np.prod(sample_shape(shape, dims), dtype=np.int64))
        n_diffs = []
        for a in dims:
            n = 1
            for d in dims:
                n *= shape[d] - 1 if d == a else shape[d]
            n_diffs.append(max(n, 0) * n_samples)
        denom = torch.tensor(n_diffs, dtype=torch.float64)
        per = per.reshape(-1, len(dims)).sum(0).to(torch.float64) / denom.clamp_min(1)
    elif reduction == "sum":
        per = per.reshape(-1, len(dims)).sum(0)
    if w is not None:
        per = per.to(torch.float64) * torch.tensor(w, dtype=torch.float64)
    out = per if per_axis else per.sum(-1)
    return np.asarray(out.numpy())


def sign_mismatch_count(
    x: Any,
    y: Any,
    *,
    dims: int | Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    reduction: str = "sum",
    per_axis: bool = False,
    compute: bool = True,
) -> Any:
    r"""Chunked :func:`dsl_explore.counting.sign_mismatch_count`: the same value, block by block.

    .. math::

        M_w(x, y) = \sum_{a \in \mathrm{dims}} w_a \sum_i
            \left[ \operatorname{sgn} D_a x[i] \ne \operatorname{sgn} D_a y[i] \right]

    Parameters
    ----------
    x, y : dask.array.Array or array-like
        Arrays of one shape and a real dtype; anything that is not a dask array (a zarr array, a
        ``numpy.memmap``) is wrapped with ``dask.array.from_array``. ``y`` is rechunked to the
        chunks of ``x`` when they differ.
    dims, weights, reduction, per_axis
        As in :func:`dsl_explore.counting.sign_mismatch_count`.
    compute : bool, keyword-only
        False returns a ``dask.delayed`` object whose ``compute()`` gives the value (to compute it
        in one pass with other results, e.g. ``dask.compute(a, b)``).

    Returns
    -------
    numpy.ndarray
        Exactly what the in-memory function returns for the same numpy input: int64 counts,
        float64 with ``weights`` or ``reduction="mean"``; shape ``()``, the sample shape for
        ``"none"``, plus ``(len(dims),)`` with ``per_axis``.

    Raises
    ------
    TypeError
        If an input is not an array or has a non-real dtype.
    ValueError
        On a shape mismatch, bad ``dims`` / ``weights`` / ``reduction``; NaN or infinity in a
        block raises when the value is computed.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array([0.0, 1.0, 2.0, 3.0, 2.0], chunks=2)
    >>> y = da.from_array([0.0, 1.0, 0.0, 1.0, 2.0], chunks=2)
    >>> int(sign_mismatch_count(x, y, dims=0))
    2
    """
    xd, yd = pair(x, y, floating=False)
    check_choice(reduction, "reduction", COUNT_REDUCTIONS)
    dims_t = resolve_dims(xd.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    if xd.size == 0:
        value = dask.delayed(in_memory_count)(
            np.zeros(xd.shape, xd.dtype), np.zeros(yd.shape, yd.dtype), dims=dims_t,
            weights=weights, reduction=reduction, per_axis=per_axis,
        )
        return value.compute() if compute else value
    per = _per_sample_counts(xd, yd, dims_t)
    value = dask.delayed(_finish_count)(per, xd.shape, dims_t, w, reduction, per_axis)
    return value.compute() if compute else value


def _dsl_block(
    xb: np.ndarray,
    yb: np.ndarray,
    *,
    halo: Halo,
    dims: tuple[int, ...],
    k: float,
    surrogate: str,
    per_sample: bool,
) -> np.ndarray:
    """Per-axis sums of the DSL terms of the block's differences (float64): per sample with
    dims axes of length 1 when ``per_sample``, else one value (every axis of length 1)."""
    own_shape = [hi - lo for lo, hi in ((s.start, s.stop) for s in core(halo, xb.shape))]
    shape = [1 if (d in dims or not per_sample) else n for d, n in enumerate(own_shape)]
    out = np.zeros([*shape, len(dims)], dtype=np.float64)
    for j, a in enumerate(dims):
        idx = forward(halo, xb.shape, a)
        px, py = xb[idx], yb[idx]
        if px.dtype == np.float16:  # the in-memory function computes float16 in float32
            px, py = px.astype(np.float32), py.astype(np.float32)
        n = px.shape[a]
        if n < 2 or px.size == 0:
            continue
        if not per_sample:
            out[..., j] = float(in_memory_dsl(
                px, py, k=k, dims=(a,), surrogate=surrogate, reduction="sum", backend="torch"))
            continue
        rows = np.asarray(in_memory_dsl(
            px, py, k=k, dims=(a,), surrogate=surrogate, reduction="none", backend="torch"
        ), dtype=np.float64) * (n - 1)
        others = tuple(d - (d > a) for d in dims if d != a)
        out[..., j] = np.expand_dims(rows.sum(axis=others, keepdims=True), a)
    return out


def _finish_dsl(
    sums: np.ndarray,
    shape: tuple[int, ...],
    dims: tuple[int, ...],
    w: tuple[float, ...] | None,
    reduction: str,
    dtype: np.dtype[Any],
) -> np.ndarray:
    """Exact cross-block sums (fsum), then the in-memory reduction arithmetic."""
    if reduction == "none":
        per = sums  # (*samples, n_axes), summed by dask in float64
        total = np.zeros(per.shape[:-1], dtype=np.float64)
    else:
        per = np.array([math.fsum(sums[..., j].ravel()) for j in range(len(dims))])
        total = np.zeros((), dtype=np.float64)
    for j, a in enumerate(dims):
        if shape[a] < 2:
            continue
        n_terms = 1
        for d in (dims if reduction == "none" else range(len(shape))):
            n_terms *= shape[d] - 1 if d == a else shape[d]
        if n_terms == 0:
            continue
        r = per[..., j] if reduction == "sum" else per[..., j] / n_terms
        total = total + (r if w is None else w[j] * r)
    return np.asarray(total.astype(dtype))


def directional_sign_loss(
    x: Any,
    y: Any,
    *,
    k: float = 10.0,
    weights: Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    surrogate: str = "tanh",
    reduction: str = "mean",
    compute: bool = True,
) -> Any:
    r"""Chunked value of :func:`dsl_explore.loss.directional_sign_loss` (no gradient).

    .. math::

        \mathrm{DSL}_{k,w}(x, y) = \sum_{a \in \mathrm{dims}} w_a \, R\!\left(
            \tfrac12 \left| s(k\, D_a x) - s(k\, D_a y) \right| \right)

    Each block's differences go through ``directional_sign_loss(..., reduction="sum")`` (or
    ``"none"`` per sample); the block sums are added with :func:`math.fsum` and the reduction
    :math:`R` is applied once on the totals.

    Parameters
    ----------
    x, y : dask.array.Array or array-like
        Arrays of one shape with a real floating dtype (see :func:`sign_mismatch_count`).
    k, weights, dims, surrogate, reduction
        As in :func:`dsl_explore.loss.directional_sign_loss`.
    compute : bool, keyword-only
        False returns a ``dask.delayed`` object instead of the value.

    Returns
    -------
    numpy.ndarray
        Of ``x``'s dtype: a 0-d value, or the sample shape for ``reduction="none"``. It equals
        the in-memory value up to that function's own float rounding (both use the input dtype
        within a block; float16 in float32).

    Raises
    ------
    TypeError, ValueError
        As :func:`dsl_explore.loss.directional_sign_loss`.

    Examples
    --------
    >>> import dask.array as da
    >>> y = da.from_array([[[0.0, 1.0, 0.0, 1.0]]], chunks=(1, 1, 2))
    >>> x = da.from_array([[[0.0, 1.0, 2.0, 3.0]]], chunks=(1, 1, 2))
    >>> round(float(directional_sign_loss(x, y, k=100.0, reduction="sum")), 4)
    1.0
    """
    xd, yd = pair(x, y, floating=True)
    k = check_k(k)
    check_choice(surrogate, "surrogate", tuple(SURROGATES))
    check_choice(reduction, "reduction", REDUCTIONS)
    dims_t = resolve_dims(xd.ndim, dims, default="spatial")
    w = resolve_weights(weights, len(dims_t))
    per_sample = reduction == "none"
    if per_sample:
        chunks = [*keep_samples(xd.chunks, dims_t), (len(dims_t),)]
    else:
        chunks = [*keep_samples(xd.chunks, range(xd.ndim)), (len(dims_t),)]
    if xd.size == 0:
        value = dask.delayed(in_memory_dsl)(
            np.zeros(xd.shape, xd.dtype), np.zeros(yd.shape, yd.dtype), k=k, weights=weights,
            dims=dims_t, surrogate=surrogate, reduction=reduction)
        return value.compute() if compute else value
    sums = map_halo(_dsl_block, [xd, yd], dims_t, chunks=chunks, dtype=np.float64,
                    neighbours="high", new_axis=xd.ndim, dims=dims_t, k=k, surrogate=surrogate,
                    per_sample=per_sample)
    if per_sample:
        sums = sums.sum(axis=dims_t, dtype=np.float64)
    value = dask.delayed(_finish_dsl)(sums, xd.shape, dims_t, w, reduction, np.dtype(xd.dtype))
    return value.compute() if compute else value


def _diff_map_block(
    xb: np.ndarray, yb: np.ndarray, *, halo: Halo, a: int
) -> np.ndarray:
    idx = forward(halo, xb.shape, a)
    return np.asarray(in_memory_map(xb[idx], yb[idx], dims=a).per_axis[0])


def _incidence_block(
    xb: np.ndarray, yb: np.ndarray, *, halo: Halo, dims: tuple[int, ...]
) -> np.ndarray:
    return np.asarray(in_memory_map(xb, yb, dims=dims).incidence)[core(halo, xb.shape)]


def sign_mismatch_map(x: Any, y: Any, *, dims: int | Sequence[int] | None = None) -> MismatchMap:
    """Chunked :func:`dsl_explore.counting.sign_mismatch_map`: lazy dask maps, chunked like ``x``.

    Parameters
    ----------
    x, y : dask.array.Array or array-like
        As in :func:`sign_mismatch_count`.
    dims : int or sequence of int, optional, keyword-only
        The axes to difference along; ``None`` means the spatial axes of ``(N, C, *spatial)``.

    Returns
    -------
    MismatchMap
        With dask arrays: ``per_axis[j]`` (bool, axis ``dims[j]`` one shorter, its last chunk one
        shorter), ``incidence`` (int8) and ``vertex`` (bool) of ``x``'s shape and chunks. Nothing
        is computed until asked (``.compute()``, ``dask.array.to_zarr``).

    Raises
    ------
    TypeError, ValueError
        As :func:`sign_mismatch_count`.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array([0.0, 1.0, 2.0, 3.0], chunks=2)
    >>> y = da.from_array([0.0, 1.0, 0.0, 1.0], chunks=2)
    >>> m = sign_mismatch_map(x, y, dims=0)
    >>> m.per_axis[0].compute()
    array([False,  True, False])
    >>> m.vertex.compute()
    array([False,  True,  True, False])
    """
    xd, yd = pair(x, y, floating=False)
    dims_t = resolve_dims(xd.ndim, dims, default="spatial")
    maps = []
    for a in dims_t:
        chunks = [list(c) for c in xd.chunks]
        chunks[a][-1] -= 1
        if xd.shape[a] == 0:
            chunks[a] = [0]
            maps.append(da.zeros([len(c) and sum(c) for c in chunks], dtype=bool,
                                 chunks=tuple(tuple(c) for c in chunks)))
            continue
        maps.append(map_halo(_diff_map_block, [xd, yd], (a,), chunks=chunks, dtype=bool,
                             neighbours="high", a=a))
    incidence = map_halo(_incidence_block, [xd, yd], dims_t, chunks=xd.chunks, dtype=np.int8,
                         neighbours="faces", dims=dims_t)
    return MismatchMap(dims_t, tuple(maps), incidence, incidence > 0)  # type: ignore[arg-type]
