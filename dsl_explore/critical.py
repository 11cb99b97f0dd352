"""Critical points of sampled scalar fields on a regular grid.

Two classifications are offered, both made exact on data with ties by *simulation of
simplicity* (SoS): samples are compared by the pair ``(value, flat C-order index)``
lexicographically, so no two samples are ever equal.

``method="axis"``
    A vertex is a minimum (maximum) along an axis if it is lower (higher) than its one or two
    neighbours along that axis. It is a MINIMUM if it is a minimum along every spatial axis, a
    MAXIMUM if it is a maximum along every one, a SADDLE if it is a minimum along one axis and a
    maximum along another, and REGULAR otherwise. Its MINIMUM labels are exactly the births of
    the dimension-0 persistence pairs of the lower-star filtration of the cubical
    (vertex-valued) complex of the grid *ordered by SoS*, i.e. of
    ``gudhi.CubicalComplex(vertices=r)`` with ``r`` the SoS rank of ``x`` (MAXIMUM: the same for
    ``-r``). With ``x`` itself, gudhi drops the pairs whose birth and death values are equal:
    ``#MINIMUM == #(H0 intervals of x) + #(zero-persistence pairs of the SoS order)``, and the
    last term is 0 on tie-free data.

``method="pl"``
    The piecewise-linear classification of Banchoff, as used by the Topology ToolKit (TTK): the
    link of a vertex is split into its lower and upper parts and their connected components are
    counted. ``triangulation="kuhn"`` (the default) is the Kuhn (Freudenthal) triangulation whose
    diagonals run along the offsets ``(+1, +1)`` / ``(-1, -1)`` (``(+1, +1, +1)`` in 3D);
    ``triangulation="ttk"`` is the Kuhn one mirrored along the last spatial axis of length > 1
    (2D diagonals ``(+1, -1)`` / ``(-1, +1)``), the orientation of TTK's implicit triangulation.

The computation runs in torch on the input's device (numpy input is wrapped without a copy and
computed on the CPU); there is no Python loop over vertices.
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import torch

from dsl_explore._validation import (
    ArrayLike,
    as_ordered_tensor,
    check_array,
    check_choice,
    check_finite,
    check_pair,
    check_real,
    is_torch,
    resolve_dims,
    to_numpy,
)

__all__ = [
    "METHODS",
    "TRIANGULATIONS",
    "CriticalMismatch",
    "CriticalType",
    "count_critical_points",
    "critical_points",
    "mismatched_critical_points",
]

METHODS: tuple[str, ...] = ("axis", "pl")
"""The classifications :func:`critical_points` knows."""

TRIANGULATIONS: tuple[str, ...] = ("kuhn", "ttk")
"""The grid triangulations ``method="pl"`` knows (see :func:`critical_points`)."""


class CriticalType(enum.IntEnum):
    """Label codes of :func:`critical_points` (stored as ``int8``).

    ``SADDLE`` is any saddle for ``method="axis"`` and in 1D/2D; in 3D with ``method="pl"`` it is
    a 1-saddle (it joins components of the sub-level set), ``SADDLE2`` a 2-saddle (it joins
    components of the super-level set) and ``DEGENERATE`` a vertex that is both at once (its
    lower and its upper link each have 2+ components; TTK's "degenerate" type), to be counted
    as a 1-saddle *and* a 2-saddle (``return_multiplicity="split"`` gives both multiplicities).
    """

    REGULAR = 0
    MINIMUM = 1
    MAXIMUM = 2
    SADDLE = 3
    SADDLE2 = 4
    DEGENERATE = 5


Multiplicity = bool | Literal["split"]
"""The values of ``return_multiplicity``."""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_multiplicity(value: object) -> bool | str:
    if isinstance(value, str) and value == "split":
        return "split"
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"return_multiplicity must be a bool or 'split', got {value!r}")
    return bool(value)


def _validate(x: object, name: str) -> None:
    check_array(x, name)
    check_real(x, name)  # type: ignore[arg-type]
    check_finite(x, name)  # type: ignore[arg-type]


def _shift(
    ndim: int, dims: Sequence[int], offset: Sequence[int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Index tuples ``(centre, neighbour)`` pairing each vertex with its neighbour at ``offset``."""
    centre: list[slice] = [slice(None)] * ndim
    neighbour: list[slice] = [slice(None)] * ndim
    for d, o in zip(dims, offset, strict=True):
        if o == 1:
            centre[d], neighbour[d] = slice(0, -1), slice(1, None)
        elif o == -1:
            centre[d], neighbour[d] = slice(1, None), slice(0, -1)
    return tuple(centre), tuple(neighbour)


def _axis_extrema(t: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``(is_min, is_max)`` along axis ``d`` (an axis of length >= 2) under SoS."""
    is_min = torch.ones(t.shape, dtype=torch.bool, device=t.device)
    is_max = torch.ones(t.shape, dtype=torch.bool, device=t.device)
    lo, hi = _shift(t.ndim, (d,), (1,))
    # ``up[i]``: the edge i -> i+1 goes up, (x[i], i) < (x[i+1], i+1)  <=>  x[i] <= x[i+1].
    up = t[lo] <= t[hi]
    is_min[lo] &= up
    is_max[lo] &= ~up
    is_min[hi] &= ~up
    is_max[hi] &= up
    return is_min, is_max


@functools.cache
def _kuhn_offsets(k: int) -> tuple[tuple[int, ...], ...]:
    """The neighbour offsets of the Kuhn triangulation of Z^k: non-zero 0/1 vectors and negatives.

    The positive ones come first (their neighbour has the larger flat index).
    """
    pos = [o for o in itertools.product((0, 1), repeat=k) if any(o)]
    return tuple(pos) + tuple(tuple(-v for v in o) for o in pos)


def _is_kuhn_offset(o: Sequence[int]) -> bool:
    return any(o) and (all(v in (0, 1) for v in o) or all(v in (0, -1) for v in o))


@functools.cache
def _component_table(k: int) -> np.ndarray:
    """Number of connected components of the link subgraph induced by each neighbour bitmask.

    Bit ``j`` of a mask stands for the neighbour at ``_kuhn_offsets(k)[j]``; two neighbours are
    joined iff their difference is itself a Kuhn offset (the triangulation is a flag complex).
    Returns an ``int8`` array of length ``2 ** (2 ** (k + 1) - 2)`` (4, 64 or 16384 entries).
    """
    offsets = _kuhn_offsets(k)
    m = len(offsets)
    adj = [0] * m
    for i, j in itertools.combinations(range(m), 2):
        if _is_kuhn_offset([a - b for a, b in zip(offsets[i], offsets[j], strict=True)]):
            adj[i] |= 1 << j
            adj[j] |= 1 << i
    table = np.zeros(1 << m, dtype=np.int8)
    for mask in range(1 << m):
        rest, count = mask, 0
        while rest:
            seen = frontier = rest & -rest  # flood fill from the lowest set bit
            while frontier:
                reach = 0
                while frontier:
                    bit = frontier & -frontier
                    reach |= adj[bit.bit_length() - 1]
                    frontier ^= bit
                frontier = reach & mask & ~seen
                seen |= frontier
            rest &= ~seen
            count += 1
        table[mask] = count
    table.flags.writeable = False
    return table


Labels = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(labels, m1, m2)``: codes and the multiplicities as 1-saddle / SADDLE and as 2-saddle."""


def _axis_labels(t: torch.Tensor, dims: tuple[int, ...], per_axis: bool) -> Labels:
    code = {c: torch.tensor(int(c), dtype=torch.int8, device=t.device) for c in CriticalType}
    if per_axis:
        planes = []
        for d in dims:
            plane = torch.zeros(t.shape, dtype=torch.int8, device=t.device)
            if t.shape[d] > 1:
                is_min, is_max = _axis_extrema(t, d)
                plane = torch.where(is_min, code[CriticalType.MINIMUM], plane)
                plane = torch.where(is_max, code[CriticalType.MAXIMUM], plane)
            planes.append(plane)
        labels = torch.stack(planes, dim=-1)
        return labels, torch.zeros_like(labels), torch.zeros_like(labels)
    active = [d for d in dims if t.shape[d] > 1]
    if not active:  # one vertex per sample: one component, born at that vertex
        labels = torch.full(t.shape, int(CriticalType.MINIMUM), dtype=torch.int8, device=t.device)
        return labels, torch.zeros_like(labels), torch.zeros_like(labels)
    all_min, all_max = _axis_extrema(t, active[0])
    any_min, any_max = all_min.clone(), all_max.clone()
    for d in active[1:]:
        is_min, is_max = _axis_extrema(t, d)
        all_min, all_max = all_min & is_min, all_max & is_max
        any_min, any_max = any_min | is_min, any_max | is_max
    saddle = any_min & any_max & ~all_min & ~all_max
    labels = torch.zeros(t.shape, dtype=torch.int8, device=t.device)
    labels = torch.where(saddle, code[CriticalType.SADDLE], labels)
    labels = torch.where(all_min, code[CriticalType.MINIMUM], labels)
    labels = torch.where(all_max, code[CriticalType.MAXIMUM], labels)
    return labels, saddle.to(torch.int8), torch.zeros_like(labels)


def _pl_offsets(
    shape: Sequence[int], axes: tuple[int, ...], triangulation: str
) -> list[tuple[tuple[int, ...], bool]]:
    """``(offset, later)`` for each neighbour of the triangulation, in ``_kuhn_offsets`` order.

    ``axes`` are in increasing order; offset entry ``i`` moves along ``axes[i]``. For ``"ttk"``
    the entry of the last axis of length > 1 is negated (the Kuhn triangulation mirrored along
    that axis). ``later``: the neighbour has the larger flat C-order index, i.e. the first
    non-zero entry is +1 (this is what SoS compares, so the tie-break stays the original index).
    """
    mirror = None
    if triangulation == "ttk":
        effective = [i for i, d in enumerate(axes) if shape[d] > 1]
        mirror = effective[-1] if effective else None
    out = []
    for off in _kuhn_offsets(len(axes)):
        o = tuple(-v if i == mirror else v for i, v in enumerate(off))
        out.append((o, next(v for v in o if v) > 0))
    return out


def _pl_labels(t: torch.Tensor, dims: tuple[int, ...], triangulation: str) -> Labels:
    axes = tuple(sorted(dims))
    k = len(axes)
    lower = torch.zeros(t.shape, dtype=torch.int32, device=t.device)
    exists = torch.zeros(t.shape, dtype=torch.int32, device=t.device)
    for j, (off, later) in enumerate(_pl_offsets(t.shape, axes, triangulation)):
        centre, neighbour = _shift(t.ndim, axes, off)
        # SoS: a later neighbour is lower iff its value is smaller, an earlier one iff not larger.
        below = t[neighbour] < t[centre] if later else t[neighbour] <= t[centre]
        lower[centre] |= below.to(torch.int32) << j
        exists[centre] |= 1 << j
    upper = exists & ~lower
    # Mirroring an axis is linear, so it maps the Kuhn link graph onto the mirrored one:
    # neighbour j is adjacent to neighbour i in both, and one component table serves both.
    table = torch.from_numpy(_component_table(k).astype(np.int32)).to(t.device)
    c_lo = table[lower.long()]
    c_up = table[upper.long()]

    effective = sum(1 for d in dims if t.shape[d] > 1)
    is_min = lower == 0
    is_max = ~is_min & (upper == 0)
    inner = ~is_min & ~is_max
    zero = torch.zeros((), dtype=torch.int32, device=t.device)
    if effective == 3:
        split_lo, split_up = inner & (c_lo > 1), inner & (c_up > 1)
        sad1, sad2, degenerate = split_lo & ~split_up, split_up & ~split_lo, split_lo & split_up
        m1 = torch.where(split_lo, c_lo - 1, zero)
        m2 = torch.where(split_up, c_up - 1, zero)
    else:
        sad1 = inner & ((c_lo > 1) | (c_up > 1))
        sad2 = degenerate = torch.zeros_like(sad1)
        m1 = torch.where(sad1, torch.maximum(c_lo, c_up) - 1, zero)
        m2 = torch.zeros_like(m1)
    labels = torch.zeros(t.shape, dtype=torch.int8, device=t.device)
    for mask, c in (
        (is_min, CriticalType.MINIMUM),
        (is_max, CriticalType.MAXIMUM),
        (sad1, CriticalType.SADDLE),
        (sad2, CriticalType.SADDLE2),
        (degenerate, CriticalType.DEGENERATE),
    ):
        labels = torch.where(mask, torch.tensor(int(c), dtype=torch.int8, device=t.device), labels)
    return labels, m1.to(torch.int8), m2.to(torch.int8)


def _labels_torch(
    x: ArrayLike,
    name: str,
    dims: int | Sequence[int] | None,
    method: str,
    per_axis: bool,
    triangulation: str = "kuhn",
) -> Labels:
    _validate(x, name)
    check_choice(method, "method", METHODS)
    per_axis = _check_flag(per_axis, "per_axis")
    check_choice(triangulation, "triangulation", TRIANGULATIONS)
    if per_axis and method != "axis":
        raise ValueError(f"per_axis=True needs method='axis', got method={method!r}")
    if triangulation != "kuhn" and method != "pl":
        raise ValueError(
            f"triangulation={triangulation!r} needs method='pl', got method={method!r}"
        )
    axes = resolve_dims(x.ndim, dims, default="all")
    t = as_ordered_tensor(x).detach()
    if method == "axis":
        return _axis_labels(t, axes, per_axis)
    return _pl_labels(t, axes, triangulation)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


@overload
def critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Literal[False] = ...,
    triangulation: str = ...,
) -> ArrayLike: ...


@overload
def critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Literal[True],
    triangulation: str = ...,
) -> tuple[ArrayLike, ArrayLike]: ...


@overload
def critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Literal["split"],
    triangulation: str = ...,
) -> tuple[ArrayLike, ArrayLike, ArrayLike]: ...


@overload
def critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = ...,
    method: str = ...,
    per_axis: bool = ...,
    return_multiplicity: Multiplicity = ...,
    triangulation: str = ...,
) -> ArrayLike | tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike]: ...


def critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
    per_axis: bool = False,
    return_multiplicity: Multiplicity = False,
    triangulation: str = "kuhn",
) -> ArrayLike | tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike]:
    r"""Label every sample of a grid field as regular, minimum, maximum or saddle.

    Ties are broken by simulation of simplicity: sample :math:`u` is *lower* than :math:`v` iff
    :math:`(x_u, \iota_u) < (x_v, \iota_v)` lexicographically, where :math:`\iota` is the flat
    C-order index into the whole array. Along a spatial axis the neighbour at :math:`+1` has the
    larger index, so ":math:`v` lower than its next" is :math:`x_i \le x_{i+1}` and
    ":math:`v` lower than its previous" is :math:`x_i < x_{i-1}`.

    **method="axis"** — along an axis :math:`a` of length > 1, :math:`v` is a minimum if it is
    lower than each of its (one or two) neighbours along :math:`a`, a maximum if higher. Then

    .. math::

        \mathrm{label}(v) = \begin{cases}
            \text{MINIMUM} & v \text{ is a minimum along every axis}\\
            \text{MAXIMUM} & v \text{ is a maximum along every axis}\\
            \text{SADDLE}  & \text{a minimum along one axis and a maximum along another}\\
            \text{REGULAR} & \text{otherwise,}
        \end{cases}

    where "every axis" means every spatial axis of length > 1 (axes of length 1 have no
    neighbours and are ignored). A sample whose spatial axes all have length 1 is a MINIMUM (it is
    a connected component by itself). MINIMUM labels are the component births of the sub-level
    sets of the vertex-valued cubical complex filtered in SoS order, MAXIMUM those of the
    super-level sets. Against gudhi, which filters by value only and drops pairs born and dying
    at one value: with :math:`r` the SoS rank of ``x`` (a tie-free field with the same labels),
    ``#MINIMUM`` is the number of H0 intervals of ``gudhi.CubicalComplex(vertices=r)``; for ``x``
    itself it is the number of H0 intervals plus the number of those SoS pairs whose birth and
    death vertices hold equal values (none on tie-free data). E.g. ``[2, 1, 1, 0]`` has two
    minima (indices 1 and 3) but one H0 interval, ``(0, inf)``: the minimum at index 1 is born
    and dies at the value 1.

    **method="pl"** — Banchoff's piecewise-linear classification on a Freudenthal triangulation
    of the grid spanned by ``dims``. With ``triangulation="kuhn"`` (the default) the neighbours
    of :math:`v` are the offsets :math:`o` whose non-zero entries are all :math:`+1` or all
    :math:`-1` (2 in 1D, 6 in 2D, 14 in 3D): the diagonals run along :math:`(+1, +1)` /
    :math:`(+1, +1, +1)`. ``triangulation="ttk"`` is TTK's implicit triangulation: the same
    offsets with the entry of the last spatial axis of length > 1 negated (the Kuhn
    triangulation mirrored along that axis, diagonals along :math:`(+1, -1)`), so the labels
    are TTK's. Without ties, ``"ttk"`` on ``x`` equals ``"kuhn"`` on ``x`` flipped along that
    axis, flipped back; with ties they differ, because SoS keeps the flat index of ``x``.
    The triangulation is a flag complex, so the link of :math:`v` is the graph on its existing
    neighbours in which :math:`u, w` are joined iff :math:`u - w` is itself such an offset. With
    :math:`c_\downarrow, c_\uparrow` the numbers of connected components of the lower link
    (neighbours lower than :math:`v`) and the upper link (the other neighbours):

    * :math:`c_\downarrow = 0` (empty lower link): MINIMUM;
    * else :math:`c_\uparrow = 0`: MAXIMUM;
    * 1D/2D: :math:`c_\downarrow > 1` or :math:`c_\uparrow > 1`: SADDLE of multiplicity
      :math:`\max(c_\downarrow, c_\uparrow) - 1`;
    * 3D: :math:`c_\downarrow > 1` only: SADDLE (1-saddle) of multiplicity
      :math:`m_1 = c_\downarrow - 1`; :math:`c_\uparrow > 1` only: SADDLE2 (2-saddle) of
      multiplicity :math:`m_2 = c_\uparrow - 1`; both: DEGENERATE, a 1-saddle of multiplicity
      :math:`m_1 = c_\downarrow - 1` *and* a 2-saddle of multiplicity
      :math:`m_2 = c_\uparrow - 1` (as TTK);
    * otherwise REGULAR.

    With multiplicities these satisfy the Morse identity: for a grid padded with a frame higher
    than every sample, the vertices inside the frame give

    .. math::

        \#\mathrm{min} - \textstyle\sum m_1 + \sum m_2 - \#\mathrm{max} = 1 \text{ (3D)},
        \qquad \#\mathrm{min} - \textstyle\sum m_1 + \#\mathrm{max} = 1 \text{ (2D)},

    the Euler characteristic of the box (each simplex is counted at its highest vertex
    :math:`v`, which contributes :math:`1 - \chi(\text{lower link}) = c_\uparrow - c_\downarrow`
    in 3D by Alexander duality on the link sphere).

    Vertices on the boundary simply have fewer neighbours. Whether the 2D or the 3D rule applies
    is decided by the number of spatial axes of length > 1 (a ``(1, H, W)`` grid is a 2D grid).
    The component counts come from a table over all :math:`2^{6}` (2D) or :math:`2^{14}` (3D)
    neighbour bitmasks, built once. In 1D, ``"pl"`` and ``"axis"`` agree.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Real (bool, integer or float) values, finite. CPU or CUDA tensors are both fine; the
        labels are computed on ``x``'s device.
    dims : int or sequence of int, optional
        The spatial axes (1 to 3). ``None``: ``x`` is a bare 1-3D field and every axis is
        spatial. The other axes are independent samples (batch, channel), e.g. ``(N, C, H, W)``
        with ``dims=(2, 3)``.
    method : {"axis", "pl"}
        The classification, see above.
    per_axis : bool
        Only for ``method="axis"``: return the classification along each axis of ``dims``
        separately (REGULAR / MINIMUM / MAXIMUM; REGULAR along axes of length 1).
    return_multiplicity : bool or "split"
        ``True``: also return the saddle multiplicities, :math:`m_1 + m_2` per vertex.
        ``"split"``: also return :math:`m_1` and :math:`m_2` separately.
    triangulation : {"kuhn", "ttk"}
        Only for ``method="pl"``: the Kuhn triangulation or TTK's (mirrored), see above.

    Returns
    -------
    labels : numpy.ndarray or torch.Tensor
        ``int8`` :class:`CriticalType` codes of shape ``x.shape`` (``x.shape + (len(dims),)`` with
        ``per_axis=True``), of ``x``'s kind and device.
    multiplicity : numpy.ndarray or torch.Tensor
        Only with ``return_multiplicity=True``: ``int8`` array of the shape of ``labels``, 0 for
        non-saddles, :math:`m_1 + m_2` at SADDLE, SADDLE2 and DEGENERATE vertices; for
        ``method="axis"`` it is 1 at every saddle (and 0 everywhere with ``per_axis=True``).
    multiplicity_1, multiplicity_2 : numpy.ndarray or torch.Tensor
        Only with ``return_multiplicity="split"``, in place of ``multiplicity``: :math:`m_1`
        (nonzero at SADDLE and DEGENERATE vertices; for ``method="axis"`` 1 at every saddle) and
        :math:`m_2` (nonzero at SADDLE2 and DEGENERATE vertices of 3D PL grids only), ``int8``.

    Raises
    ------
    TypeError
        If ``x`` is not an array, has a complex dtype, ``per_axis`` is not a bool, or
        ``return_multiplicity`` is neither a bool nor ``"split"``.
    ValueError
        If ``x`` holds NaN / inf, ``dims`` is invalid (or ``None`` with ``x.ndim`` not in 1-3),
        ``method`` or ``triangulation`` is unknown, ``per_axis=True`` with ``method="pl"``, or
        ``triangulation="ttk"`` with ``method="axis"``.

    References
    ----------
    .. [1] H. Edelsbrunner and E. P. Mücke, "Simulation of Simplicity: a technique to cope with
       degenerate cases in geometric algorithms", ACM Trans. Graphics 9(1):66-104, 1990.
    .. [2] T. F. Banchoff, "Critical points and curvature for embedded polyhedra", J. Differential
       Geometry 1:245-256, 1967.
    .. [3] J. Tierny, G. Favelier, J. A. Levine, C. Gueunet and M. Michaux, "The Topology
       ToolKit", IEEE Trans. Visualization and Computer Graphics 24(1):832-842, 2018.
    .. [4] H. W. Kuhn, "Some combinatorial lemmas in topology", IBM J. Research and Development
       4(5):518-524, 1960.

    Notes
    -----
    Peak extra memory: about 15 bytes per vertex for ``method="axis"``, about 55 for
    ``"pl"`` (3D, measured), plus a copy of a uint16/32/64 or negatively strided input.

    Examples
    --------
    A plateau is resolved by simulation of simplicity: one minimum, one maximum.

    >>> import numpy as np
    >>> critical_points(np.array([1, 1, 1]))
    array([1, 0, 2], dtype=int8)

    A saddle of :math:`x^2 - y^2`:

    >>> i, j = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
    >>> f = i**2 - j**2 + 0.01 * i + 0.001 * j
    >>> labels, mult = critical_points(f, method="pl", return_multiplicity=True)
    >>> CriticalType(int(labels[2, 2])).name, int(mult[2, 2])
    ('SADDLE', 1)

    The Morse identity on a random volume padded with a high frame, ties included:

    >>> rng = np.random.default_rng(0)
    >>> v = np.pad(rng.integers(0, 4, size=(5, 6, 7)), 1, constant_values=9)
    >>> labels, m1, m2 = critical_points(v, method="pl", return_multiplicity="split")
    >>> inside = (slice(1, -1),) * 3
    >>> lab, m1, m2 = labels[inside], m1[inside].astype(int), m2[inside].astype(int)
    >>> int((lab == CriticalType.MINIMUM).sum() - m1.sum() + m2.sum()
    ...     - (lab == CriticalType.MAXIMUM).sum())
    1

    Batches keep their layout; torch in, torch out:

    >>> import torch
    >>> critical_points(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]), dims=-1)
    tensor([[1, 2, 1],
            [2, 1, 2]], dtype=torch.int8)
    """
    multiplicity = _check_multiplicity(return_multiplicity)
    labels, m1, m2 = _labels_torch(x, "x", dims, method, per_axis, triangulation)
    parts = [labels, m1, m2] if multiplicity == "split" else [labels, m1 + m2]
    out: list[ArrayLike] = list(parts) if is_torch(x) else [p.numpy() for p in parts]
    if multiplicity == "split":
        return out[0], out[1], out[2]
    return (out[0], out[1]) if multiplicity else out[0]


def count_critical_points(
    x: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
    triangulation: str = "kuhn",
) -> dict[str, int]:
    """Count the samples of each :class:`CriticalType` (saddles counted once, not by multiplicity).

    For the counts with multiplicities (the Morse identity), sum the arrays of
    ``critical_points(..., return_multiplicity="split")``.

    Parameters
    ----------
    x, dims, method, triangulation
        As in :func:`critical_points`.

    Returns
    -------
    dict of str to int
        ``{CriticalType.name: count}`` for every type, in code order (batch axes summed over).

    Raises
    ------
    TypeError, ValueError
        As :func:`critical_points`.

    Notes
    -----
    Peak extra memory: that of :func:`critical_points` (labels are counted, not returned).

    Examples
    --------
    >>> import numpy as np
    >>> count_critical_points(np.array([0.0, 2.0, 1.0, 3.0]))
    {'REGULAR': 0, 'MINIMUM': 2, 'MAXIMUM': 2, 'SADDLE': 0, 'SADDLE2': 0, 'DEGENERATE': 0}
    """
    labels, _, _ = _labels_torch(x, "x", dims, method, False, triangulation)
    counts = torch.bincount(labels.flatten().long(), minlength=len(CriticalType)).tolist()
    return {c.name: int(counts[int(c)]) for c in CriticalType}


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False, repr=False)
class CriticalMismatch:
    """Where the critical points of a reconstruction ``x`` and a target ``y`` disagree.

    All coordinates are ``(n, x.ndim)`` ``int64`` numpy arrays of full-array indices (batch axes
    included), ready for plotting; types are ``int8`` :class:`CriticalType` codes. The arrays are
    read-only. Instances compare by identity.

    Attributes
    ----------
    spurious, spurious_types
        Critical in ``x`` only, with ``x``'s type.
    lost, lost_types
        Critical in ``y`` only, with ``y``'s type.
    changed, changed_from, changed_to
        Critical in both with different types: ``changed_from`` is ``y``'s type, ``changed_to``
        is ``x``'s.
    matched, matched_types
        Critical in both with the same type.
    """

    spurious: np.ndarray
    spurious_types: np.ndarray
    lost: np.ndarray
    lost_types: np.ndarray
    changed: np.ndarray
    changed_from: np.ndarray
    changed_to: np.ndarray
    matched: np.ndarray
    matched_types: np.ndarray

    @property
    def n_spurious(self) -> int:
        """Number of critical points present in ``x`` only."""
        return int(self.spurious.shape[0])

    @property
    def n_lost(self) -> int:
        """Number of critical points present in ``y`` only."""
        return int(self.lost.shape[0])

    @property
    def n_changed(self) -> int:
        """Number of points critical in both with different types."""
        return int(self.changed.shape[0])

    @property
    def n_matched(self) -> int:
        """Number of points critical in both with the same type."""
        return int(self.matched.shape[0])

    @property
    def n_mismatched(self) -> int:
        """``n_spurious + n_lost + n_changed``."""
        return self.n_spurious + self.n_lost + self.n_changed

    def __repr__(self) -> str:
        return (
            f"CriticalMismatch(n_spurious={self.n_spurious}, n_lost={self.n_lost}, "
            f"n_changed={self.n_changed}, n_matched={self.n_matched})"
        )


def mismatched_critical_points(
    x: ArrayLike,
    y: ArrayLike,
    *,
    dims: int | Sequence[int] | None = None,
    method: str = "axis",
    triangulation: str = "kuhn",
) -> CriticalMismatch:
    """Compare the critical points of a reconstruction ``x`` with those of a target ``y``.

    A sample is *critical* if its :func:`critical_points` label is not REGULAR. With
    :math:`L_x, L_y` the labels: spurious = :math:`L_x \\ne 0 = L_y`, lost =
    :math:`L_y \\ne 0 = L_x`, changed = :math:`0 \\ne L_x \\ne L_y \\ne 0`, matched =
    :math:`L_x = L_y \\ne 0`.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        The reconstruction.
    y : numpy.ndarray or torch.Tensor
        The target: same kind, shape and device as ``x``.
    dims, method, triangulation
        As in :func:`critical_points`.

    Returns
    -------
    CriticalMismatch
        Coordinates (numpy, full-array indices in C order) and types of each group.

    Raises
    ------
    TypeError
        If ``x`` / ``y`` are not arrays of one kind or are complex.
    ValueError
        If shapes or devices differ, values are not finite, or ``dims`` / ``method`` /
        ``triangulation`` are invalid.

    Notes
    -----
    Peak extra memory: twice that of :func:`critical_points` plus the returned masks.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.array([0.0, 2.0, 1.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0])
    >>> m = mismatched_critical_points(x, y)
    >>> m
    CriticalMismatch(n_spurious=2, n_lost=0, n_changed=0, n_matched=2)
    >>> m.spurious.tolist(), m.spurious_types.tolist()
    ([[1], [2]], [2, 1])
    """
    check_pair(x, y)
    lx = to_numpy(_labels_torch(x, "x", dims, method, False, triangulation)[0])
    ly = to_numpy(_labels_torch(y, "y", dims, method, False, triangulation)[0])
    cx, cy = lx != 0, ly != 0
    both = cx & cy
    groups = {
        "spurious": cx & ~cy,
        "lost": cy & ~cx,
        "changed": both & (lx != ly),
        "matched": both & (lx == ly),
    }
    coords = {k: _frozen(np.argwhere(v).astype(np.int64)) for k, v in groups.items()}
    return CriticalMismatch(
        spurious=coords["spurious"],
        spurious_types=_frozen(lx[groups["spurious"]]),
        lost=coords["lost"],
        lost_types=_frozen(ly[groups["lost"]]),
        changed=coords["changed"],
        changed_from=_frozen(ly[groups["changed"]]),
        changed_to=_frozen(lx[groups["changed"]]),
        matched=coords["matched"],
        matched_types=_frozen(lx[groups["matched"]]),
    )
