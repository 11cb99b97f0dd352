"""Chunked critical points and their comparison, on dask arrays (and zarr stores, memmaps).

Each block is labelled by :func:`dsl_explore.critical.critical_points` with a one-sample halo
along the spatial axes and the halo is then cut off, so every sample sees exactly the neighbours
it has in the whole array: a block edge inside the array sees its neighbour, the array's own ends
stay ends (they are extrema by their one neighbour, as in memory).

Ties are broken by simulation of simplicity on ``(value, flat C-order index)``. Within a block the
flat indices differ from the global ones, but for two grid neighbours (an offset with entries in
{-1, 0, 1}) the sign of the flat-index difference is the sign of the offset's first non-zero
entry, whatever the shape (the later axes' strides sum to less than the earlier one's), so every
comparison, and every label, is the global one. ``tests/test_chunked.py`` checks this on ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import dask
import dask.array as da
import numpy as np

from dsl_explore._validation import check_choice, resolve_dims
from dsl_explore.chunked._blocks import Halo, as_dask, check_dtype, core, map_halo, pair
from dsl_explore.critical import METHODS, CriticalMismatch, CriticalType
from dsl_explore.critical import critical_points as in_memory_critical_points

__all__ = [
    "GROUPS",
    "compare_labels",
    "critical_points",
    "mismatched_critical_points",
]

GROUPS = ("spurious", "lost", "changed", "matched")
"""The groups of :class:`dsl_explore.critical.CriticalMismatch`, in code order 1-4."""


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _labels_block(
    xb: np.ndarray, *, halo: Halo, dims: tuple[int, ...], method: str, per_axis: bool,
    multiplicity: bool,
) -> np.ndarray:
    out = in_memory_critical_points(
        xb, dims=dims, method=method, per_axis=per_axis, return_multiplicity=multiplicity
    )
    arr = np.stack(out, axis=-1) if isinstance(out, tuple) else np.asarray(out)
    return arr[core(halo, xb.shape)]


@overload
def critical_points(
    x: Any,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Literal[False] = ...,
) -> da.Array: ...


@overload
def critical_points(
    x: Any,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Literal[True],
) -> tuple[da.Array, da.Array]: ...


def critical_points(
    x: Any,
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
    per_axis: bool = False,
    return_multiplicity: bool = False,
) -> da.Array | tuple[da.Array, da.Array]:
    """Chunked :func:`dsl_explore.critical.critical_points`: lazy int8 labels chunked like ``x``.

    Parameters
    ----------
    x : dask.array.Array or array-like
        A real field (a zarr array or memmap is wrapped with ``dask.array.from_array``).
    dims, method, per_axis, return_multiplicity
        As in :func:`dsl_explore.critical.critical_points`.

    Returns
    -------
    labels : dask.array.Array
        ``int8`` :class:`~dsl_explore.critical.CriticalType` codes, equal to the in-memory
        labels of the whole array (shape ``x.shape``, plus ``(len(dims),)`` with ``per_axis``).
    multiplicity : dask.array.Array
        Only with ``return_multiplicity=True``.

    Raises
    ------
    TypeError
        If ``x`` is not an array, has a non-real dtype, or a flag is not a bool.
    ValueError
        On bad ``dims`` / ``method``, or ``per_axis=True`` with ``method="pl"``; NaN or infinity
        raise when the labels are computed.

    Examples
    --------
    >>> import dask.array as da
    >>> critical_points(da.from_array([1, 1, 1, 0], chunks=2)).compute()
    array([1, 0, 2, 1], dtype=int8)
    """
    xd = as_dask(x, "x")
    check_dtype(xd, "x", floating=False)
    check_choice(method, "method", METHODS)
    per_axis = _flag(per_axis, "per_axis")
    return_multiplicity = _flag(return_multiplicity, "return_multiplicity")
    if per_axis and method != "axis":
        raise ValueError(f"per_axis=True needs method='axis', got method={method!r}")
    axes = resolve_dims(xd.ndim, dims, default="all")
    if xd.size == 0:
        empty = da.zeros(xd.shape + ((len(axes),) if per_axis else ()), dtype=np.int8)
        return (empty, empty) if return_multiplicity else empty
    stack = return_multiplicity and not per_axis
    chunks = list(xd.chunks)
    if per_axis:
        chunks.append((len(axes),))
    elif stack:
        chunks.append((2,))
    labels = map_halo(
        _labels_block, [xd], axes, chunks=chunks, dtype=np.int8,
        neighbours="faces" if method == "axis" else "all",
        new_axis=xd.ndim if (per_axis or stack) else None,
        dims=axes, method=method, per_axis=per_axis, multiplicity=stack,
    )
    if stack:
        return labels[..., 0], labels[..., 1]
    if return_multiplicity:
        return labels, da.zeros_like(labels)
    return labels


def _group_codes(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """0 for non-critical in both, else 1 + the index of the group in :data:`GROUPS`."""
    cx, cy = lx != 0, ly != 0
    codes = np.zeros(lx.shape, dtype=np.int8)
    codes[cx & ~cy] = 1
    codes[cy & ~cx] = 2
    codes[cx & cy & (lx != ly)] = 3
    codes[cx & cy & (lx == ly)] = 4
    return codes


def _bincount_block(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    codes = _group_codes(lx, ly).ravel()
    types = np.where(codes == 2, ly.ravel(), lx.ravel()).astype(np.int64)
    counts = np.zeros((len(GROUPS) + 1, len(CriticalType)), dtype=np.int64)
    np.add.at(counts, (codes.astype(np.int64), types), 1)
    return counts.reshape((1,) * lx.ndim + counts.shape)


def compare_labels(lx: Any, ly: Any, *, compute: bool = True) -> Any:
    """Counts of spurious, lost, changed and matched critical points from two label arrays.

    Parameters
    ----------
    lx, ly : dask.array.Array or array-like
        ``int8`` labels of the reconstruction and the target (from :func:`critical_points`),
        of one shape.
    compute : bool, keyword-only
        False returns a ``dask.delayed`` object instead of the dict.

    Returns
    -------
    dict
        ``{"spurious": n, "lost": n, "changed": n, "matched": n, "by_type": {group: {type
        name: n}}}`` with int counts; ``by_type`` splits each group by the type of ``lx`` (``ly``
        for ``lost``), as :class:`~dsl_explore.critical.CriticalMismatch` reports them.

    Examples
    --------
    >>> import numpy as np
    >>> out = compare_labels(np.array([1, 2, 1, 2], np.int8), np.array([1, 0, 0, 2], np.int8))
    >>> out["spurious"], out["lost"], out["changed"], out["matched"]
    (2, 0, 0, 2)
    """
    ax, ay = as_dask(lx, "lx"), as_dask(ly, "ly")
    if ax.shape != ay.shape:
        raise ValueError(f"lx and ly must have one shape, got {ax.shape} and {ay.shape}")
    ay = ay.rechunk(ax.chunks)
    chunks = [(1,) * len(c) for c in ax.chunks] + [(len(GROUPS) + 1,), (len(CriticalType),)]
    per = da.map_blocks(_bincount_block, ax, ay, chunks=tuple(chunks), dtype=np.int64,
                        new_axis=[ax.ndim, ax.ndim + 1])
    total = per.sum(axis=tuple(range(ax.ndim)), dtype=np.int64)
    value = dask.delayed(_group_dict)(total)
    return value.compute() if compute else value


def _group_dict(total: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {g: int(total[i + 1].sum()) for i, g in enumerate(GROUPS)}
    out["by_type"] = {
        g: {c.name: int(total[i + 1, int(c)]) for c in CriticalType if c != CriticalType.REGULAR}
        for i, g in enumerate(GROUPS)
    }
    return out


def _block_groups(lx: np.ndarray, ly: np.ndarray, offset: np.ndarray) -> dict[str, np.ndarray]:
    codes = _group_codes(lx, ly)
    out = {}
    for i, g in enumerate(GROUPS):
        mask = codes == i + 1
        out[g] = np.argwhere(mask).astype(np.int64) + offset
        out[g + "_x"] = lx[mask]
        out[g + "_y"] = ly[mask]
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def mismatched_critical_points(
    x: Any,
    y: Any,
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
) -> CriticalMismatch:
    """Chunked :func:`dsl_explore.critical.mismatched_critical_points`, computed.

    The labels are computed block by block; the coordinates of each group (full-array indices,
    in C order, as in memory) are gathered into numpy arrays, so they must fit in memory: for a
    huge volume with many critical points use :func:`compare_labels` for the counts only.

    Parameters
    ----------
    x, y : dask.array.Array or array-like
        The reconstruction and the target, of one shape and a real dtype.
    dims, method
        As in :func:`critical_points`.

    Returns
    -------
    CriticalMismatch
        Equal, array by array, to the in-memory result.

    Raises
    ------
    TypeError, ValueError
        As :func:`critical_points`, and on a shape mismatch.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array([0.0, 2.0, 1.0, 3.0], chunks=2)
    >>> y = da.from_array([0.0, 1.0, 2.0, 3.0], chunks=2)
    >>> mismatched_critical_points(x, y)
    CriticalMismatch(n_spurious=2, n_lost=0, n_changed=0, n_matched=2)
    """
    xd, yd = pair(x, y, floating=False)
    lx = critical_points(xd, dims=dims, method=method)
    ly = critical_points(yd, dims=dims, method=method)
    assert isinstance(lx, da.Array) and isinstance(ly, da.Array)
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in lx.chunks]
    bx, by = lx.to_delayed(), ly.to_delayed()
    parts = [
        dask.delayed(_block_groups)(bx[idx], by[idx], np.array(
            [s[i] for s, i in zip(starts, idx, strict=True)], dtype=np.int64))
        for idx in np.ndindex(*lx.numblocks)
    ]
    computed = dask.compute(*parts)
    shape = xd.shape
    fields: dict[str, np.ndarray] = {}
    for g in GROUPS:
        coords = np.concatenate([p[g] for p in computed]) if computed else np.zeros((0, len(shape)))
        coords = coords.reshape(-1, len(shape)).astype(np.int64)
        order = np.argsort(np.ravel_multi_index(tuple(coords.T), shape), kind="stable")
        fields[g] = coords[order]
        for side in ("_x", "_y"):
            fields[g + side] = np.concatenate([p[g + side] for p in computed])[order]
    return CriticalMismatch(
        spurious=_frozen(fields["spurious"]),
        spurious_types=_frozen(fields["spurious_x"]),
        lost=_frozen(fields["lost"]),
        lost_types=_frozen(fields["lost_y"]),
        changed=_frozen(fields["changed"]),
        changed_from=_frozen(fields["changed_y"]),
        changed_to=_frozen(fields["changed_x"]),
        matched=_frozen(fields["matched"]),
        matched_types=_frozen(fields["matched_x"]),
    )
