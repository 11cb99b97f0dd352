"""Seeded synthetic data sets, user-data loading and a torch ``Dataset`` for the autoencoders.

Every generator returns a float32 numpy array of shape ``(n, 1, *size)`` (samples, one channel,
then 1-3 spatial axes). It draws from its own ``numpy.random.default_rng(seed)``, so the same
arguments give the same array and no global random state (numpy's or torch's) is touched.

Values are min-max normalised **per sample** to ``[0, 1]``: each sample has minimum exactly 0
and maximum exactly 1; a constant sample (zero range) maps to all 0.5. The normalisation is not
cosmetic: the sharpness ``k`` of the Directional Sign Loss multiplies finite differences of the
data, so a given ``k`` only means something relative to the data's scale. With every sample in
``[0, 1]``, a ``k`` chosen on one data set transfers to another; :func:`load_array` applies the
same normalisation to user data for the same reason.

Generators
----------
- :func:`sinusoids_1d`: sums of random sinusoids (1-D).
- :func:`bumps_1d`: smooth bumps with an *exactly controlled* number of interior extrema (1-D).
- :func:`gaussian_blobs`: sums of random Gaussian blobs (1-D, 2-D, 3-D).
- :func:`gaussian_random_field`: power-law Gaussian random fields (1-D, 2-D, 3-D).
- :func:`marschner_lobb`: the Marschner-Lobb test volume (3-D).
- :func:`make_dataset`: dispatch by name; ``"real"`` gives windows of real data shipped by
  packages (:func:`dsl_explore.real_data.real_dataset`, the ``real`` extra).

Sizes: an ``int`` means a 1-D length (except for :func:`marschner_lobb`, which is 3-D only and
reads an ``int`` as a cube); a tuple gives one size per spatial axis, each at least 2.
"""

from __future__ import annotations

import math
import numbers
import os
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dsl_explore._validation import (
    ArrayLike,
    check_allocation,
    check_array,
    check_choice,
    check_finite,
    check_float,
    check_int,
    check_real,
    slab_indices,
    to_numpy,
)
from dsl_explore.real_data import real_dataset

__all__ = [
    "DATASET_KINDS",
    "LAYOUTS",
    "FieldDataset",
    "MissingKeyError",
    "bumps_1d",
    "gaussian_blobs",
    "gaussian_random_field",
    "load_array",
    "make_dataset",
    "marschner_lobb",
    "normalize",
    "sinusoids_1d",
    "split",
]

DATASET_KINDS = ("sinusoids", "bumps", "blobs", "grf", "marschner_lobb", "real")
"""The names :func:`make_dataset` accepts."""

LAYOUTS = ("NL", "NCL", "NCHW", "NCDHW", "field")
"""The explicit layouts :func:`load_array` accepts (besides ``None``, which infers one)."""

_LAYOUT_NDIM = {"NL": (2,), "NCL": (3,), "NCHW": (4,), "NCDHW": (5,), "field": (1, 2, 3)}

# bumps_1d: each monotone run between two knots is a blend of a smoothstep over the whole run
# and a smoothstep "tip" of at most _TIP_WIDTH samples at each end; the tip keeps the first
# step next to every extremum >= _TIP_WEIGHT / 2 * (3 / w**2 - 2 / w**3) of the rise, whatever
# the run length, so the extrema stay strict after rounding to float32.
_TIP_WIDTH = 32
_TIP_WEIGHT = 0.25
# Knot values: maxima in [_HIGH, 1], minima in [0, _LOW]; consecutive knots differ by >= 0.2.
_LOW, _HIGH = 0.4, 0.6
# gaussian_random_field works on at most about this many values at a time; normalize and
# load_array too.
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    return check_int(seed, "seed", minimum=0)


def _check_size(
    size: object, name: str, *, ndims: Sequence[int], int_means: int = 1
) -> tuple[int, ...]:
    """``size`` as a tuple of ints >= 2, of a length in ``ndims``; an int is repeated."""
    allowed = " or ".join(str(d) for d in ndims)
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size),) * int_means
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence):
        raise TypeError(
            f"{name} must be an int or a tuple of {allowed} ints, got {type(size).__name__}"
        )
    out = []
    for s in size:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name} must hold ints, got {s!r} in {tuple(size)!r}")
        if s < 2:
            raise ValueError(
                f"{name} must hold sizes >= 2 (one per spatial axis), got {tuple(size)!r}"
            )
        out.append(int(s))
    if len(out) not in ndims:
        raise ValueError(f"{name} must have {allowed} entries (spatial axes), got {tuple(size)!r}")
    return tuple(out)


def _finish(a: np.ndarray) -> np.ndarray:
    """Per-sample min-max normalisation in float64, then float32 ``(n, 1, *spatial)``."""
    out = normalize(a.astype(np.float64, copy=False)[:, None], per_sample=True)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------


def normalize(a: ArrayLike, *, per_sample: bool = True) -> ArrayLike:
    """Min-max normalise ``a`` to ``[0, 1]``.

    Parameters
    ----------
    a
        A numpy array or torch tensor with a real dtype. Axis 0 indexes samples when
        ``per_sample`` is true (then ``a`` needs at least 2 axes).
    per_sample
        True: every ``a[i]`` is scaled on its own (minimum and maximum over all its other
        axes, channels included). False: one minimum and maximum for the whole array.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The same kind as ``a`` (a tensor stays on its device and keeps its autograd graph).
        Floating dtypes are kept; bool and integer inputs become float32. Each normalised
        group has minimum exactly 0 and maximum exactly 1; a constant group becomes all 0.5.

    Notes
    -----
    Peak extra memory: the output plus O(4 Mi) elements for numpy input (normalised slab by
    slab); for a tensor, about 3x the input in the working dtype (autograd-friendly, one pass).

    Raises
    ------
    TypeError
        If ``a`` is not an array, or has a complex or non-numeric dtype.
    ValueError
        If ``a`` is empty, holds NaN or infinity, or ``per_sample`` is true and ``a`` has fewer
        than 2 axes.

    Examples
    --------
    >>> import numpy as np
    >>> normalize(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]]))
    array([[0. , 1. , 0.5],
           [0.5, 0.5, 0.5]])
    >>> normalize(np.array([2, 4, 6]), per_sample=False).dtype
    dtype('float32')
    """
    check_array(a, "a")
    check_real(a, "a")
    if not isinstance(per_sample, bool):
        raise TypeError(f"per_sample must be a bool, got {type(per_sample).__name__}")
    if a.ndim == 0 or (a.shape and math.prod(a.shape) == 0):
        raise ValueError(f"a must be a non-empty array, got shape {tuple(a.shape)}")
    if per_sample and a.ndim < 2:
        raise ValueError(
            f"with per_sample=True, axis 0 of a indexes samples, so a needs at least 2 axes, "
            f"got shape {tuple(a.shape)}; pass per_sample=False to scale the whole array"
        )
    check_finite(a, "a")
    axes = tuple(range(1, a.ndim)) if per_sample else tuple(range(a.ndim))
    # Halving is exact for normal numbers and keeps hi - lo from overflowing; x / x == 1 exactly,
    # so the maximum maps to exactly 1 and the minimum to exactly 0.
    if isinstance(a, torch.Tensor):
        out_dtype = a.dtype if a.dtype.is_floating_point else torch.float32
        work_dtype = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32
        half = a.to(work_dtype) * 0.5
        lo = half.amin(dim=axes, keepdim=True)
        hi = half.amax(dim=axes, keepdim=True)
        span = hi - lo
        safe = torch.where(span > 0, span, torch.ones_like(span))
        out = torch.where(span > 0, (half - lo) / safe, torch.full_like(half, 0.5))
        return out.to(out_dtype)
    out_dtype_np = a.dtype if a.dtype.kind == "f" else np.dtype(np.float32)
    out_np = np.empty(a.shape, dtype=out_dtype_np)
    _normalize_into(a, out_np, per_sample=per_sample)
    return out_np


def _normalize_into(a: np.ndarray, out: np.ndarray, *, per_sample: bool) -> None:
    """Write ``normalize(a)`` into ``out``, slab by slab (O(slab) temporaries).

    Each element is computed with the same float64 expression as a whole-array version,
    ``h = float64(v) * 0.5``, ``(h - lo) / (hi - lo)`` (or 0.5 for a constant group), with
    ``lo``/``hi`` the group's min/max of ``h``, then cast to ``out.dtype``: the result is
    bit-identical. ``min(h) == float64(min(a)) * 0.5`` because both maps are monotonic.
    """
    if per_sample:
        axes = tuple(range(1, a.ndim))
        lo = a.min(axis=axes).astype(np.float64) * 0.5
        hi = a.max(axis=axes).astype(np.float64) * 0.5
    else:
        lo = np.array([np.float64(a.min()) * 0.5])
        hi = np.array([np.float64(a.max()) * 0.5])
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    bshape = (-1,) + (1,) * (a.ndim - 1)
    for index in slab_indices(a.shape, _CHUNK_ELEMENTS):
        head = index[0] if index else slice(None)
        gl: Any
        gs: Any
        gsafe: Any
        if not per_sample or isinstance(head, int):  # one group: scalars
            g = 0 if not per_sample else head
            gl, gs, gsafe = lo[g], span[g], safe[g]
        else:  # whole samples: (step, 1, ..., 1) to broadcast
            gl, gs, gsafe = (v.reshape(bshape)[head] for v in (lo, span, safe))
        half = a[index].astype(np.float64) * 0.5
        out[index] = np.where(gs > 0, (half - gl) / gsafe, 0.5)


# --------------------------------------------------------------------------------------------
# 1-D generators
# --------------------------------------------------------------------------------------------


def sinusoids_1d(
    n: int,
    length: int,
    *,
    n_components: int = 4,
    max_cycles: float = 8.0,
    seed: int | None = 0,
) -> np.ndarray:
    """Sums of random sinusoids.

    Each sample is ``sum_j a_j sin(2 pi f_j t + phi_j)`` on ``t = i / length``, with amplitudes
    ``a_j`` uniform in ``[0.5, 1]``, frequencies ``f_j`` uniform in ``[0.5, max_cycles]`` cycles
    per signal, phases uniform in ``[0, 2 pi)``; then min-max normalised per sample. The number
    of extrema is not controlled (use :func:`bumps_1d` for that).

    Parameters
    ----------
    n
        Number of samples (>= 1).
    length
        Samples per signal (>= 2); an ``int`` or a 1-tuple.
    n_components
        Sinusoids per sample (>= 1).
    max_cycles
        Highest frequency, in cycles per signal (>= 0.5). Frequencies above ``length / 2``
        alias.
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy (not reproducible).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, length)``, every sample with min 0 and max 1.

    Examples
    --------
    >>> x = sinusoids_1d(3, 128, seed=1)
    >>> x.shape, x.dtype, float(x.min()), float(x.max())
    ((3, 1, 128), dtype('float32'), 0.0, 1.0)
    """
    n = check_int(n, "n", minimum=1)
    (length,) = _check_size(length, "length", ndims=(1,))
    n_components = check_int(n_components, "n_components", minimum=1)
    max_cycles = check_float(max_cycles, "max_cycles", minimum=0.5, strict=False)
    rng = np.random.default_rng(_check_seed(seed))
    amp = rng.uniform(0.5, 1.0, size=(n, n_components, 1))
    freq = rng.uniform(0.5, max_cycles, size=(n, n_components, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, n_components, 1))
    t = np.arange(length) / length
    signal = (amp * np.sin(2 * np.pi * freq * t + phase)).sum(axis=1)
    return _finish(signal)


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _run_profile(h: int) -> np.ndarray:
    """Strictly increasing profile on ``x = 0..h`` from exactly 0 to exactly 1 (C^1 in x)."""
    x = np.arange(h + 1, dtype=np.float64)
    w = min(float(_TIP_WIDTH), h / 2.0)
    tips = 0.5 * _smoothstep(x / w) + 0.5 * _smoothstep((x - (h - w)) / w)
    prof = (1.0 - _TIP_WEIGHT) * _smoothstep(x / h) + _TIP_WEIGHT * tips
    prof[0], prof[-1] = 0.0, 1.0
    return prof


def _count_strict_extrema(s: np.ndarray) -> np.ndarray:
    """Strict interior local minima + maxima along the last axis."""
    mid, left, right = s[..., 1:-1], s[..., :-2], s[..., 2:]
    is_ext = ((mid > left) & (mid > right)) | ((mid < left) & (mid < right))
    return is_ext.sum(axis=-1)


def bumps_1d(n: int, length: int, *, n_extrema: int = 8, seed: int | None = 0) -> np.ndarray:
    """Smooth bumps with an exactly controlled number of interior extrema.

    Guarantee: every returned sample ``s = out[i, 0]`` has exactly ``n_extrema`` strict interior
    local extrema, i.e. exactly ``n_extrema`` indices ``0 < j < length - 1`` with
    ``s[j] > s[j-1] and s[j] > s[j+1]`` or ``s[j] < s[j-1] and s[j] < s[j+1]``, checked on the
    float32 output itself (a :class:`RuntimeError` is raised if the check ever failed, which the
    construction rules out). Extrema are the only places where the discrete slope changes sign;
    there are no plateaus next to them.

    Construction: ``n_extrema`` interior knots at distinct integer positions (random gaps of at
    least a quarter of the mean gap), plus knots at both ends. Knot values alternate between
    "high" (uniform in ``[0.6, 1]``) and "low" (uniform in ``[0, 0.4]``), starting at random. Each
    run between consecutive knots is filled with a strictly monotone C^1 profile with zero slope
    at the knots (a smoothstep blended with short smoothstep tips of at most 32 samples, which
    keep the steps next to each extremum well above float32 resolution for any run length).
    Samples inside a run are therefore strictly between its knot values, and each interior knot
    is a strict extremum. The result is min-max normalised per sample (an affine map, which
    keeps the extrema).

    Parameters
    ----------
    n
        Number of samples (>= 1).
    length
        Samples per signal; an ``int`` or a 1-tuple, at least ``n_extrema + 2``.
    n_extrema
        Exact number of interior strict extrema (>= 0; 0 gives a monotone signal).
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy (not reproducible).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, length)``, every sample with min 0 and max 1.

    Examples
    --------
    >>> import numpy as np
    >>> x = bumps_1d(2, 100, n_extrema=5, seed=3)
    >>> x.shape
    (2, 1, 100)
    >>> s = x[0, 0]
    >>> mid, left, right = s[1:-1], s[:-2], s[2:]
    >>> int(np.sum(((mid > left) & (mid > right)) | ((mid < left) & (mid < right))))
    5
    """
    n = check_int(n, "n", minimum=1)
    (length,) = _check_size(length, "length", ndims=(1,))
    n_extrema = check_int(n_extrema, "n_extrema", minimum=0)
    if length < n_extrema + 2:
        raise ValueError(
            f"length must be at least n_extrema + 2 = {n_extrema + 2} to hold {n_extrema} "
            f"interior extrema, got {length}"
        )
    rng = np.random.default_rng(_check_seed(seed))
    n_runs = n_extrema + 1
    total = length - 1
    min_gap = max(1, total // n_runs // 4)
    out = np.empty((n, length), dtype=np.float64)
    profiles: dict[int, np.ndarray] = {}
    for i in range(n):
        # integer gaps >= min_gap summing exactly to length - 1
        shares = rng.dirichlet(np.full(n_runs, 3.0))
        gaps = min_gap + rng.multinomial(total - n_runs * min_gap, shares)
        knots = np.concatenate([[0], np.cumsum(gaps)])
        high_first = bool(rng.integers(2))
        is_high = (np.arange(n_runs + 1) % 2 == 0) == high_first
        values = np.where(
            is_high,
            rng.uniform(_HIGH, 1.0, size=n_runs + 1),
            rng.uniform(0.0, _LOW, size=n_runs + 1),
        )
        s = out[i]
        for j in range(n_runs):
            a, b, h = knots[j], knots[j + 1], int(gaps[j])
            prof = profiles.get(h)
            if prof is None:
                prof = profiles[h] = _run_profile(h)
            s[a : b + 1] = values[j] + (values[j + 1] - values[j]) * prof
    result = _finish(out)
    counts = _count_strict_extrema(result[:, 0])
    if not np.all(counts == n_extrema):  # pragma: no cover - ruled out by the construction
        raise RuntimeError(
            f"bumps_1d produced {sorted(set(counts.tolist()))} extrema instead of {n_extrema}; "
            "please report this"
        )
    return result


# --------------------------------------------------------------------------------------------
# n-D generators
# --------------------------------------------------------------------------------------------


def _check_sigma(sigma: object) -> tuple[float, float]:
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        sigma = (sigma, sigma)
    if isinstance(sigma, (str, bytes)) or not isinstance(sigma, Sequence) or len(sigma) != 2:
        raise TypeError(f"sigma must be a number or a (low, high) pair of numbers, got {sigma!r}")
    lo = check_float(sigma[0], "sigma[0]", minimum=0.0, strict=True)
    hi = check_float(sigma[1], "sigma[1]", minimum=0.0, strict=True)
    if lo > hi:
        raise ValueError(f"sigma must be a (low, high) pair with low <= high, got {tuple(sigma)!r}")
    return lo, hi


def gaussian_blobs(
    n: int,
    size: int | Sequence[int],
    *,
    n_blobs: int = 8,
    sigma: float | tuple[float, float] = (0.05, 0.15),
    seed: int | None = 0,
) -> np.ndarray:
    """Sums of random isotropic Gaussian blobs of both signs, in 1-D, 2-D or 3-D.

    Each blob has a centre uniform in the domain, a width ``sigma`` (a fraction of the extent
    of each axis, so blobs on a non-square grid are round in domain units), and an amplitude of
    random sign with magnitude uniform in ``[0.3, 1]``. Coordinates are the pixel centres
    ``(i + 0.5) / size`` in ``[0, 1]``. The sum is min-max normalised per sample.

    Parameters
    ----------
    n
        Number of samples (>= 1).
    size
        Spatial size: an ``int`` (1-D) or a tuple of 1, 2 or 3 ints, each >= 2.
    n_blobs
        Blobs per sample (>= 1).
    sigma
        Blob width as a fraction of the domain: a number, or a ``(low, high)`` range sampled
        uniformly per blob; > 0.
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy (not reproducible).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, *size)``, every sample with min 0 and max 1.

    Examples
    --------
    >>> x = gaussian_blobs(2, (32, 48), seed=0)
    >>> x.shape, x.dtype
    ((2, 1, 32, 48), dtype('float32'))
    >>> gaussian_blobs(1, (8, 8, 8), n_blobs=3).shape
    (1, 1, 8, 8, 8)
    """
    n = check_int(n, "n", minimum=1)
    shape = _check_size(size, "size", ndims=(1, 2, 3))
    n_blobs = check_int(n_blobs, "n_blobs", minimum=1)
    s_lo, s_hi = _check_sigma(sigma)
    rng = np.random.default_rng(_check_seed(seed))
    d = len(shape)
    centres = rng.uniform(0.0, 1.0, size=(n, n_blobs, d))
    widths = rng.uniform(s_lo, s_hi, size=(n, n_blobs))
    amps = rng.uniform(0.3, 1.0, size=(n, n_blobs)) * rng.choice([-1.0, 1.0], size=(n, n_blobs))
    # separable: blob = prod over axes of a 1-D Gaussian profile
    factors = []
    for ax, s in enumerate(shape):
        coord = (np.arange(s) + 0.5) / s
        diff = coord[None, None, :] - centres[:, :, ax, None]
        factors.append(np.exp(-0.5 * (diff / widths[:, :, None]) ** 2))
    factors[0] = factors[0] * amps[:, :, None]
    letters = "ijk"[:d]
    subscripts = ",".join(f"nb{c}" for c in letters) + f"->n{letters}"
    field = np.einsum(subscripts, *factors, optimize=True)
    return _finish(field)


def gaussian_random_field(
    n: int, size: int | Sequence[int], *, alpha: float = 3.0, seed: int | None = 0
) -> np.ndarray:
    """Gaussian random fields with a power-law spectrum ``P(k) ∝ |k|**(-alpha)``.

    White Gaussian noise is transformed with ``numpy.fft.rfftn``, its Fourier amplitudes are
    multiplied by ``|k|**(-alpha / 2)`` (``k`` in cycles per sample, so the power follows
    ``|k|**(-alpha)``), the mean mode ``k = 0`` is set to zero, and ``numpy.fft.irfftn``
    brings it back (periodic boundaries). Larger ``alpha`` gives smoother fields; ``alpha = 0``
    is white noise. The result is min-max normalised per sample.

    Parameters
    ----------
    n
        Number of samples (>= 1).
    size
        Spatial size: an ``int`` (1-D) or a tuple of 1, 2 or 3 ints, each >= 2.
    alpha
        Spectral exponent (finite, >= 0).
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy (not reproducible).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, *size)``, every sample with min 0 and max 1.

    Examples
    --------
    >>> gaussian_random_field(4, (32, 32), alpha=3.0, seed=0).shape
    (4, 1, 32, 32)
    """
    n = check_int(n, "n", minimum=1)
    shape = _check_size(size, "size", ndims=(1, 2, 3))
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=False)
    rng = np.random.default_rng(_check_seed(seed))
    axes = tuple(range(1, len(shape) + 1))
    freqs = [np.fft.fftfreq(s) for s in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij")
    k = np.sqrt(sum(g * g for g in grids))
    amplitude = np.zeros_like(k)
    nonzero = k > 0
    amplitude[nonzero] = k[nonzero] ** (-alpha / 2.0)
    out = np.empty((n, 1, *shape), dtype=np.float32)
    # a few samples at a time keeps the float64 / complex work arrays small for big volumes;
    # the noise is drawn in order, so the result does not depend on the chunking
    chunk = max(1, _CHUNK_ELEMENTS // math.prod(shape))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        noise = rng.standard_normal((stop - start, *shape))
        field = np.fft.irfftn(np.fft.rfftn(noise, axes=axes) * amplitude, s=shape, axes=axes)
        out[start:stop] = _finish(field)
    return out


def marschner_lobb(
    size: int | Sequence[int] = 41,
    *,
    f_m: float = 6.0,
    alpha: float = 0.25,
    normalize: bool = True,
) -> np.ndarray:
    r"""The Marschner-Lobb test volume, sampled on ``[-1, 1]**3``.

    .. math::

        \rho(x, y, z) = \frac{1 - \sin(\pi z / 2) + \alpha (1 + \rho_r(\sqrt{x^2 + y^2}))}
                             {2 (1 + \alpha)},
        \qquad \rho_r(r) = \cos(2 \pi f_M \cos(\pi r / 2)),

    from S. R. Marschner and R. J. Lobb, "An evaluation of reconstruction filters for volume
    rendering", Proc. IEEE Visualization 1994. The grid is ``numpy.linspace(-1, 1, s)`` along
    each axis (both ends included); axis order is ``(x, y, z)``. Not random: there is no seed.

    Parameters
    ----------
    size
        Samples per axis: an ``int`` (a cube) or a 3-tuple, each >= 2. The classic choice is 41.
    f_m
        Frequency of the radial oscillation (finite, > 0).
    alpha
        Weight of the radial term (finite, >= 0).
    normalize
        True (default, like every generator here): min-max normalise to min 0 and max 1.
        False: the analytic values, which already lie in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(1, 1, *size)``.

    Examples
    --------
    At the centre ``rho = (1 + alpha (1 + cos(2 pi f_m))) / (2 (1 + alpha))``, which is 0.6 for
    the defaults:

    >>> v = marschner_lobb(5, normalize=False)
    >>> v.shape
    (1, 1, 5, 5, 5)
    >>> round(float(v[0, 0, 2, 2, 2]), 6)
    0.6
    """
    shape = _check_size(size, "size", ndims=(3,), int_means=3)
    f_m = check_float(f_m, "f_m", minimum=0.0, strict=True)
    alpha = check_float(alpha, "alpha", minimum=0.0, strict=False)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    x, y, z = np.meshgrid(*(np.linspace(-1.0, 1.0, s) for s in shape), indexing="ij")
    r = np.sqrt(x * x + y * y)
    rho_r = np.cos(2 * np.pi * f_m * np.cos(np.pi * r / 2))
    rho = (1.0 - np.sin(np.pi * z / 2) + alpha * (1.0 + rho_r)) / (2.0 * (1.0 + alpha))
    if normalize:
        return _finish(rho[None])
    return np.clip(rho, 0.0, 1.0).astype(np.float32)[None, None]


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------


def _make_ml(n: int, size: Any, *, seed: int | None = 0, **options: Any) -> np.ndarray:
    n = check_int(n, "n", minimum=1)
    _check_seed(seed)
    volume = marschner_lobb(size, **options)
    return np.repeat(volume, n, axis=0)


def _make_real(n: int, size: Any, *, seed: int | None = 0, **options: Any) -> np.ndarray:
    """``real_dataset`` with its dimensionality read from ``size`` (an int: 1-D)."""
    shape = _check_size(size, "size", ndims=(1, 2, 3))
    return real_dataset(len(shape), n, shape, seed=seed, **options)


_MAKERS: dict[str, Callable[..., np.ndarray]] = {
    "sinusoids": sinusoids_1d,
    "bumps": bumps_1d,
    "blobs": gaussian_blobs,
    "grf": gaussian_random_field,
    "marschner_lobb": _make_ml,
    "real": _make_real,
}


def make_dataset(
    kind: str, n: int, size: int | Sequence[int], *, seed: int | None = 0, **options: Any
) -> np.ndarray:
    """Generate a synthetic data set by name.

    Parameters
    ----------
    kind
        One of :data:`DATASET_KINDS`: ``"sinusoids"`` (:func:`sinusoids_1d`), ``"bumps"``
        (:func:`bumps_1d`), ``"blobs"`` (:func:`gaussian_blobs`), ``"grf"``
        (:func:`gaussian_random_field`), ``"marschner_lobb"`` (:func:`marschner_lobb`; not
        random, so the ``n`` samples are identical copies and ``seed`` is ignored), ``"real"``
        (:func:`dsl_explore.real_data.real_dataset`, its dimensionality the length of
        ``size``; needs the ``real`` extra).
    n
        Number of samples.
    size
        Spatial size, as the generator takes it (``"sinusoids"`` and ``"bumps"``: an int or a
        1-tuple; ``"marschner_lobb"``: an int or a 3-tuple; ``"real"``: an int for 1-D, else
        a 2- or 3-tuple).
    seed
        Seed of the generator.
    **options
        Further keyword options of the generator (e.g. ``n_extrema=`` for ``"bumps"``).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 1, *size)``, values in ``[0, 1]``.

    Examples
    --------
    >>> make_dataset("bumps", 3, 64, n_extrema=4, seed=1).shape
    (3, 1, 64)
    >>> make_dataset("grf", 2, (16, 16, 16), alpha=2.0).shape
    (2, 1, 16, 16, 16)
    >>> make_dataset("noise", 1, 8)
    Traceback (most recent call last):
    ...
    ValueError: kind must be one of 'sinusoids', 'bumps', ..., got 'noise'
    """
    check_choice(kind, "kind", DATASET_KINDS)
    return _MAKERS[kind](n, size, seed=seed, **options)


# --------------------------------------------------------------------------------------------
# user data
# --------------------------------------------------------------------------------------------


class MissingKeyError(KeyError, ValueError):
    """``key`` is not in the ``.npz`` file: a ``KeyError`` (as before) and a ``ValueError`` (a
    user error), whose message prints without the quotes ``KeyError`` adds."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _format_shape(shape: tuple[int, ...], dtype: np.dtype) -> str:
    return f"shape {shape}, {dtype}"


def _check_npy_header(fh: Any, data_bytes: int, what: str) -> None:
    """Read an ``.npy`` header from ``fh`` and check it against the ``data_bytes`` that follow
    it and against the available memory (without reading or allocating the data).

    ``what`` names the array in messages (the path, or the key and path for ``.npz``).
    """
    fmt = np.lib.format
    start = fh.tell()
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, _fortran, dtype = fmt.read_array_header_2_0(fh)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as err:
        raise ValueError(f"{what} is not a valid .npy array (bad header: {err})") from None
    header = fh.tell() - start
    if dtype.hasobject:
        return  # refused without pickle by np.load, with its own message
    declared = math.prod(shape) * dtype.itemsize
    actual = data_bytes - header
    if declared != actual:
        raise ValueError(
            f"{what} is truncated or corrupt: its header declares {_format_shape(shape, dtype)} "
            f"({declared} bytes of data), but {actual} bytes follow the header"
        )
    # load_array holds the array and its float32 result at once.
    described = f"loading {what} ({_format_shape(shape, dtype)})"
    check_allocation(declared + math.prod(shape) * 4, described)


def _read_source(source: object, key: str | None) -> np.ndarray:
    """The array ``source`` names; read from a file, it is a fresh array that may be reused."""
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if key is not None:
            raise ValueError("key is only used when source is a path to an .npz file")
        return to_numpy(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be a path to a .npy or .npz file, a numpy.ndarray or a torch.Tensor, "
            f"got {type(source).__name__}"
        )
    path = os.fspath(source)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"source must be a path ending in .npy or .npz, got {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"source file not found: {path!r}")
    if suffix == ".npy":
        if key is not None:
            raise ValueError("key is only used with .npz files, not .npy")
        with open(path, "rb") as fh:
            _check_npy_header(fh, os.path.getsize(path), repr(path))
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"cannot load {path!r} without pickle: {err}") from err
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:
        raise ValueError(
            f"{path!r} is not a valid .npz file (a zip of .npy arrays): {err}"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is not a valid .npz file (a zip of .npy arrays)")
    with archive:
        keys = list(archive.files)
        if key is None:
            if len(keys) != 1:
                raise ValueError(
                    f"{path!r} holds {len(keys)} arrays; pass key= to pick one of: "
                    + ", ".join(repr(k) for k in keys)
                )
            key = keys[0]
        elif key not in keys:
            raise MissingKeyError(
                f"key {key!r} is not in {path!r}; its arrays are: "
                + ", ".join(repr(k) for k in keys)
            )
        what = f"{key!r} in {path!r}"
        try:
            zf = archive.zip
            assert zf is not None  # open until the with block ends
            member = key if key in zf.namelist() else f"{key}.npy"
            size = zf.getinfo(member).file_size
            with zf.open(member) as fh:
                _check_npy_header(fh, size, what)
            return archive[key]
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise ValueError(f"cannot read {what}: the .npz file is corrupt ({err})") from None
        except ValueError as err:
            if "pickle" in str(err):
                raise ValueError(f"cannot load {what} without pickle: {err}") from err
            raise


def _apply_layout(a: np.ndarray, layout: str | None) -> np.ndarray:
    shape = tuple(a.shape)
    if layout is None:
        if a.ndim in (1, 2):
            layout = "field"
        elif a.ndim == 3:
            # (N, C, L) or one bare volume (D, H, W)? A volume with a single sample along its
            # second axis is not a valid field, so (N, 1, L) is unambiguous.
            if shape[1] != 1:
                raise ValueError(
                    f"a 3-axis array of shape {shape} is ambiguous: pass layout='NCL' for "
                    "(N, C, L) signals or layout='field' for one 3-D volume"
                )
            layout = "NCL"
        elif a.ndim == 4:
            layout = "NCHW"
        elif a.ndim == 5:
            layout = "NCDHW"
        else:
            raise ValueError(
                "the array must be (N, C, *spatial) with 1-3 spatial axes or a bare 1-3-D field, "
                f"so it needs 1-5 axes, got shape {shape}"
            )
    else:
        check_choice(layout, "layout", LAYOUTS)
        if a.ndim not in _LAYOUT_NDIM[layout]:
            want = " or ".join(str(d) for d in _LAYOUT_NDIM[layout])
            raise ValueError(f"layout={layout!r} needs {want} axes, got shape {shape}")
    if layout == "field":
        return a.reshape((1, 1, *shape))
    if layout == "NL":
        return a[:, None]
    return a


def load_array(
    source: str | os.PathLike[str] | ArrayLike,
    *,
    key: str | None = None,
    layout: str | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Load user data as a float32 ``(N, C, *spatial)`` array.

    Parameters
    ----------
    source
        A path to a ``.npy`` or ``.npz`` file (read with ``allow_pickle=False``), a numpy array,
        or a torch tensor.
    key
        The array to read from an ``.npz`` file; needed when it holds more than one (the error
        lists them). Only valid with ``.npz`` sources.
    layout
        How to read the axes. ``None`` infers it from the number of axes:

        - 1 or 2 axes: one bare field (a 2-D array is one 2-D field, **not** a batch of 1-D
          signals; pass ``layout="NL"`` for ``(N, L)`` signals) -> ``(1, 1, *shape)``;
        - 3 axes: ``(N, 1, L)`` signals when the second axis has size 1; otherwise a
          :class:`ValueError` asks for ``layout="NCL"`` or ``layout="field"``;
        - 4 axes: ``(N, C, H, W)``; 5 axes: ``(N, C, D, H, W)``.

        Explicit layouts: ``"NL"`` (2 axes, gets a channel axis), ``"NCL"``, ``"NCHW"``,
        ``"NCDHW"``, and ``"field"`` (a bare 1-3-D field).
    normalize
        True: min-max normalise each sample to ``[0, 1]`` (jointly over its channels; see the
        module docstring for why). False: keep the values, only cast to float32.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(N, C, *spatial)`` with 1-3 spatial axes, each of size >= 2.

    Raises
    ------
    TypeError
        For an unsupported ``source`` or a non-real dtype (complex, string, object).
    ValueError
        For an empty array, NaN or infinity, values that overflow float32, a spatial axis with
        fewer than 2 samples, a layout that does not fit, a file that is not a valid
        ``.npy``/``.npz`` (bad header, truncated, corrupt zip: the message names the file, and
        the declared shape and dtype against the actual size), or an array larger than the
        available memory (:class:`~dsl_explore._validation.InsufficientMemoryError`, checked
        from the header before anything is allocated).
    MissingKeyError
        If ``key`` is not in the ``.npz`` file; a ``KeyError`` and a ``ValueError`` both.
    FileNotFoundError
        If the path does not exist.

    Notes
    -----
    Peak extra memory: the array as read (a float32 file is then normalised in place: 1x the
    file), plus the float32 result for other dtypes or array sources, plus O(4 Mi) elements of
    temporaries.

    Examples
    --------
    >>> import numpy as np
    >>> load_array(np.arange(12.0).reshape(3, 4)).shape
    (1, 1, 3, 4)
    >>> load_array(np.arange(12.0).reshape(3, 4), layout="NL").shape
    (3, 1, 4)
    >>> load_array(np.array([[1, 2], [3, 4]]), normalize=False)
    array([[[[1., 2.],
             [3., 4.]]]], dtype=float32)
    """
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, got {type(key).__name__}")
    from_file = not isinstance(source, (np.ndarray, torch.Tensor))
    a = np.asarray(_read_source(source, key))
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"the data must have a real numeric (bool, integer or float) dtype, got {a.dtype}"
        )
    if a.size == 0:
        raise ValueError(f"the data must not be empty, got shape {tuple(a.shape)}")
    check_finite(a, "the data")
    a = _apply_layout(a, layout)
    spatial = a.shape[2:]
    if any(s < 2 for s in spatial):
        raise ValueError(
            f"every spatial axis needs at least 2 samples, got spatial shape {tuple(spatial)} "
            f"in (N, C, *spatial) = {tuple(a.shape)}"
        )
    if normalize:
        return _finish_user(a, reuse=from_file)
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=np.float32)
    check_finite(out, "the data cast to float32 (values beyond the float32 range)")
    return out


def _finish_user(a: np.ndarray, *, reuse: bool = False) -> np.ndarray:
    """``normalize(a.astype(float64))`` cast to float32, written slab by slab (bit-identical; no
    full-size float64 temporaries). With ``reuse`` (``a`` was just read from a file, nobody
    else holds it) a C-contiguous float32 ``a`` is normalised in place: each slab is read into
    a float64 temporary before it is overwritten."""
    if reuse and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable:
        out = a
    else:
        out = np.empty(a.shape, dtype=np.float32)
    _normalize_into(a, out, per_sample=True)
    return out


# --------------------------------------------------------------------------------------------
# torch dataset
# --------------------------------------------------------------------------------------------


def _check_batch(data: object, name: str) -> None:
    check_array(data, name)
    shape = tuple(data.shape)  # type: ignore[attr-defined]
    if not 3 <= len(shape) <= 5:
        raise ValueError(
            f"{name} must be (N, C, *spatial) with 1-3 spatial axes (3-5 axes), got shape {shape}"
        )


class FieldDataset(Dataset):
    """A map-style torch dataset over an ``(N, C, *spatial)`` array.

    Parameters
    ----------
    data
        numpy array or torch tensor of shape ``(N, C, *spatial)`` with 1-3 spatial axes and a
        real dtype, e.g. from a generator or :func:`load_array`. It is converted to a float32
        CPU tensor once (sharing memory with a float32 numpy array); no normalisation.

    Examples
    --------
    >>> ds = FieldDataset(bumps_1d(10, 64))
    >>> len(ds), tuple(ds[0].shape), ds[0].dtype
    (10, (1, 64), torch.float32)
    >>> ds.spatial_dims, ds.spatial_shape
    (1, (64,))
    """

    def __init__(self, data: ArrayLike) -> None:
        _check_batch(data, "data")
        check_real(data, "data")
        check_finite(data, "data")
        if isinstance(data, torch.Tensor):
            tensor = data.detach().to(device="cpu", dtype=torch.float32)
        else:
            tensor = torch.as_tensor(np.ascontiguousarray(data, dtype=np.float32))
        if tensor.shape[0] == 0:
            raise ValueError(f"data must hold at least one sample, got shape {tuple(tensor.shape)}")
        self.data: torch.Tensor = tensor

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index]

    @property
    def spatial_dims(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self.data.ndim - 2

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Sizes of the spatial axes."""
        return tuple(self.data.shape[2:])

    @property
    def channels(self) -> int:
        """Number of channels ``C``."""
        return int(self.data.shape[1])


def split(
    dataset_array: ArrayLike, *, val_fraction: float = 0.2, seed: int | None = 0
) -> tuple[ArrayLike, ArrayLike]:
    """Split samples (axis 0) into held-out train and validation sets.

    ``round(N * val_fraction)`` samples, but at least 1 when ``val_fraction > 0`` and at most
    ``N - 1``, are drawn for validation by a seeded permutation; both parts keep the original
    order of their samples. The two parts are disjoint and together hold every sample.

    Parameters
    ----------
    dataset_array
        numpy array or torch tensor with samples on axis 0 (e.g. ``(N, C, *spatial)``).
    val_fraction
        Fraction in ``[0, 1)`` held out for validation; 0 gives an empty validation set.
    seed
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    (train, val)
        Arrays of the input's kind.

    Examples
    --------
    >>> import numpy as np
    >>> train, val = split(np.arange(10)[:, None], val_fraction=0.3, seed=0)
    >>> train.shape, val.shape
    ((7, 1), (3, 1))
    >>> sorted(np.concatenate([train, val])[:, 0].tolist()) == list(range(10))
    True
    """
    check_array(dataset_array, "dataset_array")
    if dataset_array.ndim == 0:
        raise ValueError("dataset_array must have a sample axis (axis 0), got a 0-d array")
    frac = check_float(val_fraction, "val_fraction", minimum=0.0, strict=False)
    if frac >= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n = int(dataset_array.shape[0])
    if frac == 0.0:
        n_val = 0
    else:
        if n < 2:
            raise ValueError(f"dataset_array needs at least 2 samples to hold some out, got {n}")
        n_val = min(max(1, round(n * frac)), n - 1)
    rng = np.random.default_rng(_check_seed(seed))
    perm = rng.permutation(n)
    val_idx = np.sort(perm[:n_val])
    train_idx = np.sort(perm[n_val:])
    if isinstance(dataset_array, torch.Tensor):
        dev = dataset_array.device
        return (
            dataset_array[torch.as_tensor(train_idx, device=dev)],
            dataset_array[torch.as_tensor(val_idx, dtype=torch.long, device=dev)],
        )
    return dataset_array[train_idx], dataset_array[val_idx]
