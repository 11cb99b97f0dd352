"""Block geometry for the chunked path: a pair of dask arrays, one-sample halos, per-block calls.

Every chunked function maps an in-memory function of :mod:`dsl_explore` over the blocks of
``dask.array.overlap.overlap(a, depth={d: 1 for d in dims}, boundary="none")``: each block
carries one extra sample on each side along every axis of ``dims`` where a neighbouring block
exists, and none at the array's own ends, so a block edge that is not an array edge sees its
neighbour while the array's ends stay ends. ``Halo`` says which sides of a block got one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np

Halo = tuple[tuple[int, int], ...]
"""Per axis ``(low, high)``: 1 where the block carries a neighbour's sample on that side."""


def as_dask(a: object, name: str) -> da.Array:
    """``a`` as a dask array: dask arrays as they are, anything array-like through ``from_array``.

    Raises
    ------
    TypeError
        If ``a`` has no ``shape`` and ``dtype`` (not an array).
    """
    if isinstance(a, da.Array):
        return a
    if not (hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__getitem__")):
        raise TypeError(
            f"{name} must be a dask array or an array-like (numpy, memmap, zarr), "
            f"got {type(a).__name__}"
        )
    if hasattr(a, "detach"):  # a torch tensor
        raise TypeError(f"{name} must be a dask array or an array-like, got a torch tensor")
    return da.from_array(a, chunks="auto")


def check_dtype(a: da.Array, name: str, *, floating: bool) -> None:
    """Reject non-real (and, with ``floating``, non-floating) dtypes before anything is computed."""
    kind = np.dtype(a.dtype).kind
    allowed = "f" if floating else "buif"
    if kind not in allowed:
        what = "a real floating dtype" if floating else "a real (bool, integer or float) dtype"
        raise TypeError(f"{name} must have {what}, got dtype {a.dtype}")


def pair(x: object, y: object, *, floating: bool) -> tuple[da.Array, da.Array]:
    """Validate ``x`` and ``y`` (one shape, real dtypes) and give them the chunks of ``x``."""
    xd, yd = as_dask(x, "x"), as_dask(y, "y")
    if xd.shape != yd.shape:
        raise ValueError(f"x and y must have one shape, got {xd.shape} and {yd.shape}")
    check_dtype(xd, "x", floating=floating)
    check_dtype(yd, "y", floating=floating)
    if yd.chunks != xd.chunks:
        yd = yd.rechunk(xd.chunks)
    return xd, yd


def overlapped(a: da.Array, dims: Sequence[int]) -> da.Array:
    """``a`` with a one-sample halo along ``dims`` between blocks and none at the array's ends."""
    depth = {d: (1 if d in dims else 0) for d in range(a.ndim)}
    if all(len(a.chunks[d]) == 1 for d in dims):
        return a
    return da.overlap.overlap(a, depth=depth, boundary="none")


def halo_of(block_id: Sequence[int], numblocks: Sequence[int], dims: Sequence[int]) -> Halo:
    """The halo sides of the block at ``block_id`` (see :func:`overlapped`)."""
    return tuple(
        (int(i > 0), int(i < n - 1)) if d in dims else (0, 0)
        for d, (i, n) in enumerate(zip(block_id, numblocks, strict=False))
    )


def core(halo: Halo, shape: Sequence[int]) -> tuple[slice, ...]:
    """Index of a block's own samples (its halo removed)."""
    return tuple(slice(lo, n - hi) for (lo, hi), n in zip(halo, shape, strict=True))


def forward(halo: Halo, shape: Sequence[int], a: int) -> tuple[slice, ...]:
    """The block's own samples plus its high halo along ``a``: every difference along ``a``
    whose first (lower-index) sample belongs to the block, each counted by exactly one block."""
    idx = list(core(halo, shape))
    idx[a] = slice(halo[a][0], shape[a])
    return tuple(idx)


def map_halo(
    fn: Callable[..., np.ndarray],
    arrays: Sequence[da.Array],
    halo_dims: Sequence[int],
    /,
    *,
    chunks: Sequence[Sequence[int]],
    dtype: Any,
    new_axis: int | None = None,
    **kwargs: Any,
) -> da.Array:
    """``fn(*blocks, halo=..., **kwargs)`` on every block, overlapped along ``halo_dims``.

    ``chunks`` are the output chunks (one entry per output axis); ``new_axis`` appends one axis.
    """
    numblocks = arrays[0].numblocks
    ndim = arrays[0].ndim
    over = [overlapped(a, halo_dims) for a in arrays]

    def call(*blocks: np.ndarray, block_id: Sequence[int] | None = None) -> np.ndarray:
        assert block_id is not None
        return fn(*blocks, halo=halo_of(block_id[:ndim], numblocks, halo_dims), **kwargs)

    extra: dict[str, Any] = {} if new_axis is None else {"new_axis": [new_axis]}
    return da.map_blocks(
        call, *over, chunks=tuple(tuple(c) for c in chunks), dtype=dtype,
        meta=np.empty((0,) * len(chunks), dtype=dtype), **extra,
    )


def keep_samples(chunks: Sequence[Sequence[int]], dims: Sequence[int]) -> list[tuple[int, ...]]:
    """Output chunks that keep the sample axes and shrink every axis of ``dims`` to 1 per block."""
    return [(1,) * len(c) if d in dims else tuple(c) for d, c in enumerate(chunks)]
