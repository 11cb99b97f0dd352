"""Input checks shared by the math modules.

Every public function of :mod:`dsl_explore` validates its arguments up front with these helpers,
so that bad input fails early with a message that names the argument and says what was expected.
They import nothing but numpy and torch.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Literal, cast

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor
"""A numpy array or a torch tensor: the two kinds every function accepts and returns."""

__all__ = [
    "FINITE_CHECK_ELEMENTS",
    "ArrayLike",
    "InsufficientMemoryError",
    "as_ordered_tensor",
    "as_tensor",
    "available_memory",
    "check_allocation",
    "check_choice",
    "check_finite",
    "check_k",
    "check_pair",
    "check_real",
    "check_real_floating",
    "is_torch",
    "resolve_dims",
    "resolve_weights",
    "sample_shape",
    "slab_indices",
    "to_numpy",
]

FINITE_CHECK_ELEMENTS = 1 << 22
""":func:`check_finite` looks at this many elements at a time (4 Mi: a 4 MiB boolean mask)."""


def is_torch(a: object) -> bool:
    """Return True for a torch tensor, False for a numpy array; raise otherwise."""
    if isinstance(a, torch.Tensor):
        return True
    if isinstance(a, np.ndarray):
        return False
    raise TypeError(f"expected a numpy.ndarray or a torch.Tensor, got {type(a).__name__}")


def _kind_name(a: object) -> str:
    return "torch.Tensor" if isinstance(a, torch.Tensor) else type(a).__name__


def check_array(a: object, name: str) -> None:
    """Raise TypeError unless ``a`` is a numpy array or a torch tensor."""
    if not isinstance(a, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(a).__name__}")


def check_pair(x: object, y: object, *, names: tuple[str, str] = ("x", "y")) -> None:
    """Check that ``x`` and ``y`` are arrays of one kind, one shape and one device.

    Raises
    ------
    TypeError
        If either is not an array, or one is numpy and the other torch.
    ValueError
        If the shapes or the devices differ.
    """
    check_array(x, names[0])
    check_array(y, names[1])
    x, y = cast(ArrayLike, x), cast(ArrayLike, y)
    if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
        raise TypeError(
            f"{names[0]} and {names[1]} must both be numpy arrays or both torch tensors, "
            f"got {_kind_name(x)} and {_kind_name(y)}"
        )
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.device != y.device:
        raise ValueError(
            f"{names[0]} and {names[1]} must be on the same device, got {x.device} and {y.device}"
        )


def _dtype_kind(a: ArrayLike) -> str:
    """numpy-style dtype kind: 'f' float, 'c' complex, 'i'/'u' integer, 'b' bool."""
    if isinstance(a, torch.Tensor):
        if a.dtype.is_complex:
            return "c"
        if a.dtype.is_floating_point:
            return "f"
        if a.dtype == torch.bool:
            return "b"
        return "i"
    return a.dtype.kind


def check_real_floating(a: ArrayLike, name: str) -> None:
    """Raise TypeError unless ``a`` holds real floating-point numbers (the loss needs them)."""
    kind = _dtype_kind(a)
    if kind != "f":
        raise TypeError(
            f"{name} must have a real floating-point dtype (float16, bfloat16, float32 or "
            f"float64), got {a.dtype}"
        )


def check_real(a: ArrayLike, name: str) -> None:
    """Raise TypeError for complex (or object) dtypes; bool, integer and float are fine."""
    kind = _dtype_kind(a)
    if kind not in "fiub":
        raise TypeError(f"{name} must have a real (bool, integer or float) dtype, got {a.dtype}")


def slab_indices(shape: Sequence[int], max_elements: int) -> Iterator[tuple[int | slice, ...]]:
    """Indices that cut an array of ``shape`` into slabs of at most ``max_elements`` elements.

    Each index is a tuple of leading ints and at most one trailing slice, so ``a[index]`` is a
    view (numpy and torch alike); together the slabs cover the array once, in C order. An axis
    whose rows are larger than ``max_elements`` is cut row by row, recursively.

    Examples
    --------
    >>> list(slab_indices((4, 3), 6))
    [(slice(0, 2, None),), (slice(2, 4, None),)]
    >>> list(slab_indices((2, 5), 3))[:3]
    [(0, slice(0, 3, None)), (0, slice(3, 5, None)), (1, slice(0, 3, None))]
    """
    limit = max(1, int(max_elements))
    if len(shape) == 0 or math.prod(shape) <= limit:
        yield ()
        return
    row = math.prod(shape[1:])
    if row == 0:
        return
    if row > limit:
        for i in range(shape[0]):
            for rest in slab_indices(shape[1:], limit):
                yield (i, *rest)
        return
    step = max(1, limit // row)
    for start in range(0, shape[0], step):
        yield (slice(start, min(start + step, shape[0])),)


def check_finite(a: ArrayLike, name: str) -> None:
    """Raise ValueError if a floating-point ``a`` holds NaN or infinity.

    The array is checked slab by slab (:data:`FINITE_CHECK_ELEMENTS` elements at a time), so
    the extra memory is one slab's boolean mask, whatever the size of ``a``; on a GPU the
    per-slab results stay on the device until one synchronisation at the end.
    """
    if _dtype_kind(a) != "f":
        return
    if isinstance(a, torch.Tensor):
        t = a.detach()
        flag = torch.ones((), dtype=torch.bool, device=t.device)
        for index in slab_indices(tuple(t.shape), FINITE_CHECK_ELEMENTS):
            flag &= torch.isfinite(t[index]).all()
        ok = bool(flag)
    else:
        ok = all(
            bool(np.isfinite(a[index]).all())
            for index in slab_indices(a.shape, FINITE_CHECK_ELEMENTS)
        )
    if not ok:
        raise ValueError(f"{name} must be finite, but it holds NaN or infinity")


def check_int(
    value: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an int after checking it is an integer (not a bool) in range.

    Raises
    ------
    TypeError
        ``value`` is not an integer (``bool`` is refused).
    ValueError
        ``value`` lies outside ``[minimum, maximum]``.

    Examples
    --------
    >>> check_int(3, "n", minimum=1)
    3
    >>> check_int(0, "n", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: n must be an int >= 1, got 0
    """
    if minimum is not None and maximum is not None:
        rng = f" in [{minimum}, {maximum}]"
    elif minimum is not None:
        rng = f" >= {minimum}"
    elif maximum is not None:
        rng = f" <= {maximum}"
    else:
        rng = ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{rng}, got {type(value).__name__}")
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ValueError(f"{name} must be an int{rng}, got {out}")
    return out


def check_float(
    value: object, name: str, *, minimum: float | None = None, strict: bool = False
) -> float:
    """Return ``value`` as a finite float, ``>= minimum`` (``> minimum`` when ``strict``).

    Raises
    ------
    TypeError
        ``value`` is not a real number (``bool`` is refused).
    ValueError
        ``value`` is not finite or lies below ``minimum``.

    Examples
    --------
    >>> check_float(0.5, "lr", minimum=0, strict=True)
    0.5
    >>> check_float(float("nan"), "lr")
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number, got nan
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (out <= minimum if strict else out < minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be finite and {op} {minimum}, got {value!r}")
    return out


_DTypeLike = torch.dtype | np.dtype


def _compute_max(dtype: _DTypeLike) -> tuple[str, float]:
    """Name and largest finite value of the dtype DSL is computed in for inputs of ``dtype``."""
    if dtype in (torch.float64, np.dtype(np.float64)):
        return "float64", float(np.finfo(np.float64).max)
    return "float32", float(np.finfo(np.float32).max)


def check_k(k: object, name: str = "k", *, dtype: _DTypeLike | None = None) -> float:
    """Return ``k`` as a float after checking it is a finite number > 0.

    With ``dtype`` (the inputs' dtype), ``k`` must also be finite in the dtype DSL is computed
    in: float64 for float64 inputs, float32 for float16/bfloat16/float32 ones (a ``k`` that
    rounds to infinity there would give ``inf * 0 = NaN``).

    Examples
    --------
    >>> check_k(10)
    10.0
    >>> check_k(1e39, dtype=np.dtype(np.float32))
    Traceback (most recent call last):
    ...
    ValueError: k must be at most 3.40282e+38 (the largest float32, the dtype DSL is computed in for float32 inputs), got 1e+39
    """  # noqa: E501
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"{name} must be a real number > 0, got {type(k).__name__}")
    value = float(k)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {k!r}")
    if dtype is not None:
        compute, largest = _compute_max(dtype)
        if value > largest:
            shown = str(dtype).removeprefix("torch.")
            raise ValueError(
                f"{name} must be at most {largest:.6g} (the largest {compute}, the dtype DSL is "
                f"computed in for {shown} inputs), got {k!r}"
            )
    return value


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; raise ValueError naming them otherwise."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def resolve_dims(
    ndim: int,
    dims: int | Sequence[int] | None,
    *,
    default: Literal["spatial", "all"] = "spatial",
    name: str = "dims",
) -> tuple[int, ...]:
    """Normalise ``dims`` to a tuple of distinct non-negative axes of an ``ndim``-array.

    Parameters
    ----------
    ndim
        Number of axes of the array.
    dims
        The axes the finite differences run along; negative values count from the end; an int
        means one axis. ``None`` takes the default.
    default
        ``"spatial"``: the layout is ``(N, C, *spatial)`` with 1-3 spatial axes and ``dims``
        defaults to the spatial axes (``ndim`` must be 3, 4 or 5). ``"all"``: a bare field with 1-3
        axes, every axis is spatial.

    Returns
    -------
    tuple of int
        The axes, in the order given (weights follow that order).
    """
    if dims is None:
        if default == "spatial":
            if not 3 <= ndim <= 5:
                raise ValueError(
                    f"with {name}=None the input layout is (N, C, *spatial) with 1-3 spatial axes, "
                    f"so it needs 3-5 axes, got {ndim}; pass {name}= to name the axes of "
                    f"another layout, e.g. {name}=(-1,) for (N, L) or {name}=(0, 1) for a bare 2D "
                    "array"
                )
            return tuple(range(2, ndim))
        if not 1 <= ndim <= 3:
            raise ValueError(
                f"with {name}=None the input must be a bare field with 1-3 axes, got {ndim} axes; "
                f"pass {name}= to name the spatial axes of a batch"
            )
        return tuple(range(ndim))
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        dims = (int(dims),)
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise TypeError(f"{name} must be None, an int or a sequence of ints, got {dims!r}")
    out: list[int] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{name} must hold ints, got {d!r} in {tuple(dims)!r}")
        d = int(d)
        if not -ndim <= d < ndim:
            raise ValueError(f"{name} entry {d} is out of range for an array with {ndim} axes")
        out.append(d % ndim)
    if not out:
        raise ValueError(f"{name} must name at least one axis, got {tuple(dims)!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat an axis, got {tuple(dims)!r}")
    if len(out) > 3:
        raise ValueError(f"{name} may name at most 3 spatial axes, got {len(out)}")
    return tuple(out)


def resolve_weights(
    weights: object, n_dims: int, *, name: str = "weights"
) -> tuple[float, ...] | None:
    """Check per-axis weights: ``None`` or one finite, non-negative number per entry of dims."""
    if weights is None:
        return None
    if isinstance(weights, (torch.Tensor, np.ndarray)):
        if weights.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {tuple(weights.shape)}")
        values = [float(w) for w in weights.tolist()]
    elif isinstance(weights, numbers.Real) and not isinstance(weights, bool):
        values = [float(weights)]
    elif isinstance(weights, Sequence) and not isinstance(weights, (str, bytes)):
        values = []
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, numbers.Real):
                raise TypeError(f"{name} must hold real numbers, got {w!r}")
            values.append(float(w))
    else:
        raise TypeError(
            f"{name} must be None or a sequence of numbers, got {type(weights).__name__}"
        )
    if len(values) != n_dims:
        raise ValueError(
            f"{name} must have one entry per axis in dims ({n_dims}), got {len(values)}"
        )
    for w in values:
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {tuple(values)!r}")
    return tuple(values)


def sample_shape(shape: Sequence[int], dims: Sequence[int]) -> tuple[int, ...]:
    """The shape of the per-sample result: ``shape`` with the axes in ``dims`` removed."""
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def as_tensor(a: ArrayLike) -> torch.Tensor:
    """A torch view of ``a``: numpy arrays are wrapped without a copy, tensors pass through.

    Three kinds of numpy array cannot be wrapped and are copied instead (extra memory: one copy
    of that input): read-only arrays, non-native byte order, and views with negative strides
    (``a[:, ::-1]``; torch has no negative strides). Every other array shares its memory.
    """
    if isinstance(a, torch.Tensor):
        return a
    if a.dtype.byteorder not in "=|":
        a = np.array(a, dtype=a.dtype.newbyteorder("="), order="K")
    elif not a.flags.writeable or any(s < 0 for s in a.strides):
        a = a.copy(order="K")  # order K lays a reversed axis out forwards
    return torch.from_numpy(a)


_TORCH_UINTS = tuple(
    getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)
)


def as_ordered_tensor(a: ArrayLike) -> torch.Tensor:
    """A torch tensor on ``a``'s device whose ``<``, ``>`` and ``==`` order is ``a``'s order.

    torch has no comparison kernels for unsigned types wider than 8 bits, so those are mapped
    order-preservingly: ``uint16`` to ``int32``, ``uint32`` to ``int64`` (widened), and
    ``uint64`` to ``int64`` by flipping the top bit (``v ^ 2**63``, i.e. ``v - 2**63``: a
    bijection, exact for values above ``2**63``). Every other dtype goes through
    :func:`as_tensor` unchanged. Extra memory: a (widened) copy for those unsigned inputs,
    nothing otherwise (see :func:`as_tensor`). Gradients are not tracked for the mapped ones.

    Examples
    --------
    >>> import numpy as np
    >>> t = as_ordered_tensor(np.array([0, 2**63, 2**64 - 1], dtype=np.uint64))
    >>> bool((t[:-1] < t[1:]).all())
    True
    """
    if isinstance(a, np.ndarray) and a.dtype.kind == "u" and a.dtype.itemsize > 1:
        if a.dtype.itemsize == 8:
            a = (a ^ np.array(1 << 63, dtype=a.dtype)).view(np.int64)
        else:
            a = a.astype(np.int32 if a.dtype.itemsize == 2 else np.int64)
    t = as_tensor(a)
    if t.dtype in _TORCH_UINTS:
        t = t.detach()
        if t.dtype == torch.uint64:
            t = t.view(torch.int64) ^ torch.iinfo(torch.int64).min
        else:
            t = t.to(torch.int32 if t.dtype == torch.uint16 else torch.int64)
    return t


class InsufficientMemoryError(ValueError, MemoryError):
    """An allocation refused up front because it cannot fit in the available memory.

    A ``ValueError`` (a bad size is a user error) and a ``MemoryError``.
    """


def _cgroup_memory_left() -> int | None:
    """Bytes left under a cgroup v2 memory limit (containers), or None without one."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available for new allocations, or None when it cannot be told.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else ``os.sysconf`` (free physical pages),
    capped by a cgroup v2 memory limit when one applies.
    """
    avail: int | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            avail = None
    cgroup = _cgroup_memory_left()
    if cgroup is not None:
        avail = cgroup if avail is None else min(avail, cgroup)
    return avail


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_allocation(nbytes: int, what: str) -> None:
    """Raise :class:`InsufficientMemoryError` if ``nbytes`` cannot fit in the available memory.

    ``what`` says what the memory is for (e.g. ``"loading 'x.npy' (shape (10, 64), float32)"``);
    the message reads ``"<what> needs N GiB, but only M GiB of memory is available"``. When the
    available memory cannot be told, nothing is checked.

    Examples
    --------
    >>> check_allocation(1024, "a small buffer")
    >>> check_allocation(2**70, "a huge buffer")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dsl_explore._validation.InsufficientMemoryError: a huge buffer needs 1073741824.0 TiB, ...
    """
    nbytes = int(nbytes)
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise InsufficientMemoryError(
            f"{what} needs {_format_bytes(nbytes)}, but only {_format_bytes(avail)} of memory "
            "is available"
        )


def to_numpy(a: ArrayLike) -> np.ndarray:
    """A numpy copy-or-view of ``a`` on the host (tensors are detached and moved to the CPU)."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(a)
