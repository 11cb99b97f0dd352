"""Independent numpy reference implementations of SPEC sections 2-3, written from the formulas.

They use ``numpy.diff`` and ``numpy.sign`` on float64 copies, nothing from ``dsl_explore``, so that
tests compare the library against a second, naive implementation rather than against itself.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

SURROGATES_NP = {
    "tanh": np.tanh,
    "softsign": lambda t: t / (1.0 + np.abs(t)),
    "arctan": lambda t: (2.0 / math.pi) * np.arctan(t),
    "erf": erf,
    "sigmoid": lambda t: 2.0 / (1.0 + np.exp(-t)) - 1.0,
}


def dsl_reference(x, y, *, k, dims, weights=None, surrogate="tanh", reduction="mean"):
    """DSL in float64 numpy, straight from SPEC section 3."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    s = SURROGATES_NP[surrogate]
    weights = [1.0] * len(dims) if weights is None else list(weights)
    sample_axes = tuple(i for i in range(x.ndim) if i not in dims)
    total = np.zeros([x.shape[i] for i in sample_axes]) if reduction == "none" else 0.0
    for w, a in zip(weights, dims, strict=False):
        if x.shape[a] < 2:
            continue
        term = 0.5 * np.abs(s(k * np.diff(x, axis=a)) - s(k * np.diff(y, axis=a)))
        if term.size == 0:
            continue
        if reduction == "sum":
            total = total + w * term.sum()
        elif reduction == "mean":
            total = total + w * term.mean()
        else:
            total = total + w * term.mean(axis=tuple(dims))
    return total


def count_reference(x, y, *, dims):
    """Per-axis exact counts (summed over all samples) from ``numpy.sign(numpy.diff)``.

    Integer inputs are widened to Python-object-free int64/float64 first so the difference
    itself cannot overflow.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    wide = np.float64 if x.dtype.kind == "f" else np.int64
    x = x.astype(wide)
    y = y.astype(wide)
    out = []
    for a in dims:
        if x.shape[a] < 2:
            out.append(0)
            continue
        out.append(int((np.sign(np.diff(x, axis=a)) != np.sign(np.diff(y, axis=a))).sum()))
    return out
