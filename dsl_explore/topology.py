"""Topology metrics of scalar fields through gudhi's cubical complexes.

A 1-3D scalar field ``f`` sampled on a grid is turned into a filtered cubical complex, and its
sublevel sets ``{f <= t}`` are compared through their Betti numbers ``beta_q(f, t)`` (the number of
connected components, ``q = 0``; of independent loops, ``q = 1``; of enclosed cavities, ``q = 2``)
and through their persistence diagrams. These are the quantities the Directional Sign Loss (DSL)
is a differentiable proxy for, so they measure how well a reconstruction preserves the topology of
its target.

Constructions
-------------
``construction="vertices"`` (the default, the *V-construction*)
    ``gudhi.CubicalComplex(vertices=arr)``: the values sit on the grid vertices, an edge joins two
    axis neighbours, and every higher cell (square, cube) takes the maximum of its vertices. The
    sublevel set ``{f <= t}`` is then connected through axis neighbours only (4-connectivity in
    2D, 6-connectivity in 3D), so its ``H0`` matches the axis-aligned finite differences DSL looks
    at: on tie-free data the ``H0`` intervals are born exactly at the axis-wise minima of
    :func:`dsl_explore.critical.critical_points`. With ties they are fewer: a basin born and
    merged at one value (the minimum at index 1 of ``[2, 1, 1, 0]``) is a pair of zero
    persistence, which gudhi leaves out, while simulation of simplicity counts it as a minimum.
``construction="top_dimensional_cells"`` (the *T-construction*)
    ``gudhi.CubicalComplex(top_dimensional_cells=arr)``: every value is a pixel / voxel (a
    top-dimensional cell) and lower cells take the minimum of the cells around them, so two low
    pixels that share only a corner are connected (8-connectivity in 2D, 26-connectivity in 3D).

Homology dimensions ``q = 0, ..., d-1`` are reported for a ``d``-dimensional field; ``H_d`` of a
sublevel set of a grid is always zero.

The Fortran-order trap
----------------------
gudhi also accepts a *flat* array plus ``dimensions=``, but reads that flat buffer in Fortran
(column-major) order. Passing ``arr.ravel()`` of a C-ordered (row-major) numpy array with
``dimensions=arr.shape`` therefore silently computes the topology of *another* array,
``arr.ravel().reshape(arr.shape, order="F")``. For a square array that is just the transpose,
which has the same topology, so square test cases hide the bug; for a non-square array it is a
scrambled field with unrelated topology (torch-topological shipped this bug).
This module never does that: it always passes the shaped, C-contiguous float64 array, whose
shape gudhi reads directly.

References
----------
.. [1] The GUDHI Project, "Cubical complex" reference manual,
   https://gudhi.inria.fr/python/latest/cubical_complex_user.html
.. [2] H. Edelsbrunner and J. Harer, *Computational Topology: An Introduction*,
   American Mathematical Society, 2010 (persistent homology, Betti numbers, stability of
   bottleneck and Wasserstein distances).
.. [3] T. Dam, S. Agarwal and G. Gopalakrishnan, "Directional Sign Loss: A Topology-Preserving
   Loss Function that Approximates the Sign of Finite Differences", arXiv:2504.04202, 2025.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gudhi
import numpy as np
import torch

from dsl_explore._validation import (
    ArrayLike,
    check_array,
    check_choice,
    check_finite,
    check_pair,
    check_real,
    resolve_dims,
    to_numpy,
)

__all__ = [
    "BettiError",
    "betti_curve",
    "betti_error",
    "diagram_distance",
    "persistence_diagrams",
]

Construction = Literal["vertices", "top_dimensional_cells"]
_CONSTRUCTIONS = ("vertices", "top_dimensional_cells")
_METRICS = ("bottleneck", "wasserstein")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _fields(
    x: object, name: str, dims: int | Sequence[int] | None
) -> tuple[np.ndarray, tuple[int, ...], int]:
    """Validate ``x`` and return ``(fields, batch_shape, d)``.

    ``fields`` has shape ``(N, *spatial)`` (float64, C-contiguous), with ``N = prod(batch_shape)``;
    the batch axes keep their order, the spatial axes follow the order of ``dims``.
    """
    check_array(x, name)
    check_real(x, name)  # type: ignore[arg-type]
    check_finite(x, name)  # type: ignore[arg-type]
    arr = to_numpy(x)  # type: ignore[arg-type]
    axes = resolve_dims(arr.ndim, dims, default="all", name="dims")
    d = len(axes)
    batch_axes = [i for i in range(arr.ndim) if i not in axes]
    arr = np.transpose(arr, (*batch_axes, *axes))
    batch_shape = tuple(arr.shape[: arr.ndim - d])
    spatial = tuple(arr.shape[arr.ndim - d :])
    fields = np.ascontiguousarray(arr, dtype=np.float64).reshape(
        (math.prod(batch_shape), *spatial)
    )
    return fields, batch_shape, d


def _complex(field: np.ndarray, construction: str) -> gudhi.CubicalComplex:
    """A cubical complex of one non-empty field, persistence computed.

    The shaped C-contiguous array is passed (never a flat buffer with ``dimensions=``, which gudhi
    would read in Fortran order).
    """
    field = np.ascontiguousarray(field, dtype=np.float64)
    if construction == "vertices":
        cplx = gudhi.CubicalComplex(vertices=field)
    else:
        cplx = gudhi.CubicalComplex(top_dimensional_cells=field)
    cplx.compute_persistence()
    return cplx


def _betti_one(field: np.ndarray, thresholds: np.ndarray, d: int, construction: str) -> np.ndarray:
    """``(T, d)`` int64 Betti numbers of ``{field <= t}`` for one field."""
    out = np.zeros((thresholds.shape[0], d), dtype=np.int64)
    if field.size == 0:  # no cells: every sublevel set is empty
        return out
    cplx = _complex(field, construction)
    for i, t in enumerate(thresholds.tolist()):
        betti = list(cplx.persistent_betti_numbers(float(t), float(t)))[:d]
        out[i, : len(betti)] = betti
    return out


def _diagrams_one(field: np.ndarray, d: int, construction: str) -> list[np.ndarray]:
    """Persistence diagrams ``q = 0..d-1`` of one field, each a float64 ``(m, 2)`` array."""
    if field.size == 0:
        return [np.zeros((0, 2), dtype=np.float64) for _ in range(d)]
    cplx = _complex(field, construction)
    return [
        np.asarray(cplx.persistence_intervals_in_dimension(q), dtype=np.float64).reshape(-1, 2)
        for q in range(d)
    ]


def _nest(flat: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """Turn a flat row-major list into nested lists of the given (non-empty) shape."""
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _check_threshold_values(thresholds: object) -> np.ndarray:
    """Explicit thresholds: a non-empty 1D sequence of finite real numbers, as float64."""
    if isinstance(thresholds, torch.Tensor):
        thresholds = to_numpy(thresholds)
    if isinstance(thresholds, (str, bytes)) or isinstance(thresholds, numbers.Number):
        raise TypeError(
            f"thresholds must be a 1D sequence or array of finite real numbers, "
            f"got {type(thresholds).__name__}"
        )
    try:
        arr = np.asarray(thresholds)
    except (ValueError, TypeError) as exc:
        raise TypeError(
            f"thresholds must be a 1D sequence or array of finite real numbers, got {thresholds!r}"
        ) from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"thresholds must hold real numbers, got an array of dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise ValueError(f"thresholds must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("thresholds must hold at least one value, got an empty sequence")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("thresholds must be finite, but they hold NaN or infinity")
    return arr


def _check_construction(construction: object) -> str:
    """The validated construction name (a new name: the argument is typed ``Construction``)."""
    return check_choice(construction, "construction", _CONSTRUCTIONS)


# --------------------------------------------------------------------------------------------
# Betti curves
# --------------------------------------------------------------------------------------------


def betti_curve(
    x: ArrayLike,
    *,
    thresholds: Sequence[float] | np.ndarray | torch.Tensor,
    dims: int | Sequence[int] | None = None,
    construction: Construction = "vertices",
) -> np.ndarray:
    r"""Betti numbers of the sublevel sets ``{x <= t}`` at the given thresholds.

    For each threshold ``t`` and homology dimension ``q = 0, ..., d-1`` of a ``d``-dimensional
    field,

    .. math:: \beta_q(x, t) = \#\{\text{persistence pairs } (b, e) \text{ of } H_q :
              b \le t < e\},

    i.e. the rank of ``H_q`` of the cubical sublevel complex ``{x <= t}``, computed with one call
    of ``compute_persistence`` and one of ``persistent_betti_numbers(t, t)`` per threshold
    (``betti_numbers()`` alone would give the whole complex, which is contractible).

    Parameters
    ----------
    x
        One field, a 1-3D numpy array or torch tensor (``dims=None``), or a batch whose spatial
        axes ``dims`` names. Real dtype (bool, integer, float), finite values. Tensors are
        detached and copied to the host.
    thresholds
        The levels ``t``: a non-empty 1D sequence, numpy array or tensor of finite numbers,
        shared by every sample of a batch.
    dims
        The spatial axes (1 to 3 of them); ``None`` means ``x`` is a bare field and every axis is
        spatial. The other axes are batch axes and lead the result, in their order.
    construction
        ``"vertices"`` (V-construction, axis-neighbour connectivity) or
        ``"top_dimensional_cells"`` (T-construction, 8/26-neighbour connectivity); see the
        module docstring.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(*batch, len(thresholds), d)``: entry ``[..., i, q]`` is
        ``beta_q(x, thresholds[i])``. An empty field gives zeros.

    Raises
    ------
    TypeError
        If ``x`` is not an array or tensor or has a complex dtype, if ``dims`` is not an int or a
        sequence of ints, or if ``thresholds`` is not a sequence of real numbers.
    ValueError
        If ``x`` holds NaN or infinity, if ``dims`` is invalid (``None`` needs 1-3 axes), if
        ``thresholds`` is not 1D, is empty or is not finite, or if ``construction`` is unknown.

    References
    ----------
    .. [1] GUDHI cubical complex manual, https://gudhi.inria.fr/python/latest/cubical_complex_user.html
    .. [2] H. Edelsbrunner and J. Harer, *Computational Topology: An Introduction*, AMS, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 2.0, 1.0, 3.0, 0.5])
    >>> betti_curve(x, thresholds=[-1.0, 0.0, 1.0, 2.5, 3.0])[:, 0]
    array([0, 1, 3, 2, 1])
    >>> ring = np.ones((5, 5)); ring[1:4, 1:4] = 0.0; ring[2, 2] = 1.0
    >>> betti_curve(ring, thresholds=[0.5])  # one component, one loop
    array([[1, 1]])
    """
    cons = _check_construction(construction)
    fields, batch_shape, d = _fields(x, "x", dims)
    values = _check_threshold_values(thresholds)
    out = np.zeros((fields.shape[0], values.shape[0], d), dtype=np.int64)
    for n in range(fields.shape[0]):
        out[n] = _betti_one(fields[n], values, d, cons)
    return out.reshape((*batch_shape, values.shape[0], d))


# --------------------------------------------------------------------------------------------
# Betti error
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BettiError:
    r"""Betti-number error of a reconstruction ``x`` against a target ``y``.

    With ``T`` thresholds ``t_1..t_T`` and homology dimensions ``q = 0..d-1``:

    .. math::

        \mathrm{per\_dim}_q &= \frac{1}{T} \sum_{i=1}^{T} |\beta_q(x, t_i) - \beta_q(y, t_i)|, \\
        \mathrm{total} &= \sum_q \mathrm{per\_dim}_q, \\
        \mathrm{relative} &= \mathrm{total} \Big/ \frac{1}{T} \sum_{i=1}^{T} \sum_q \beta_q(y, t_i).

    When the target's mean total Betti number is 0 (an empty target, or thresholds all below
    its minimum), ``relative`` is defined as ``0.0`` if ``total == 0`` and ``inf`` otherwise, so
    it never holds NaN.

    (``eq=False``: the fields are arrays, compare them with :func:`numpy.array_equal`.)

    Attributes
    ----------
    per_dim
        float64, shape ``(d,)`` for one field or ``(*batch, d)`` for a batch.
    total
        ``float`` for one field, float64 array of shape ``batch`` for a batch.
    relative
        Like ``total``.
    thresholds
        The thresholds used, float64, shape ``(T,)`` for one field, ``(*batch, T)`` for a batch.
    """

    per_dim: np.ndarray
    total: float | np.ndarray
    relative: float | np.ndarray
    thresholds: np.ndarray


def _quantile_thresholds(field: np.ndarray, count: int) -> np.ndarray:
    """``count`` quantiles of ``field`` at probabilities ``(i + 0.5) / count``."""
    if field.size == 0:
        return np.zeros(count, dtype=np.float64)
    probs = (np.arange(count, dtype=np.float64) + 0.5) / count
    return np.asarray(np.quantile(field.reshape(-1), probs), dtype=np.float64)


def betti_error(
    x: ArrayLike,
    y: ArrayLike,
    *,
    thresholds: int | Sequence[float] | np.ndarray | torch.Tensor = 16,
    dims: int | Sequence[int] | None = None,
    construction: Construction = "vertices",
) -> BettiError:
    r"""Mean absolute difference of the Betti curves of a reconstruction and its target.

    .. math::

        E_q(x, y) = \frac{1}{T} \sum_{i=1}^{T} |\beta_q(x, t_i) - \beta_q(y, t_i)|,
        \qquad q = 0, \dots, d-1,

    where ``beta_q(f, t)`` is the ``q``-th Betti number of the sublevel set ``{f <= t}`` (see
    :func:`betti_curve`). Both ``x`` and ``y`` are evaluated at the *target's* thresholds.

    Parameters
    ----------
    x
        The reconstruction: one 1-3D field or a batch (see ``dims``); numpy array or torch tensor,
        real dtype, finite.
    y
        The target, same kind (numpy / torch), shape and device as ``x``.
    thresholds
        An ``int`` count ``n >= 1``: the thresholds are the quantiles of the target's values (per
        sample) at probabilities ``(i + 0.5) / n``, ``i = 0..n-1`` (numpy's default linear
        interpolation), so they are spread evenly over the target's value distribution and avoid
        its extremes. Or explicit values: a non-empty 1D sequence / array / tensor of finite
        numbers, shared by every sample. An empty target has thresholds ``0.0``.
    dims
        The spatial axes (1 to 3); ``None`` means bare fields. Other axes are batch axes.
    construction
        ``"vertices"`` (V-construction) or ``"top_dimensional_cells"`` (T-construction).

    Returns
    -------
    BettiError
        ``per_dim``, ``total``, ``relative`` and ``thresholds``; scalars / ``(d,)`` arrays for one
        field, with the batch shape leading for a batch. See :class:`BettiError` for the
        formulas and the zero-denominator rule of ``relative``.

    Raises
    ------
    TypeError
        If ``x`` or ``y`` is not an array or tensor, they differ in kind, have a complex dtype, or
        ``thresholds`` is neither an int nor a sequence of real numbers (a bool is rejected).
    ValueError
        If the shapes or devices differ, values are not finite, ``dims`` is invalid, the count is
        < 1, explicit thresholds are not a finite non-empty 1D sequence, or ``construction`` is
        unknown.

    References
    ----------
    .. [1] GUDHI cubical complex manual, https://gudhi.inria.fr/python/latest/cubical_complex_user.html
    .. [2] H. Edelsbrunner and J. Harer, *Computational Topology: An Introduction*, AMS, 2010.
    .. [3] T. Dam, S. Agarwal, G. Gopalakrishnan, "Directional Sign Loss", arXiv:2504.04202.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 2.0, 0.0, 2.0, 0.0])  # three basins
    >>> x = np.array([0.0, 0.0, 0.0, 2.0, 0.0])  # two basins
    >>> err = betti_error(x, y, thresholds=[1.0])
    >>> err.per_dim, err.total, err.relative
    (array([1.]), 1.0, 0.333...)
    >>> betti_error(y, y).total
    0.0
    """
    check_pair(x, y, names=("x", "y"))
    cons = _check_construction(construction)
    count: int | None = None  # None: explicit values
    values = np.zeros(0, dtype=np.float64)
    if isinstance(thresholds, bool):
        raise TypeError("thresholds must be an int count or a 1D sequence of numbers, got a bool")
    if isinstance(thresholds, numbers.Integral):
        count = int(thresholds)
        if count < 1:
            raise ValueError(f"thresholds (a count) must be a positive int, got {count}")
    elif isinstance(thresholds, numbers.Real):
        raise TypeError(
            f"thresholds must be an int count or a 1D sequence of numbers, got the scalar "
            f"{thresholds!r}; wrap a single level in a list"
        )
    else:
        values = _check_threshold_values(thresholds)
    fx, batch_shape, d = _fields(x, "x", dims)
    fy, _, _ = _fields(y, "y", dims)

    n_samples = fx.shape[0]
    n_thr = values.shape[0] if count is None else count
    used = np.zeros((n_samples, n_thr), dtype=np.float64)
    per_dim = np.zeros((n_samples, d), dtype=np.float64)
    target_mean = np.zeros(n_samples, dtype=np.float64)
    for n in range(n_samples):
        thr = values if count is None else _quantile_thresholds(fy[n], count)
        used[n] = thr
        bx = _betti_one(fx[n], thr, d, cons)
        by = _betti_one(fy[n], thr, d, cons)
        per_dim[n] = np.abs(bx - by).mean(axis=0)
        target_mean[n] = by.sum(axis=1).mean()
    total = per_dim.sum(axis=1)
    safe = np.where(target_mean > 0, target_mean, 1.0)
    relative = np.where(
        target_mean > 0, total / safe, np.where(total > 0, np.inf, 0.0)
    )
    if batch_shape == ():
        return BettiError(
            per_dim=per_dim[0],
            total=float(total[0]),
            relative=float(relative[0]),
            thresholds=used[0],
        )
    return BettiError(
        per_dim=per_dim.reshape((*batch_shape, d)),
        total=total.reshape(batch_shape),
        relative=relative.reshape(batch_shape),
        thresholds=used.reshape((*batch_shape, n_thr)),
    )


# --------------------------------------------------------------------------------------------
# persistence diagrams and their distances
# --------------------------------------------------------------------------------------------


def persistence_diagrams(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    construction: Construction = "vertices",
) -> list[Any]:
    """Sublevel-set persistence diagrams of a field, one per homology dimension.

    A point ``(b, e)`` of the ``H_q`` diagram is a ``q``-dimensional class born in ``{x <= b}``
    and dying (merging into an older class / being filled) in ``{x <= e}``; ``e = inf`` marks an
    essential class (for a non-empty field only the ``H0`` class of the global minimum, since the
    whole grid complex is contractible). Pairs of zero persistence are left out (with ties a
    component can be born and merged at one value: ``[2, 1, 1, 0]`` has one ``H0`` point,
    ``(0, inf)``, for two minima).

    Parameters
    ----------
    x
        One 1-3D field or a batch (see ``dims``); numpy array or torch tensor, real, finite.
    dims
        The spatial axes (1 to 3); ``None`` means a bare field. Other axes are batch axes.
    construction
        ``"vertices"`` (V-construction) or ``"top_dimensional_cells"`` (T-construction).

    Returns
    -------
    list
        For one field: a list of ``d`` float64 arrays, entry ``q`` of shape ``(m_q, 2)`` holding
        ``(birth, death)`` rows (``death`` may be ``inf``). For a batch: nested lists mirroring
        the batch shape, ``result[i][j]...`` being the list of ``d`` diagrams of sample
        ``(i, j, ...)`` (a batch axis of length 0 gives an empty list).

    Raises
    ------
    TypeError
        If ``x`` is not an array or tensor, or has a complex dtype, or ``dims`` is malformed.
    ValueError
        If ``x`` is not finite, ``dims`` is invalid, or ``construction`` is unknown.

    References
    ----------
    .. [1] GUDHI cubical complex manual, https://gudhi.inria.fr/python/latest/cubical_complex_user.html
    .. [2] H. Edelsbrunner and J. Harer, *Computational Topology: An Introduction*, AMS, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> h0, = persistence_diagrams(np.array([0.0, 5.0, 1.0, 3.0, 2.0]))
    >>> h0[np.argsort(h0[:, 0])]
    array([[ 0., inf],
           [ 1.,  5.],
           [ 2.,  3.]])
    """
    cons = _check_construction(construction)
    fields, batch_shape, d = _fields(x, "x", dims)
    flat = [_diagrams_one(fields[n], d, cons) for n in range(fields.shape[0])]
    if batch_shape == ():
        return flat[0]
    if 0 in batch_shape:
        return []
    return _nest(flat, batch_shape)


def _check_order(order: object) -> float:
    if isinstance(order, bool) or not isinstance(order, numbers.Real):
        raise TypeError(f"order must be a real number >= 1, got {type(order).__name__}")
    value = float(order)
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"order must be finite and >= 1, got {order!r}")
    return value


def _wasserstein(a: np.ndarray, b: np.ndarray, order: float) -> float:
    """Wasserstein distance of two diagrams (``internal_p=inf``, essential parts kept).

    Identical diagrams give exactly 0 (POT may return a denormal instead). When neither diagram
    has a finite point, POT would be handed a transport problem of zero mass (it warns and
    divides by zero), so the essential points ``(b, inf)`` -- the only kind a sublevel
    filtration of finite values has -- are matched directly, by sorted birth as gudhi itself
    does: the cost is ``(sum |b_i - b'_i|^order)^(1/order)``, or ``inf`` for different counts.
    """
    if np.array_equal(a, b):
        return 0.0
    births_only = all(
        np.isfinite(dg[:, 0]).all() and np.isposinf(dg[:, 1]).all() for dg in (a, b)
    )
    if births_only:  # no finite point at all, only essential points (b, inf)
        if a.shape[0] != b.shape[0]:
            return math.inf
        gaps = np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0]))
        return float(np.sum(gaps**order) ** (1.0 / order))
    from gudhi.wasserstein import wasserstein_distance  # lazy: pulls in POT

    return float(
        wasserstein_distance(a, b, order=order, internal_p=np.inf, keep_essential_parts=True)
    )


def diagram_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    metric: Literal["bottleneck", "wasserstein"] = "bottleneck",
    order: float = 1.0,
    dimension: int | None = None,
    dims: int | Sequence[int] | None = None,
    construction: Construction = "vertices",
) -> float | np.ndarray:
    r"""Bottleneck or Wasserstein distance between the persistence diagrams of two fields.

    Per homology dimension ``q``, with ``D_q(x)`` the ``H_q`` diagram of ``x`` (see
    :func:`persistence_diagrams`), the ground distance between points is the
    :math:`\ell^\infty` norm (``internal_p=inf``) and points may be matched to the diagonal:

    .. math::

        d_B^{(q)} = \inf_{\gamma} \sup_{p} \|p - \gamma(p)\|_\infty, \qquad
        W^{(q)}_r = \Big(\inf_{\gamma} \sum_{p} \|p - \gamma(p)\|_\infty^r\Big)^{1/r},

    computed with ``gudhi.bottleneck_distance`` (exact) and
    ``gudhi.wasserstein.wasserstein_distance`` (POT, ``keep_essential_parts=True``: points at
    infinity are matched among themselves, and a different number of them gives ``inf``).

    ``dimension=None`` treats the ``d`` diagrams as one diagram in which points of different
    dimensions are never matched: the bottleneck distance is :math:`\max_q d_B^{(q)}` and the
    Wasserstein distance is :math:`(\sum_q (W^{(q)}_r)^r)^{1/r}`. An int ``dimension`` gives that
    ``q`` only.

    Parameters
    ----------
    x, y
        Two fields or batches of one kind (numpy / torch), shape and device; real, finite.
    metric
        ``"bottleneck"`` or ``"wasserstein"``.
    order
        The Wasserstein exponent ``r >= 1`` (finite); checked but unused for the bottleneck
        distance.
    dimension
        ``None`` (all dimensions combined) or one homology dimension ``0 <= q < d``.
    dims
        The spatial axes (1 to 3); ``None`` means bare fields. Other axes are batch axes.
    construction
        ``"vertices"`` (V-construction) or ``"top_dimensional_cells"`` (T-construction).

    Returns
    -------
    float or numpy.ndarray
        A float for one pair of fields, a float64 array of the batch shape for batches.

    Raises
    ------
    TypeError
        If the inputs are not arrays of one kind, have a complex dtype, or ``order`` /
        ``dimension`` have the wrong type (a bool is rejected).
    ValueError
        If shapes / devices differ, values are not finite, ``dims`` is invalid, ``metric`` or
        ``construction`` is unknown, ``order`` is not finite and >= 1, or ``dimension`` is
        outside ``0..d-1``.

    References
    ----------
    .. [1] GUDHI bottleneck and Wasserstein distance manuals,
       https://gudhi.inria.fr/python/latest/bottleneck_distance_user.html and
       https://gudhi.inria.fr/python/latest/wasserstein_distance_user.html
    .. [2] H. Edelsbrunner and J. Harer, *Computational Topology: An Introduction*, AMS, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 5.0, 1.0, 3.0, 2.0])
    >>> x = np.array([0.0, 5.0, 1.0, 3.0, 3.0])  # the basin (2, 3) disappears
    >>> diagram_distance(x, y)  # matched to the diagonal: (3 - 2) / 2
    0.5
    >>> diagram_distance(x, y, metric="wasserstein", order=2)
    0.5
    """
    check_pair(x, y, names=("x", "y"))
    metric_name = check_choice(metric, "metric", _METRICS)
    cons = _check_construction(construction)
    r = _check_order(order)
    fx, batch_shape, d = _fields(x, "x", dims)
    fy, _, _ = _fields(y, "y", dims)
    if dimension is not None:
        if isinstance(dimension, bool) or not isinstance(dimension, numbers.Integral):
            raise TypeError(f"dimension must be None or an int, got {type(dimension).__name__}")
        if not 0 <= int(dimension) < d:
            raise ValueError(
                f"dimension must be None or a homology dimension in 0..{d - 1} for a "
                f"{d}-dimensional field, got {dimension}"
            )
    qs = range(d) if dimension is None else (int(dimension),)

    if metric_name == "wasserstein":

        def one(a: np.ndarray, b: np.ndarray) -> float:
            return _wasserstein(a, b, r)
    else:

        def one(a: np.ndarray, b: np.ndarray) -> float:
            if np.array_equal(a, b):
                return 0.0
            return float(gudhi.bottleneck_distance(a, b))

    out = np.zeros(fx.shape[0], dtype=np.float64)
    for n in range(fx.shape[0]):
        dx = _diagrams_one(fx[n], d, cons)
        dy = _diagrams_one(fy[n], d, cons)
        per_q = np.array([one(dx[q], dy[q]) for q in qs], dtype=np.float64)
        if metric_name == "bottleneck":
            out[n] = per_q.max()
        else:
            out[n] = float(np.sum(per_q**r) ** (1.0 / r))
    if batch_shape == ():
        return float(out[0])
    return out.reshape(batch_shape)
