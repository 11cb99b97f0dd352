"""Real training sets cut from data files that packages ship inside their wheels.

Nothing is ever downloaded: every file below is part of an installed package (the ``real``
extra, ``pip install 'dsl-explore[real]'``), located in the package's directory and read from
there; a loader that could fetch from the network is not used.

- 1-D: windows of three statsmodels series (``statsmodels.datasets.<name>.load_pandas()``, CSV
  files in the wheel): weekly Mauna Loa CO2 (1958-2001, 2284 weeks, its 59 gaps filled by
  linear interpolation), yearly sunspot activity (1700-2008, 309 years) and monthly El Nino sea
  surface temperatures (1950-2010, 732 months, the year rows read in order).
- 2-D: patches of the gray images scikit-image ships in ``skimage/data/`` (camera, coins, moon,
  brick, grass, gravel, text, page, cell), read from the file with ``skimage.io.imread`` (the
  ``skimage.data`` functions may fetch other images with pooch; these nine are in the wheel).
- 3-D: cubes of nilearn's MNI152 2009a symmetric T1 template
  (``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``, 197 x 233 x 189
  voxels of 1 mm, skull-stripped), read with nibabel and cropped to the brain's bounding box
  (145 x 181 x 155 voxels); nilearn itself is not imported.

Every source is first min-max scaled to ``[0, 1]`` as a whole, then reduced by block means of
``downsample`` samples per axis (default :data:`DEFAULT_DOWNSAMPLE`: 1 in 1-D, 2 in 2-D and
3-D, so that a 32 x 32 patch spans 64 x 64 image pixels and a 16^3 cube 32 mm of brain and each
holds structure rather than one flat region). A window (a run of ``size`` samples, a
``size x size`` patch, a ``size^3`` cube) is eligible when its range is at least
:data:`MIN_RANGE` (no flat sky or background windows, whose per-window normalisation would only
blow up quantisation noise) and, in 3-D, when at least :data:`BRAIN_FRACTION` of its voxels lie
in the brain mask (template intensity above :data:`BRAIN_THRESHOLD` of its maximum, nilearn's
``load_mni152_brain_mask`` rule). The ``n`` samples are drawn uniformly, with replacement, from
all eligible windows of all sources of the dimensionality (so a source weighs by its number of
windows), and each is min-max normalised to ``[0, 1]`` on its own, like every generator of
:mod:`dsl_explore.data`.

Regions: ``region="train"`` and ``region="val"`` cut every source along its longest axis into
its first 75 % and its last :data:`VAL_REGION_FRACTION` (time in 1-D, image rows or columns in
2-D, the posterior-anterior axis of the brain in 3-D, whose last quarter is the frontal lobe;
the template is left-right symmetric, so a left/right split would leak mirror images), and
draw windows inside that part only, so a training set and a validation set drawn from the two
regions share no sample of the source. A source whose part is shorter than a window gives no
windows to that region (at ``size=256`` in 1-D, only CO2 holds a validation window; sunspots,
309 years, hold none in either region).
A ``TrainingConfig`` with ``data="real"`` draws its training set from ``region="train"`` and
its validation set from ``region="val"`` (:func:`dsl_explore.training.make_training_data`).
``region="all"`` (the default of ``make_dataset("real", ...)``) draws from the whole source; a
split of such a set holds disjoint *samples*, but windows of the two parts may overlap.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import numbers
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dsl_explore._validation import check_choice, check_int

__all__ = [
    "BRAIN_FRACTION",
    "BRAIN_THRESHOLD",
    "DEFAULT_DOWNSAMPLE",
    "MIN_RANGE",
    "MISSING_EXTRA_MESSAGE",
    "REAL_SOURCES",
    "REGIONS",
    "VAL_REGION_FRACTION",
    "MissingExtraError",
    "real_dataset",
]

MISSING_EXTRA_MESSAGE = (
    "real data needs the optional packages statsmodels, scikit-image, nilearn, nibabel: "
    "pip install 'dsl-explore[real]'"
)
"""The message of :class:`MissingExtraError`."""

_SERIES = ("co2", "sunspots", "elnino")
_IMAGES = ("camera", "coins", "moon", "brick", "grass", "gravel", "text", "page", "cell")
_TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

REAL_SOURCES: dict[int, tuple[str, ...]] = {
    1: tuple(f"statsmodels.datasets.{name}" for name in _SERIES),
    2: tuple(f"skimage/data/{name}.png" for name in _IMAGES),
    3: (f"nilearn/datasets/data/{_TEMPLATE}",),
}
"""Per dimensionality, the data sets and files the real samples are cut from (provenance)."""

REGIONS = ("all", "train", "val")
"""The ``region`` values :func:`real_dataset` accepts."""

DEFAULT_DOWNSAMPLE = {1: 1, 2: 2, 3: 2}
"""Block-mean factor per axis when ``downsample=None``, per dimensionality."""

VAL_REGION_FRACTION = 0.25
"""Share of each source's longest axis (its end) that forms ``region="val"``."""

MIN_RANGE = 0.1
"""Smallest range (max - min) of an eligible window, in units of its source's full range."""

BRAIN_THRESHOLD = 0.2
"""Brain mask of the 3-D template: intensity above this fraction of the template's maximum."""

BRAIN_FRACTION = 0.95
"""Smallest share of a 3-D cube's voxels that must lie inside the brain mask."""

# The distribution that ships each dimensionality's files, and the modules it needs.
_PACKAGES = {1: ("statsmodels",), 2: ("skimage",), 3: ("nilearn", "nibabel")}
_DISTRIBUTIONS = {
    "statsmodels": "statsmodels", "skimage": "scikit-image", "nilearn": "nilearn",
    "nibabel": "nibabel",
}


class MissingExtraError(ImportError):
    """A package of the ``real`` extra is not installed (the message says how to install it)."""


def _require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{MISSING_EXTRA_MESSAGE} ({_DISTRIBUTIONS.get(top, top)} is not installed)"
        ) from None


def _package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"{MISSING_EXTRA_MESSAGE} ({_DISTRIBUTIONS[package]} is not installed)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _shipped_file(package: str, relative: str) -> Path:
    path = _package_dir(package) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is not in the installed {_DISTRIBUTIONS[package]}: real data uses only "
            f"files shipped in the wheel and never downloads; reinstall it with "
            f"pip install 'dsl-explore[real]'"
        )
    return path


def _scaled(a: np.ndarray) -> np.ndarray:
    """``a`` as float64 min-max scaled to [0, 1] as a whole (a constant array gives all 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.full(a.shape, 0.5)
    return (a - lo) / (hi - lo)


# --------------------------------------------------------------------------------------------
# the sources, read once per process (read-only arrays in [0, 1])
# --------------------------------------------------------------------------------------------


@functools.cache
def _series(name: str) -> np.ndarray:
    module = _require(f"statsmodels.datasets.{name}")
    frame = module.load_pandas().data
    if name == "co2":
        values = frame["co2"].to_numpy(dtype=np.float64)
        known = np.flatnonzero(np.isfinite(values))
        values = np.interp(np.arange(values.size), known, values[known])
    elif name == "sunspots":
        values = frame["SUNACTIVITY"].to_numpy(dtype=np.float64)
    else:  # elnino: one row per year, the twelve months in columns
        values = frame.drop(columns="YEAR").to_numpy(dtype=np.float64).ravel()
    return values


@functools.cache
def _image(name: str) -> np.ndarray:
    path = _shipped_file("skimage", f"data/{name}.png")
    io = _require("skimage.io")
    image = np.asarray(io.imread(path))
    if image.ndim != 2:
        raise ValueError(f"{path} is not a gray image (shape {image.shape})")
    return image


@functools.cache
def _template() -> np.ndarray:
    path = _shipped_file("nilearn", f"datasets/data/{_TEMPLATE}")
    nibabel = _require("nibabel")
    return np.asarray(nibabel.load(path).dataobj, dtype=np.float64)


def _raw_sources(dims: int) -> list[np.ndarray]:
    if dims == 1:
        return [_series(name) for name in _SERIES]
    if dims == 2:
        return [_image(name) for name in _IMAGES]
    return [_template()]


@functools.lru_cache(maxsize=8)
def _sources(dims: int, factor: int) -> tuple[np.ndarray, ...]:
    """Each source scaled to [0, 1] and block-averaged by ``factor`` per axis (read-only)."""
    out = []
    for raw in _raw_sources(dims):
        a = _scaled(raw)
        if dims == 3:  # the brain's bounding box: the regions then split the brain, not air
            a = a[_bounding_box(a > BRAIN_THRESHOLD)]
        a = _block_mean(a, factor)
        a.flags.writeable = False
        out.append(a)
    return tuple(out)


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box holding every true entry of ``mask`` (which holds at least one)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Means over ``factor``-wide blocks on every axis (a remainder at the end is dropped)."""
    if factor == 1:
        return a
    kept = tuple(s // factor for s in a.shape)
    a = a[tuple(slice(0, k * factor) for k in kept)]
    shape = [v for k in kept for v in (k, factor)]
    return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


def _region(a: np.ndarray, region: str) -> np.ndarray:
    """The ``region`` part of ``a`` along its longest axis (all of it for ``"all"``)."""
    if region == "all":
        return a
    axis = int(np.argmax(a.shape))
    cut = a.shape[axis] - math.ceil(a.shape[axis] * VAL_REGION_FRACTION)
    index = [slice(None)] * a.ndim
    index[axis] = slice(0, cut) if region == "train" else slice(cut, None)
    return a[tuple(index)]


def _window_reduce(a: np.ndarray, size: tuple[int, ...], op: str) -> np.ndarray:
    """``op`` (max, min, sum) over every window of ``size``, one axis at a time; the result
    has one entry per window start (shape ``a.shape - size + 1``)."""
    for axis, s in enumerate(size):
        a = getattr(sliding_window_view(a, s, axis=axis), op)(axis=-1)
    return a


def _eligible(a: np.ndarray, size: tuple[int, ...], dims: int) -> np.ndarray:
    """Boolean map over window starts: the windows of ``a`` that may be drawn."""
    if any(s > d for s, d in zip(size, a.shape, strict=True)):
        return np.zeros((0,) * a.ndim, dtype=bool)
    ok = _window_reduce(a, size, "max") - _window_reduce(a, size, "min") >= MIN_RANGE
    if dims == 3:
        inside = _window_reduce((a > BRAIN_THRESHOLD).astype(np.float64), size, "sum")
        ok &= inside >= BRAIN_FRACTION * math.prod(size)
    return ok


# --------------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------------


def _check_size(size: object, dims: int) -> tuple[int, ...]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size),) * dims
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence):
        raise TypeError(f"size must be an int or a tuple of {dims} ints, got {size!r}")
    if len(size) != dims or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 2 for s in size
    ):
        raise ValueError(f"size must be an int or {dims} ints >= 2 (one per axis), got {size!r}")
    return tuple(int(s) for s in size)


def real_dataset(
    dims: int,
    n: int,
    size: int | Sequence[int],
    *,
    seed: int | None = 0,
    downsample: int | None = None,
    region: str = "all",
) -> np.ndarray:
    """Windows of real data shipped by packages: series (1-D), images (2-D), a brain (3-D).

    Each sample is a window ``w`` of a source ``S`` (scaled to ``[0, 1]`` as a whole and
    block-averaged by ``f = downsample`` per axis), normalised on its own,
    ``x = (w - min w) / (max w - min w)``. Windows are drawn uniformly with replacement among
    the eligible ones (range ``>= MIN_RANGE``; in 3-D also ``>= BRAIN_FRACTION`` inside the
    brain); see the module docstring for the sources and the regions.

    Parameters
    ----------
    dims
        Dimensionality: 1 (statsmodels series), 2 (scikit-image images) or 3 (the MNI152 T1
        template); :data:`REAL_SOURCES` names the sources.
    n
        Number of samples (>= 1).
    size
        Window size in samples after downsampling: an int (the same on every axis) or ``dims``
        ints >= 2.
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy (not reproducible).
    downsample
        Block-mean factor per axis (>= 1), so that a window spans ``size * downsample`` source
        samples; ``None`` takes :data:`DEFAULT_DOWNSAMPLE` (1 in 1-D, 2 in 2-D and 3-D).
    region
        ``"all"``, or ``"train"`` / ``"val"``: the first 75 % / the last 25 % of each source
        along its longest axis (disjoint, for a validation set that shares no source sample
        with the training set).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, *size)``, each sample with minimum 0 and maximum 1.

    Raises
    ------
    MissingExtraError
        (an ``ImportError``) If a package of the ``real`` extra that ``dims`` needs is missing.
    ValueError
        For a bad argument, or a ``size`` (times ``downsample``) that no source holds.

    Examples
    --------
    >>> x = real_dataset(2, 4, 32, seed=1)
    >>> x.shape, x.dtype, float(x.min()), float(x.max())
    ((4, 1, 32, 32), dtype('float32'), 0.0, 1.0)
    >>> bool((real_dataset(2, 4, 32, seed=1) == x).all())
    True
    >>> real_dataset(1, 3, 64, region="val").shape
    (3, 1, 64)
    >>> real_dataset(3, 2, 16, downsample=2).shape
    (2, 1, 16, 16, 16)
    >>> REAL_SOURCES[3]
    ('nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz',)
    """
    dims = check_int(dims, "dims", minimum=1, maximum=3)
    n = check_int(n, "n", minimum=1)
    shape = _check_size(size, dims)
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0)
    factor = DEFAULT_DOWNSAMPLE[dims] if downsample is None else downsample
    factor = check_int(factor, "downsample", minimum=1)
    check_choice(region, "region", REGIONS)
    for package in _PACKAGES[dims]:  # on every call: the sources below are cached
        _package_dir(package)
    parts = [_region(a, region) for a in _sources(dims, factor)]
    starts = [np.flatnonzero(_eligible(a, shape, dims)) for a in parts]
    counts = np.array([s.size for s in starts])
    if counts.sum() == 0:
        largest = max(parts, key=lambda a: a.size).shape
        raise ValueError(
            f"size {shape} with downsample {factor} fits no eligible window of the {dims}-D "
            f"real sources (region {region!r}; the largest part is {largest} samples after "
            f"downsampling): lower size or downsample"
        )
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, int(counts.sum()), size=n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    source_of = np.searchsorted(offsets, picks, side="right") - 1
    out = np.empty((n, *shape), dtype=np.float64)
    for i, (src, pick) in enumerate(zip(source_of, picks, strict=True)):
        a = parts[src]
        starts_shape = tuple(d - s + 1 for d, s in zip(a.shape, shape, strict=True))
        corner = np.unravel_index(starts[src][pick - offsets[src]], starts_shape)
        out[i] = a[tuple(slice(c, c + s) for c, s in zip(corner, shape, strict=True))]
    axes = tuple(range(1, out.ndim))
    lo = out.min(axis=axes, keepdims=True)
    span = out.max(axis=axes, keepdims=True) - lo
    out = np.where(span > 0, (out - lo) / np.where(span > 0, span, 1.0), 0.5)
    return np.ascontiguousarray(out[:, None], dtype=np.float32)


def _extra_installed() -> bool:
    return all(importlib.util.find_spec(p) is not None for ps in _PACKAGES.values() for p in ps)


if not _extra_installed() and real_dataset.__doc__:  # its examples need the extra
    real_dataset.__doc__ = re.sub(
        r"^(\s*>>> .*)$", r"\1  # doctest: +SKIP", real_dataset.__doc__, flags=re.M
    )
