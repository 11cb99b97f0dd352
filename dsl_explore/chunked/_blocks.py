"""Block geometry for the chunked path: a pair of dask arrays, one-sample halos, per-block calls.

Every chunked function maps an in-memory function of :mod:`dsl_explore` over the blocks of its
inputs, each block carrying one extra sample on the sides along the axes of ``dims`` where a
neighbouring block exists (none at the array's own ends, so a block edge that is not an array
edge sees its neighbour while the array's ends stay ends). ``Halo`` says which sides got one.

Memory is bounded by the blocks in flight, not by the array: :func:`map_halo` runs two passes
with no dependency between full blocks. Pass 1 reads each block (from a renamed copy of the
input's graph, :func:`fresh_copy`) and keeps only *copies* of its thin
boundary slabs, one sample thick; pass 2 runs one task per block that depends on its own source
block and the small slabs of its neighbours, assembles the halo'd block and calls the in-memory
function. A source block is thus read twice (once per pass) and is never held for a neighbour:
``dask.array.overlap.overlap`` made every block a dependency of up to 27 tasks and dask's
ordering then kept most of the array alive (``tests/test_chunked_memory.py`` measures it).
Which slabs a block needs is ``neighbours``:

- ``"high"``: the faces one block up along each axis of ``dims`` (forward differences);
- ``"faces"``: the faces on both sides along each axis (axis-wise neighbours);
- ``"all"``: faces, edges and corners (the full 3^k - 1 neighbourhood, piecewise-linear).

With ``"high"`` and ``"faces"`` the edge and corner samples of the halo'd block are zeros: the
block functions never read them for the samples they keep.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import DataNode, convert_legacy_graph
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

Halo = tuple[tuple[int, int], ...]
"""Per axis ``(low, high)``: 1 where the block carries a neighbour's sample on that side."""

Offset = tuple[int, ...]
"""A neighbour's block index minus the block's own, entries in {-1, 0, 1}."""

NEIGHBOURS = ("high", "faces", "all")
"""The kinds of halo :func:`map_halo` assembles (see the module docstring)."""


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


def offsets(neighbours: str, dims: Sequence[int], ndim: int) -> list[Offset]:
    """The neighbour offsets a block needs for ``neighbours`` (``"high"``, ``"faces"``, ``"all"``).

    >>> offsets("faces", (1,), 2)
    [(0, -1), (0, 1)]
    """
    unit = [tuple(int(d == a) for d in range(ndim)) for a in dims]
    if neighbours == "high":
        return unit
    if neighbours == "faces":
        return [tuple(s * u for u in e) for e in unit for s in (-1, 1)]
    steps = [(-1, 0, 1) if d in dims else (0,) for d in range(ndim)]
    return [o for o in itertools.product(*steps) if any(o)]


def halo_of(
    block_id: Sequence[int], numblocks: Sequence[int], dims: Sequence[int], neighbours: str = "all"
) -> Halo:
    """The halo sides of the block at ``block_id``: none at the array's ends, and none on the
    low sides for ``neighbours="high"``."""
    low = neighbours != "high"
    return tuple(
        (int(low and i > 0), int(i < n - 1)) if d in dims else (0, 0)
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


def _renamed(key: Any, tag: str) -> Any:
    return (f"{key[0]}-{tag}", *key[1:]) if isinstance(key, tuple) else f"{key}-{tag}"


def fresh_copy(a: da.Array, tag: str) -> da.Array:
    """``a`` computed by a renamed copy of its graph (keys suffixed ``-tag-<token>``).

    No task is shared with ``a``'s graph, so a pass that reads the copy reads the source again
    (a zarr chunk is read and decoded twice) instead of keeping the block alive for a second
    consumer. Roots that many blocks read, such as the zarr array handle of ``da.from_zarr``,
    are inlined into the tasks that read them (as ``inline_array=True`` would): a shared root
    makes dask's ordering load every block of the array before it is used. Numpy arrays are
    not inlined (they would be copied into every task on a cluster).
    ``dask.graph_manipulation.clone`` is not used: it leaves some renamed tasks under their old
    keys (rechunk layers), which breaks the graph.
    """
    tag = f"{tag}-{tokenize(a.name)[:8]}"
    graph = convert_legacy_graph(dict(a.__dask_graph__()))
    users: dict[Any, int] = {}
    for node in graph.values():
        for dep in node.dependencies:
            users[dep] = users.get(dep, 0) + 1
    subs: dict[Any, Any] = {k: _renamed(k, tag) for k in graph}
    for k, node in graph.items():
        if (isinstance(node, DataNode) and users.get(k, 0) > 1
                and not isinstance(node.value, np.ndarray)):
            subs[k] = node
    dsk = {subs[k]: node.substitute(subs, key=subs[k]) for k, node in graph.items()
           if not isinstance(subs[k], DataNode)}
    return da.Array(dsk, _renamed(a.name, tag), a.chunks, dtype=a.dtype, meta=a._meta)


def _slabs(
    wanted: Sequence[Offset], blocks: Sequence[np.ndarray]
) -> list[dict[Offset, np.ndarray]]:
    """Pass 1: per array, copies of the pieces of its block that the block at ``-offset`` needs.

    Along an axis where the offset is +1 the receiver sits below: it gets our first sample;
    -1: our last; 0: the whole extent. Copies, so the blocks themselves are freed.
    """
    idx = {o: tuple(slice(0, 1) if k > 0 else slice(-1, None) if k < 0 else slice(None)
                    for k in o) for o in wanted}
    return [{o: block[i].copy() for o, i in idx.items()} for block in blocks]


def _assemble(
    own: np.ndarray, halo: Halo, pieces: Sequence[tuple[Offset, np.ndarray]], zero: bool
) -> np.ndarray:
    """Pass 2: the block with its halo, the neighbours' slabs put in place."""
    if not pieces:
        return own
    shape = [n + lo + hi for n, (lo, hi) in zip(own.shape, halo, strict=True)]
    out = (np.zeros if zero else np.empty)(shape, dtype=own.dtype)
    out[core(halo, shape)] = own
    for o, piece in pieces:
        idx = tuple(slice(0, 1) if s < 0 else slice(m - 1, m) if s > 0 else slice(lo, m - hi)
                    for s, m, (lo, hi) in zip(o, shape, halo, strict=True))
        out[idx] = piece
    return out


def _run_block(
    fn: Callable[..., np.ndarray],
    halo: Halo,
    present: Sequence[Offset],
    zero: bool,
    kwargs: dict[str, Any],
    blocks: Sequence[np.ndarray],
    slabs: Sequence[Sequence[dict[Offset, np.ndarray]]],
) -> np.ndarray:
    """Pass 2 on one block: ``slabs[i][j]`` is neighbour ``present[i]``'s slabs of array ``j``."""
    halod = [
        _assemble(own, halo, [(o, s[j][o]) for o, s in zip(present, slabs, strict=True)], zero)
        for j, own in enumerate(blocks)
    ]
    return fn(*halod, halo=halo, **kwargs)


def map_halo(
    fn: Callable[..., np.ndarray],
    arrays: Sequence[da.Array],
    halo_dims: Sequence[int],
    /,
    *,
    chunks: Sequence[Sequence[int]],
    dtype: Any,
    neighbours: str = "all",
    new_axis: int | None = None,
    **kwargs: Any,
) -> da.Array:
    """``fn(*blocks, halo=..., **kwargs)`` on every block, with a halo along ``halo_dims``.

    ``arrays`` share one chunking; ``neighbours`` picks the slabs each block gets (see the module
    docstring); ``chunks`` are the output chunks (one entry per output axis); ``new_axis``
    appends one axis. Lazy: nothing is computed until the result is.
    """
    numblocks = arrays[0].numblocks
    ndim = arrays[0].ndim
    sources = [fresh_copy(a, "halo-blocks") for a in arrays]
    dims = tuple(d for d in halo_dims if numblocks[d] > 1)
    want = offsets(neighbours, dims, ndim)
    name = "map-halo-" + tokenize(fn, [a.name for a in arrays], dims, neighbours, chunks,
                                  new_axis, kwargs)
    tail = (0,) if new_axis is not None else ()
    dsk: dict[Any, Any] = {}
    deps: list[Any] = list(sources)
    if want:
        # pass 1 reads its own copy of the graph: no source block is shared between passes
        copies = [fresh_copy(a, "halo-slabs") for a in arrays]
        deps.extend(copies)
        for s in np.ndindex(*numblocks):
            sent = [o for o in want if all(0 <= i - k < n for i, k, n in
                                           zip(s, o, numblocks, strict=True))]
            key = (f"{name}-slabs", *s)
            dsk[key] = (partial(_slabs, sent), [(c.name, *s) for c in copies])
    for r in np.ndindex(*numblocks):
        present = [o for o in want if all(0 <= i + k < n for i, k, n in
                                          zip(r, o, numblocks, strict=True))]
        halo = halo_of(r, numblocks, dims, neighbours)
        task = partial(_run_block, fn, halo, present, neighbours != "all", kwargs)
        slabs = [(f"{name}-slabs", *(i + k for i, k in zip(r, o, strict=True)))
                 for o in present]
        key = (name, *r, *tail)
        dsk[key] = (task, [(a.name, *r) for a in sources], slabs)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, tuple(tuple(c) for c in chunks), dtype=dtype,
                    meta=np.empty((0,) * len(chunks), dtype=dtype))


def keep_samples(chunks: Sequence[Sequence[int]], dims: Sequence[int]) -> list[tuple[int, ...]]:
    """Output chunks that keep the sample axes and shrink every axis of ``dims`` to 1 per block."""
    return [(1,) * len(c) if d in dims else tuple(c) for d, c in enumerate(chunks)]
