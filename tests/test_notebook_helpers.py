"""Helpers of :mod:`dsl_explore.notebook` that the notebooks call (tables, sizes)."""

from __future__ import annotations

import itertools

import numpy as np

from dsl_explore.critical import CriticalType, critical_points
from dsl_explore.notebook import critical_table


def _degenerate_block() -> np.ndarray:
    """A 3x3x3 field whose centre is a 3D PL DEGENERATE vertex (1-saddle and 2-saddle)."""
    a = np.full((3, 3, 3), 5.0)
    a[1, 1, 1] = 0.0
    for o in itertools.product((0, 1), repeat=3):
        if 0 < sum(o) < 3:
            a[tuple(1 + v for v in o)] = -1.0
            a[tuple(1 - v for v in o)] = 1.0
    a[0, 0, 0], a[2, 2, 2] = -1.0, 1.0
    return a


def test_critical_table_counts_degenerate_vertices_as_saddles():
    a = _degenerate_block()
    labels = critical_points(a, method="pl")
    assert labels[1, 1, 1] == CriticalType.DEGENERATE
    saddle_types = (CriticalType.SADDLE, CriticalType.SADDLE2, CriticalType.DEGENERATE)
    expected = int(np.isin(labels, [int(t) for t in saddle_types]).sum())
    row = critical_table(a, a, methods=("pl",)).as_dicts()[0]
    assert row["target saddle"] == row["recon saddle"] == expected
    assert row["matched"] >= 1 and row["spurious"] == row["lost"] == row["changed"] == 0
