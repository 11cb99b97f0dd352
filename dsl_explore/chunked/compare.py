"""Compare a target and a reconstruction stored on disk, chunk by chunk (``dsl-explore compare``).

:func:`open_array` opens ``.zarr`` stores, ``.npy`` files (as a read-only memmap) and ``.npz``
archives as dask arrays; :func:`compare` computes the exact count per axis, the DSL value and the
critical-point comparison in one pass over the data and writes, atomically (into a temporary
directory beside ``out``, renamed at the end; nothing is left behind on failure):

- ``out/summary.json``: shapes, dtypes, dims, the chunking used, the counts, DSL and critical
  point counts (and Betti errors when asked);
- ``out/maps.zarr``: ``mismatch_incidence`` (int8, see
  :class:`~dsl_explore.counting.MismatchMap`), ``labels_target`` and ``labels_recon`` (int8
  :class:`~dsl_explore.critical.CriticalType` codes).

Betti numbers need gudhi on the whole array in memory: :func:`compare` refuses them when the
estimate (:data:`BETTI_BYTES_PER_VOXEL` per voxel) exceeds the available memory, or computes them
on a stated mean-downsampling with the caveat written into the summary. Never silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from dsl_explore._validation import check_int, resolve_dims
from dsl_explore.chunked.counting import directional_sign_loss, sign_mismatch_map
from dsl_explore.chunked.counting import sign_mismatch_count as count
from dsl_explore.chunked.critical import compare_labels, critical_points

__all__ = [
    "BETTI_BYTES_PER_VOXEL",
    "CHUNK_EDGE",
    "compare",
    "open_array",
    "smooth_pair",
    "write_zarr",
]

CHUNK_EDGE = 128
"""Default chunk edge along each spatial axis when an input's own chunks are larger."""

MAX_CHUNK_ELEMENTS = 1 << 24
"""Input chunks up to this many elements are kept as they are."""

BETTI_BYTES_PER_VOXEL = 400
"""Memory estimate of gudhi's cubical persistence (both fields, float64 copies, the complex)."""


def open_array(path: str | os.PathLike[str], *, key: str | None = None) -> da.Array:
    """Open a ``.zarr`` store, a ``.npy`` file (memmap) or a ``.npz`` archive as a dask array.

    Parameters
    ----------
    path : str or path-like
        The store. A zarr group or an ``.npz`` archive must hold exactly one array, or ``key``
        names it.
    key : str, optional
        The array inside a zarr group or an ``.npz`` archive.

    Returns
    -------
    dask.array.Array
        Lazy (``.npz`` members are read into memory: the format cannot be memory-mapped).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the store cannot be read, has an unknown suffix, or ``key`` is missing / ambiguous.
    TypeError
        If the array is not numeric (bool, integer or float).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(p, np.arange(6.0).reshape(2, 3))
    >>> open_array(p).shape
    (2, 3)
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".zarr":
            import zarr

            node: Any = zarr.open(str(p), mode="r")
            if isinstance(node, zarr.Group):
                names = sorted(name for name, _ in node.arrays())
                node = node[_pick(names, key, p)]
            arr = da.from_zarr(node)
        elif suffix == ".npy":
            arr = da.from_array(np.load(p, mmap_mode="r"), chunks="auto")
        elif suffix == ".npz":
            with np.load(p) as archive:
                data = archive[_pick(sorted(archive.files), key, p)]
            arr = da.from_array(data, chunks="auto")
        else:
            raise ValueError(f"{p}: unknown format {suffix!r}; expected .zarr, .npy or .npz")
    except (ValueError, KeyError, OSError, EOFError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(p)):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p} cannot be read: {first}") from exc
    if np.dtype(arr.dtype).kind not in "buif":
        raise TypeError(f"{p} holds dtype {arr.dtype}, not numbers (bool, integer or float)")
    return arr


def _pick(names: Sequence[str], key: str | None, p: Path) -> str:
    if key is not None:
        if key not in names:
            raise ValueError(f"{p}: no array {key!r}; it holds {list(names)}")
        return key
    if len(names) != 1:
        raise ValueError(f"{p} holds {len(names)} arrays {list(names)}; name one with key=")
    return names[0]


def _spatial(ndim: int, dims: int | Sequence[int] | None) -> tuple[int, ...]:
    return resolve_dims(ndim, dims, default="all" if ndim <= 3 else "spatial")


def _chunk(a: da.Array, dims: tuple[int, ...], edge: int | None) -> da.Array:
    """Regular chunks (zarr writes need them): the input's own if small enough, else ``edge``."""
    if edge is None and int(np.prod(a.chunksize)) <= MAX_CHUNK_ELEMENTS:
        return a.rechunk(a.chunksize)
    e = edge or CHUNK_EDGE
    return a.rechunk({d: (e if d in dims else a.chunksize[d]) for d in range(a.ndim)})


def _available_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def _betti(
    x: da.Array, y: da.Array, dims: tuple[int, ...], downsample: int | None
) -> dict[str, Any]:
    from dsl_explore.topology import betti_error

    factor = downsample or 1
    if factor > 1:
        axes = {d: factor for d in dims}
        x = da.coarsen(np.mean, x, axes, trim_excess=True)
        y = da.coarsen(np.mean, y, axes, trim_excess=True)
    need = int(np.prod(x.shape)) * BETTI_BYTES_PER_VOXEL
    have = _available_bytes()
    if need > have:
        raise ValueError(
            f"--betti needs the whole volume in memory for gudhi: about {need / 2**30:.1f} GiB "
            f"for shape {x.shape}, but {have / 2**30:.1f} GiB are available; pass "
            "--betti-downsample F to compute Betti numbers on an F-times mean-downsampled volume "
            "(stated in summary.json), or drop --betti"
        )
    xs, ys = dask.compute(x.astype(np.float64), y.astype(np.float64))
    err = betti_error(xs, ys, dims=dims)
    out: dict[str, Any] = {
        "per_dim": np.asarray(err.per_dim).tolist(),
        "total": float(np.sum(err.total)),
        "relative": float(np.mean(err.relative)),
        "downsample": factor,
        "shape": list(x.shape),
    }
    if factor > 1:
        out["caveat"] = (
            f"Betti numbers computed on a {factor}-times mean-downsampled volume of shape "
            f"{tuple(x.shape)}, not on the full volume: features smaller than {factor} samples "
            "are not seen, and the values are not those of the full-resolution fields"
        )
    return out


def compare(
    target: str | os.PathLike[str],
    recon: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
    k: float = 10.0,
    surrogate: str = "tanh",
    chunk: int | None = None,
    key: str | None = None,
    betti: bool = False,
    betti_downsample: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Compare two stored volumes chunk by chunk and write ``summary.json`` and ``maps.zarr``.

    Parameters
    ----------
    target, recon : path-like
        ``.zarr``, ``.npy`` or ``.npz`` stores of one shape (see :func:`open_array`).
    out : path-like
        Output directory; it must not exist or be empty (or ``overwrite``). Its parent must exist.
    dims : int or sequence of int, optional
        Spatial axes; default every axis of a 1-3D array, the trailing axes of ``(N, C, ...)``.
    method : {"axis", "pl"}
        Critical-point classification.
    k, surrogate
        DSL sharpness and surrogate (``reduction="mean"``).
    chunk : int, optional
        Chunk edge along the spatial axes; default the stores' own chunks when they hold at most
        2**24 elements, else :data:`CHUNK_EDGE`.
    key : str, optional
        The array inside a zarr group or ``.npz`` archive (both inputs).
    betti : bool
        Also compute Betti errors (gudhi, in memory; refused above the available memory).
    betti_downsample : int, optional
        Mean-downsample by this factor along the spatial axes before the Betti computation (the
        caveat goes into the summary).
    progress : bool
        A dask progress bar on stderr.
    overwrite : bool
        Replace a non-empty ``out``.

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError, TypeError
        On missing / unreadable / non-numeric stores, mismatched shapes, a non-empty ``out``,
        or Betti numbers that would not fit in memory. Nothing is written then.
    """
    out_p = Path(out)
    if not out_p.parent.is_dir():
        raise FileNotFoundError(f"the parent directory of --out {out_p} does not exist")
    if out_p.exists() and (not out_p.is_dir() or any(out_p.iterdir())) and not overwrite:
        raise FileExistsError(f"{out_p} exists and is not empty; pass --overwrite to replace it")
    if chunk is not None:
        chunk = check_int(chunk, "chunk", minimum=1)
    if betti_downsample is not None:
        betti_downsample = check_int(betti_downsample, "betti_downsample", minimum=1)
        betti = True
    y = open_array(target, key=key)
    x = open_array(recon, key=key)
    if x.shape != y.shape:
        raise ValueError(f"target {target} has shape {y.shape} but recon {recon} has {x.shape}")
    dims_t = _spatial(x.ndim, dims)
    x = _chunk(x, dims_t, chunk)
    y = y.rechunk(x.chunks)
    floating = np.dtype(x.dtype).kind == "f" and np.dtype(y.dtype).kind == "f"
    xf, yf = (x, y) if floating else (x.astype(np.float64), y.astype(np.float64))

    per_axis = count(x, y, dims=dims_t, per_axis=True, compute=False)
    dsl = directional_sign_loss(xf, yf, k=k, dims=dims_t, surrogate=surrogate, compute=False)
    lx = critical_points(x, dims=dims_t, method=method)
    ly = critical_points(y, dims=dims_t, method=method)
    crit = compare_labels(lx, ly, compute=False)
    incidence = sign_mismatch_map(x, y, dims=dims_t).incidence

    tmp = Path(tempfile.mkdtemp(dir=out_p.parent, prefix=f".{out_p.name}.tmp-"))
    try:
        stores = [
            da.to_zarr(a, str(tmp / "maps.zarr"), component=name, compute=False)
            for name, a in (("mismatch_incidence", incidence), ("labels_target", ly),
                            ("labels_recon", lx))
        ]
        bar: Any = contextlib.nullcontext()
        if progress:
            from dask.diagnostics import ProgressBar

            bar = ProgressBar(out=sys.stderr)
        with bar:
            counts, dsl_value, crit_counts, *_ = dask.compute(per_axis, dsl, crit, *stores)
        summary: dict[str, Any] = {
            "target": str(target),
            "recon": str(recon),
            "shape": list(x.shape),
            "dtype": {"target": str(y.dtype), "recon": str(x.dtype)},
            "dims": list(dims_t),
            "chunks": {"chunk_shape": list(x.chunksize), "blocks": list(x.numblocks)},
            "sign_mismatch": {
                "per_axis": [int(c) for c in counts],
                "total": int(np.sum(counts)),
            },
            "dsl": {"value": float(dsl_value), "k": k, "surrogate": surrogate,
                    "reduction": "mean"},
            "critical_points": {"method": method, **crit_counts},
            "maps": {"path": "maps.zarr",
                     "arrays": ["mismatch_incidence", "labels_target", "labels_recon"]},
            "betti": _betti(x, y, dims_t, betti_downsample) if betti else None,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if out_p.exists():
            trash = Path(tempfile.mkdtemp(dir=out_p.parent, prefix=f".{out_p.name}.old-"))
            os.replace(out_p, trash / "old")
            os.replace(tmp, out_p)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def write_zarr(a: Any, path: str | os.PathLike[str], *, chunks: int | Sequence[int] = 64) -> Path:
    """Write an array (numpy or dask) to a new zarr store at ``path`` with regular ``chunks``."""
    arr = a if isinstance(a, da.Array) else da.from_array(np.asarray(a))
    arr = arr.rechunk(chunks)
    da.to_zarr(arr, str(path), overwrite=True)
    return Path(path)


def smooth_pair(
    shape: Sequence[int],
    *,
    chunks: int = 64,
    sigma: float = 3.0,
    noise: float = 0.05,
    seed: int = 0,
    dtype: Any = np.float32,
) -> tuple[da.Array, da.Array]:
    """A lazy ``(target, recon)`` pair of any size, generated block by block.

    The target is white noise smoothed by a Gaussian of ``sigma`` samples (per block, with a
    halo of ``3 sigma``), scaled to unit spread; the reconstruction adds white noise of standard
    deviation ``noise``. Both are chunked by ``chunks`` and never held in memory as a whole.

    Examples
    --------
    >>> y, x = smooth_pair((32, 32, 32), chunks=16)
    >>> y.shape, x.dtype.name
    ((32, 32, 32), 'float32')
    """
    from scipy import ndimage

    rng = da.random.default_rng(seed)
    white = rng.standard_normal(tuple(shape), chunks=chunks)
    depth = max(1, int(np.ceil(3 * sigma)))
    target = white.map_overlap(ndimage.gaussian_filter, depth=depth, boundary="reflect",
                               sigma=sigma, dtype=np.float64)
    target = target * float(np.sqrt(2 * np.sqrt(np.pi) * sigma) ** len(shape))
    recon = target + noise * rng.standard_normal(tuple(shape), chunks=chunks)
    return target.astype(dtype), recon.astype(dtype)
