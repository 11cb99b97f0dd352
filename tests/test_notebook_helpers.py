"""Helpers of :mod:`dsl_explore.notebook` that the notebooks call (tables, sizes)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

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


def test_load_results_reads_the_suite_file_and_plot_reproduce_shows_it(tmp_path, monkeypatch):
    import json

    from dsl_explore.experiments import reproduce
    from dsl_explore.notebook import RESULTS_ENV, load_results, plot_reproduce

    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    assert load_results("paper") is None
    res = reproduce(out_dir=tmp_path / "paper", suite="paper", dims=(1,), data=("synthetic",),
                    seeds=2, quick=True, steps=2, cost=False, progress=False)
    loaded = load_results("paper")
    assert loaded is not None and len(loaded["runs"]) == len(res["runs"])
    fig = plot_reproduce(loaded, metric="betti_total")
    assert [t.name for t in fig.data] == [s["name"] for s in loaded["settings"]["objectives"]]
    assert fig.data[0].error_y.arrayminus is not None  # the bootstrap interval, not the std
    assert list(fig.data[0].x) == ["synthetic 1D"]
    with pytest.raises(ValueError, match="metric"):
        plot_reproduce(loaded, metric="nope")
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results("sweeps")
    json.dumps(loaded)  # what the notebook loads is plain JSON


def test_plot_pareto_marks_the_front_and_draws_intervals():
    from dsl_explore.plots.pareto import pareto_front, plot_pareto

    summary = [
        {"data_kind": "synthetic", "dims": 2, "setting": name, "n_seeds": 5,
         "mse_interval": {"value": m, "low": m * 0.9, "high": m * 1.2},
         "betti_total_interval": {"value": b, "low": b * 0.8, "high": b * 1.1}}
        for name, m, b in (("mse", 1e-3, 2.0), ("a", 8e-4, 1.0), ("b", 2e-3, 1.5),
                           ("c", 5e-4, 3.0))]
    assert pareto_front([(1e-3, 2.0), (8e-4, 1.0), (2e-3, 1.5), (5e-4, 3.0)]) == [3, 1]
    fig = plot_pareto({"summary": summary}, data_kind="synthetic", dims=2)
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [5e-4, 8e-4]
    pt = next(t for t in fig.data if t.name == "b")
    assert pt.error_y.array[0] == pytest.approx(1.5 * 0.1)
    assert pt.error_x.arrayminus[0] == pytest.approx(2e-3 * 0.1)
    with pytest.raises(ValueError, match="no rows"):
        plot_pareto({"summary": summary}, data_kind="real", dims=2)
