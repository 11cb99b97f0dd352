"""The explorer's data: the input arranged as ``(samples, *spatial)``, the current sample with its
critical points, and the numbers of the readout.

- :func:`prepare` checks ``x`` and ``y`` and arranges them (:class:`FieldData`); the layout rules
  are those of :func:`~dsl_explore.widgets.explore`.
- :class:`ExploreModel` holds the current :class:`Sample` and recomputes the DSL value (on k,
  surrogate and weight changes) and the weighted count (on weight changes) with the library's
  own :func:`~dsl_explore.loss.directional_sign_loss` and
  :func:`~dsl_explore.counting.sign_mismatch_count`; critical points are computed once per
  sample (they depend on neither k, the weights nor the surrogate).
- :func:`torch_threads` runs a block with a given number of torch threads on this thread.

No widget code here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dsl_explore._validation import check_array, check_finite, check_real, resolve_dims
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import CriticalMismatch, mismatched_critical_points
from dsl_explore.loss import directional_sign_loss
from dsl_explore.plots.compute import CriticalGroups, critical_groups

__all__ = ["ExploreModel", "FieldData", "Sample", "prepare", "spatial_layout", "torch_threads"]


def _as_tensor(a: object, name: str) -> torch.Tensor:
    check_array(a, name)
    check_real(a, name)  # type: ignore[arg-type]
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="),
                                                           copy=False)))
    else:
        t = a.detach().cpu()  # type: ignore[attr-defined]
    if not t.dtype.is_floating_point:
        t = t.to(torch.float64)
    check_finite(t, name)
    return t


def spatial_layout(shape: tuple[int, ...], dims: object) -> tuple[int, ...]:
    """The spatial axes of an input of ``shape`` (see :func:`~dsl_explore.widgets.explore`).

    Examples
    --------
    >>> spatial_layout((8, 1, 20), None), spatial_layout((4, 2, 9, 9), None)
    ((2,), (2, 3))
    """
    nd = len(shape)
    if dims is not None:
        return resolve_dims(nd, dims)  # type: ignore[arg-type]
    if nd in (1, 2):
        return tuple(range(nd))
    if nd == 3:
        return (2,) if shape[1] == 1 else (0, 1, 2)
    if nd in (4, 5):
        return tuple(range(2, nd))
    raise ValueError(
        "x must be a bare 1-3D field or an (N, C, *spatial) batch with 1-3 spatial axes "
        f"(1-5 axes), got shape {shape}; pass dims= to name the spatial axes of another layout"
    )


@dataclass
class FieldData:
    """``x`` and ``y`` arranged as ``(S, *spatial)`` in the input dtype.

    Attributes
    ----------
    x, y : torch.Tensor
        The samples, the non-spatial axes flattened in C order.
    spatial : tuple of int
        Sizes of the spatial axes.
    sample_shape : tuple of int
        Sizes of the non-spatial axes, in input order.
    sample_axes : tuple of int
        The non-spatial axes of the input.
    dims : tuple of int
        The spatial axes of the input, in the order the weights follow.
    """

    x: torch.Tensor
    y: torch.Tensor
    spatial: tuple[int, ...]
    sample_shape: tuple[int, ...]
    sample_axes: tuple[int, ...]
    dims: tuple[int, ...]

    def sample_index(self, s: int) -> tuple[int, ...]:
        """Index of the flat sample ``s`` in the non-spatial axes (e.g. ``(n, c)``)."""
        if not self.sample_shape:
            return ()
        return tuple(int(i) for i in np.unravel_index(s, self.sample_shape))


def prepare(x: object, y: object, dims: object) -> FieldData:
    """Check ``x`` and ``y`` (arrays of one real shape, finite) and arrange them.

    Raises
    ------
    TypeError
        Not a numpy array / torch tensor, or complex.
    ValueError
        Shapes that differ, empty input, NaN or inf, or spatial axes shorter than 2.

    Examples
    --------
    >>> d = prepare(np.zeros((3, 2, 8)), np.zeros((3, 2, 8)), -1)
    >>> tuple(d.x.shape), d.sample_shape, d.dims
    ((6, 8), (3, 2), (2,))
    """
    xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
    if tuple(xt.shape) != tuple(yt.shape):
        raise ValueError(
            f"x and y must have the same shape, got {tuple(xt.shape)} and {tuple(yt.shape)}"
        )
    if xt.dtype != yt.dtype:
        common = torch.promote_types(xt.dtype, yt.dtype)
        xt, yt = xt.to(common), yt.to(common)
    if xt.numel() == 0:
        raise ValueError(f"x and y must not be empty, got shape {tuple(xt.shape)}")
    shape = tuple(xt.shape)
    axes = spatial_layout(shape, dims)
    spatial = tuple(shape[a] for a in axes)
    if any(n < 2 for n in spatial):
        raise ValueError(
            f"every spatial axis needs at least 2 samples, got spatial sizes {spatial} "
            f"(axes {axes} of shape {shape}); pass dims= if the layout was guessed wrong"
        )
    others = tuple(a for a in range(len(shape)) if a not in axes)
    order = others + axes
    sample_shape = tuple(shape[a] for a in others)
    n = math.prod(sample_shape)

    def arrange(t: torch.Tensor) -> torch.Tensor:
        if order != tuple(range(len(shape))):
            t = t.permute(order)
        return t.reshape(n, *spatial).contiguous()

    return FieldData(arrange(xt), arrange(yt), spatial, sample_shape, others, axes)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (this thread only), then restore.

    With the OpenMP backend the setting is per OS thread: a training thread running beside
    the widget keeps its own. The widget's updates are many small ops; on a busy 2-core machine
    each multi-threaded op waits for a second core (a scheduler slice, ~4-8 ms), so one thread
    is both faster and steadier there.
    """
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class Sample:
    """One sample and what does not depend on k, the weights or the surrogate."""

    x: torch.Tensor  # one sample, input dtype
    y: torch.Tensor
    x32: torch.Tensor  # float32 copies for the maps
    y32: torch.Tensor
    mismatch: CriticalMismatch
    groups: CriticalGroups
    count: int
    n_differences: int
    vmin: float
    vmax: float


class ExploreModel:
    """The explorer's numbers: the current sample, DSL (mean, sum), weighted count and rate.

    Examples
    --------
    >>> m = ExploreModel(prepare(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0]), None))
    >>> m.compute_loss(k=100.0, weights=(1.0,), surrogate="tanh")
    >>> m.compute_count(weights=(1.0,))
    >>> round(m.loss_sum, 4), m.cur.count, m.count_rate
    (1.0, 1, 0.5)
    """

    def __init__(self, data: FieldData, *, method: str = "axis") -> None:
        self.data = data
        self.ndim = len(data.spatial)
        self.method = method
        self.loss = self.loss_sum = self.count_weighted = self.count_rate = 0.0
        self.cur = self.load(0)

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(range(self.ndim))

    @property
    def n_samples(self) -> int:
        return int(self.data.x.shape[0])

    def load(self, s: int) -> Sample:
        """Make sample ``s`` current (its critical points and exact count); returns it."""
        x, y = self.data.x[s], self.data.y[s]
        x32 = x if x.dtype == torch.float32 else x.float()
        y32 = y if y.dtype == torch.float32 else y.float()
        cm = mismatched_critical_points(x, y, method=self.method)
        spatial = self.data.spatial
        n_diff = sum(math.prod(spatial) // n * (n - 1) for n in spatial)
        both = torch.stack([x32.amin(), x32.amax(), y32.amin(), y32.amax()])
        self.cur = Sample(
            x=x, y=y, x32=x32, y32=y32, mismatch=cm, groups=critical_groups(cm),
            count=int(sign_mismatch_count(x, y, dims=self.axes)),
            n_differences=int(n_diff),
            vmin=float(both.min()), vmax=float(both.max()),
        )
        return self.cur

    def compute_loss(self, *, k: float, weights: Sequence[float], surrogate: str) -> None:
        """DSL of the current sample with ``reduction="mean"`` and ``"sum"``."""
        x, y = self.cur.x, self.cur.y
        self.loss, self.loss_sum = (
            float(directional_sign_loss(x, y, k=k, weights=weights, dims=self.axes,
                                        surrogate=surrogate, reduction=reduction))
            for reduction in ("mean", "sum")
        )

    def compute_count(self, *, weights: Sequence[float]) -> None:
        """The weighted exact count of the current sample, as a sum and a rate."""
        x, y = self.cur.x, self.cur.y
        self.count_weighted = float(sign_mismatch_count(x, y, dims=self.axes, weights=weights))
        self.count_rate = float(
            sign_mismatch_count(x, y, dims=self.axes, weights=weights, reduction="mean")
        )
