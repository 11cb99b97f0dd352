"""Small helpers shared by the figure builders and the widgets: trace lookup by role, typed
arrays for the wire, downsampling, number formatting."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "as_array",
    "block_coords",
    "block_factor",
    "block_reduce",
    "find_traces",
    "fmt",
    "heatmaps_to_typed",
    "trace_index",
    "typed_array",
    "weights_text",
]

_DTYPES = {"f4": np.float32, "f8": np.float64, "i1": np.int8, "u1": np.uint8, "i2": np.int16,
           "u2": np.uint16, "i4": np.int32, "u4": np.uint32}


def typed_array(a: np.ndarray) -> dict[str, str]:
    """A plotly typed-array spec ``{"dtype", "bdata", "shape"}`` (base64) for an array.

    plotly.js (>= 2.28) decodes these in ``newPlot`` and ``restyle``. The kit uses them for the
    2D ``z`` of heatmaps in ``FigureWidget``s: plotly.py's widget serialiser sends 1D numpy
    arrays as binary buffers but turns 2D ones into nested lists, which costs ~100x more.

    Examples
    --------
    >>> spec = typed_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> spec["dtype"], spec["shape"]
    ('f4', '2, 3')
    >>> as_array(spec).tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    """
    a = np.ascontiguousarray(a)
    if a.dtype == np.float64:
        code = "f8"
    else:
        a = a.astype(np.float32, copy=False)
        code = "f4"
    return {"dtype": code, "bdata": base64.b64encode(a.tobytes()).decode("ascii"),
            "shape": ", ".join(str(n) for n in a.shape)}


def heatmaps_to_typed(fig: Any) -> Any:
    """Store every heatmap ``z`` of ``fig`` as a :func:`typed_array` spec (float32), in place.

    A ``FigureWidget`` built from the result sends its heatmaps as binary, not nested lists.
    Returns ``fig``.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> fig = heatmaps_to_typed(go.Figure(go.Heatmap(z=[[0.0, 1.0]])))
    >>> fig.data[0].z["dtype"], as_array(fig.data[0].z).tolist()
    ('f4', [[0.0, 1.0]])
    """
    for tr in fig.data:
        if tr.type == "heatmap" and tr.z is not None and not isinstance(tr.z, dict):
            tr.z = typed_array(np.asarray(tr.z, dtype=np.float32))
    return fig


def as_array(v: Any) -> np.ndarray:
    """A trace's data array as numpy, whether stored as an array, a list or a typed-array spec."""
    if isinstance(v, dict) and "bdata" in v:
        data = np.frombuffer(base64.b64decode(v["bdata"]), dtype=_DTYPES[v["dtype"]])
        shape = v.get("shape")
        if shape:
            data = data.reshape([int(s) for s in str(shape).split(",")])
        return data
    return np.asarray(v)


def find_traces(fig: Any, **meta: Any) -> list[Any]:
    """The traces of ``fig`` whose ``meta`` dict holds every given ``key=value``.

    Every trace the kit draws carries a ``meta`` dict, e.g. ``{"role": "critical", "kind":
    "spurious", "panel": "recon"}``; this is how tests and widgets find them.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> fig = go.Figure([go.Scatter(y=[1], meta={"role": "line", "panel": "target"})])
    >>> len(find_traces(fig, role="line")), len(find_traces(fig, role="dsl"))
    (1, 0)
    """
    out = []
    for tr in fig.data:
        m = tr.meta if isinstance(tr.meta, dict) else {}
        if all(m.get(key) == value for key, value in meta.items()):
            out.append(tr)
    return out


def trace_index(fig: Any, **meta: Any) -> int:
    """Index in ``fig.data`` of the one trace whose ``meta`` matches (see :func:`find_traces`)."""
    hits = [
        i
        for i, tr in enumerate(fig.data)
        if isinstance(tr.meta, dict) and all(tr.meta.get(k) == v for k, v in meta.items())
    ]
    if len(hits) != 1:
        raise LookupError(f"expected one trace with meta {meta}, found {len(hits)}")
    return hits[0]


def block_factor(shape: Sequence[int], max_size: int | None) -> int:
    """The integer block size that brings every axis to at most ``max_size`` (1: keep).

    Examples
    --------
    >>> block_factor((1000, 300), 512), block_factor((1000, 300), None)
    (2, 1)
    """
    if max_size is None:
        return 1
    return max(1, math.ceil(max(shape) / max_size))


def block_reduce(a: torch.Tensor, factor: int, how: str = "mean") -> torch.Tensor:
    """Downsample a 2D tensor by ``factor`` per axis with a block mean or max (edges padded)."""
    if factor == 1:
        return a
    t = a[None, None].float()
    if how == "max":
        out = F.max_pool2d(t, factor, ceil_mode=True)
    else:
        out = F.avg_pool2d(t, factor, ceil_mode=True, count_include_pad=False)
    return out[0, 0]


def block_coords(n: int, factor: int) -> np.ndarray:
    """Centres, in full-resolution index units, of the blocks of :func:`block_reduce`.

    Examples
    --------
    >>> block_coords(5, 2).tolist()
    [0.5, 2.5, 4.0]
    """
    starts = np.arange(0, n, factor, dtype=np.float64)
    stops = np.minimum(starts + factor, n)
    return (starts + stops - 1) / 2.0


def fmt(value: float, digits: int = 4) -> str:
    """A compact number: integers as such, floats with ``digits`` significant digits.

    Examples
    --------
    >>> fmt(12000.0), fmt(0.123456)
    ('12,000', '0.1235')
    """
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.{digits}g}"


def weights_text(weights: Sequence[float] | None) -> str:
    """``", w=(1, 0.5)"`` for a title, or ``""`` when every weight is 1 (or there are none).

    Examples
    --------
    >>> weights_text((1.0, 0.5)), weights_text(None)
    (', w=(1, 0.5)', '')
    """
    if weights is None or all(w == 1.0 for w in weights):
        return ""
    return ", w=(" + ", ".join(f"{w:g}" for w in weights) + ")"
