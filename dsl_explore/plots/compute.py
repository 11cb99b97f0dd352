"""Array work behind the plots and widgets: input checks, DSL term maps, mismatch maps.

Everything here is plain numpy/torch (no plotly), so the widgets can call it on every slider
change; :mod:`dsl_explore.plots.parts` turns its results into what a figure draws.
Conventions: ``recon`` is the library's ``x`` and ``target`` its ``y``; the DSL term of the
difference ``i`` along axis ``a`` is ``0.5 * |s(k D_a recon[i]) - s(k D_a target[i])|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from dsl_explore._validation import (
    ArrayLike,
    check_array,
    check_choice,
    check_finite,
    check_k,
    check_real,
    resolve_weights,
    to_numpy,
)
from dsl_explore.counting import sign_mismatch_map
from dsl_explore.critical import CriticalMismatch, CriticalType
from dsl_explore.loss import SURROGATES

__all__ = [
    "CriticalGroups",
    "as_field",
    "as_tensor",
    "check_same_shape",
    "critical_groups",
    "dsl_terms",
    "exact_edges",
    "half_incidence",
    "plane_slab",
    "sign_limit",
]


def as_field(a: object, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A bare field as a numpy array, after checks that name ``name``.

    Leading axes of length 1 are dropped until the field has an allowed number of axes, so a
    ``(1, 1, L)`` sample from :mod:`dsl_explore.data` is a 1D field. Integer and bool values
    become float64; float16/bfloat16 become float32.
    """
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    check_array(a, name)
    check_real(a, name)  # type: ignore[arg-type]
    arr = to_numpy(a)  # type: ignore[arg-type]
    while arr.ndim > max(allowed) and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}D" for d in allowed)
        raise ValueError(
            f"{name} must be a bare {want} field (leading axes of length 1 are dropped), "
            f"got shape {tuple(a.shape)}"  # type: ignore[attr-defined]
        )
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    check_finite(arr, name)
    if any(s < 2 for s in arr.shape):
        raise ValueError(f"every axis of {name} needs at least 2 samples, got shape {arr.shape}")
    return arr


def check_same_shape(target: np.ndarray, recon: np.ndarray) -> None:
    """Raise ``ValueError`` naming both shapes unless ``target`` and ``recon`` have one shape.

    Examples
    --------
    >>> check_same_shape(np.zeros(3), np.zeros(4))
    Traceback (most recent call last):
    ...
    ValueError: target and recon must have the same shape, got (3,) and (4,)
    """
    if target.shape != recon.shape:
        raise ValueError(
            f"target and recon must have the same shape, got {target.shape} and {recon.shape}"
        )


def as_tensor(a: ArrayLike) -> torch.Tensor:
    """``a`` as a torch tensor: numpy arrays are wrapped (made contiguous, no copy otherwise),
    tensors are returned as they are.

    Examples
    --------
    >>> as_tensor(np.arange(3.0))
    tensor([0., 1., 2.], dtype=torch.float64)
    """
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a


_t = as_tensor  # the short name the functions below use


def dsl_terms(
    recon: ArrayLike,
    target: ArrayLike,
    *,
    k: float,
    surrogate: str = "tanh",
    axes: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Unweighted DSL terms per axis: ``0.5 * |s(k D_a recon) - s(k D_a target)|``.

    Parameters
    ----------
    recon, target : numpy.ndarray or torch.Tensor
        Floating arrays of one shape (float16/bfloat16 are computed in float32).
    k : float
        Sharpness > 0.
    surrogate : str
        A name of :data:`dsl_explore.loss.SURROGATES`.
    axes : sequence of int, optional
        The axes to difference along; default every axis.

    Returns
    -------
    list of torch.Tensor
        One tensor per axis, of the input's shape shortened by one along that axis; the same
        values :func:`dsl_explore.loss.directional_sign_loss` sums (before weights).
    """
    from dsl_explore.loss import dsl_term

    k = check_k(k)
    check_choice(surrogate, "surrogate", tuple(SURROGATES))
    x, y = _t(recon), _t(target)
    if x.dtype in (torch.float16, torch.bfloat16):
        x, y = x.float(), y.float()
    axes = range(x.ndim) if axes is None else axes
    return [dsl_term(x, y, dim=a, k=k, surrogate=surrogate) for a in axes]


def exact_edges(
    recon: ArrayLike, target: ArrayLike, *, axes: Sequence[int] | None = None
) -> list[torch.Tensor]:
    """Per-axis boolean maps of mismatched difference signs (from :func:`sign_mismatch_map`)."""
    x, y = _t(recon), _t(target)
    axes = tuple(range(x.ndim)) if axes is None else tuple(axes)
    return [cast(torch.Tensor, e) for e in sign_mismatch_map(x, y, dims=axes).per_axis]


def half_incidence(
    per_axis: Sequence[torch.Tensor],
    shape: Sequence[int],
    *,
    axes: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Vertex map that gives each vertex half of every incident difference's value, weighted.

    ``out[v] = sum_a w_a * (0.5 * e_a[v - e_a] + 0.5 * e_a[v])`` where ``e_a`` are the edge
    values along axis ``a`` (missing neighbours count 0). The map sums to
    ``sum_a w_a * e_a.sum()``: for DSL terms, the DSL value with ``reduction="sum"``; for
    boolean mismatches, the weighted exact count.

    Returns
    -------
    torch.Tensor
        float32 (float64 when an edge tensor is float64) of ``shape``.
    """
    axes = tuple(range(len(shape))) if axes is None else tuple(axes)
    dtype = torch.float64 if any(e.dtype == torch.float64 for e in per_axis) else torch.float32
    out = torch.zeros(tuple(shape), dtype=dtype)
    for j, (a, e) in enumerate(zip(axes, per_axis, strict=True)):
        n = shape[a]
        if n < 2:
            continue
        w = 0.5 if weights is None else 0.5 * float(weights[j])
        if w == 0.0:
            continue
        half = e.to(dtype) * w
        out.narrow(a, 0, n - 1).add_(half)
        out.narrow(a, 1, n - 1).add_(half)
    return out


def plane_slab(t: torch.Tensor, axis: int, index: int) -> tuple[torch.Tensor, int]:
    """The planes ``index - 1 .. index + 1`` along ``axis`` (clipped) and ``index``'s position.

    A vertex map computed on the slab is exact on its plane ``pos``: every difference that
    touches a vertex of plane ``index`` lies inside the slab.
    """
    lo = max(index - 1, 0)
    hi = min(index + 2, t.shape[axis])
    return t.narrow(axis, lo, hi - lo), index - lo


def _signs(t: torch.Tensor, a: int) -> torch.Tensor:
    n = t.shape[a]
    t0, t1 = t.narrow(a, 0, n - 1), t.narrow(a, 1, n - 1)
    return (t1 > t0).to(torch.int8) - (t1 < t0).to(torch.int8)


def sign_limit(
    recon: ArrayLike,
    target: ArrayLike,
    *,
    axes: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
) -> float:
    """The k -> infinity limit of DSL with ``reduction="sum"``: ``sum_a w_a sum |sgn - sgn| / 2``.

    It equals the exact (weighted) count where no difference is zero; a difference that is zero
    on exactly one side contributes 1/2 instead of 1. Signs come from comparisons (exact).
    """
    x, y = _t(recon), _t(target)
    axes = tuple(range(x.ndim)) if axes is None else tuple(axes)
    w = resolve_weights(weights, len(axes))
    total = 0.0
    for j, a in enumerate(axes):
        if x.shape[a] < 2:
            continue
        d = (_signs(x, a).to(torch.int16) - _signs(y, a).to(torch.int16)).abs()
        value = float(d.sum(dtype=torch.int64)) / 2.0
        total += value * (1.0 if w is None else w[j])
    return total


@dataclass(frozen=True)
class CriticalGroups:
    """Mismatched critical points of one field pair, grouped by kind, ready to draw.

    Attributes
    ----------
    coords : dict of str to numpy.ndarray
        ``kind -> (n, ndim)`` int64 coordinates for "matched", "spurious", "lost", "changed".
    labels : dict of str to list of str
        ``kind -> n`` hover labels (the types, e.g. ``"MAXIMUM"`` or ``"SADDLE → MAXIMUM"``).
    """

    coords: dict[str, np.ndarray]
    labels: dict[str, list[str]]

    def counts(self) -> dict[str, int]:
        """Number of points of each kind."""
        return {k: int(v.shape[0]) for k, v in self.coords.items()}

    def select_plane(self, axis: int, index: int) -> CriticalGroups:
        """The points on the plane ``index`` of ``axis``, with that axis dropped."""
        coords, labels = {}, {}
        for kind, c in self.coords.items():
            keep = c[:, axis] == index
            coords[kind] = np.delete(c[keep], axis, axis=1)
            lab = self.labels[kind]
            labels[kind] = [lab[i] for i in np.flatnonzero(keep)]
        return CriticalGroups(coords, labels)


def _names(codes: np.ndarray) -> list[str]:
    names = {int(c): c.name for c in CriticalType}
    return [names[int(c)] for c in codes]


def critical_groups(cm: CriticalMismatch) -> CriticalGroups:
    """Group a :class:`~dsl_explore.critical.CriticalMismatch` for drawing."""
    coords = {
        "matched": np.asarray(cm.matched),
        "spurious": np.asarray(cm.spurious),
        "lost": np.asarray(cm.lost),
        "changed": np.asarray(cm.changed),
    }
    labels = {
        "matched": _names(cm.matched_types),
        "spurious": _names(cm.spurious_types),
        "lost": _names(cm.lost_types),
        "changed": [
            f"{a} → {b}"
            for a, b in zip(_names(cm.changed_from), _names(cm.changed_to), strict=True)
        ],
    }
    return CriticalGroups(coords, labels)
