"""Tests of the experiments (dsl_explore.experiments): tiny settings only."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dsl_explore.experiments import PERTURBATIONS, PROXY_METRICS, perturb, proxy, reproduce


def test_reproduce_quick_tiny_writes_the_three_tables(tmp_path):
    res = reproduce(dims=(1,), seeds=1, quick=True, steps=6, out_dir=tmp_path, progress=False)
    for name in ("results.json", "table.csv", "table.md"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["loss"] for r in saved["runs"]] == ["mse", "mse+dsl", "mse+ph"]
    run = saved["runs"][0]
    for key in ("mse", "psnr", "count_rate", "spurious", "lost", "betti_per_dim", "betti_total",
                "bottleneck", "seconds_per_step"):
        assert key in run
    assert run["steps"] == 6
    assert all(0.0 <= r["count_rate"] <= 1.0 for r in saved["runs"])  # a rate, not a sum
    # the three losses saw the same held-out data
    assert len({r["n_test"] for r in saved["runs"]}) == 1
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [r["loss"] for r in rows] == ["mse", "mse+dsl", "mse+ph"]
    assert float(rows[0]["betti_total_mean"]) >= 0
    md = (tmp_path / "table.md").read_text()
    assert "| 1D | mse+dsl |" in md and "MSE+DSL vs MSE" in md and "quick mode" in md
    assert "mse+dsl" in res["betti_change"]["1"]


def test_reproduce_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="dims"):
        reproduce(dims=(4,), out_dir=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        reproduce(dims=(1,), seeds=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"not valid for this model|size"):
        reproduce(dims=(1,), seeds=1, size=40, out_dir=tmp_path / "x", steps=1)
    assert not (tmp_path / "x" / "results.json").exists()


@pytest.mark.parametrize("family", sorted(PERTURBATIONS))
def test_perturbations_keep_shape_and_grow_with_level(family):
    y = np.random.default_rng(0).random((16, 16))
    errs = []
    for level in PERTURBATIONS[family]:
        x = perturb(y, family, level, np.random.default_rng(1))
        assert x.shape == y.shape
        errs.append(float(np.mean((x - y) ** 2)))
    assert errs[-1] > errs[0]


def test_proxy_tiny(tmp_path):
    res = proxy(n_targets=2, size=16, seed=0, out_dir=tmp_path)
    assert res["metrics"] == list(PROXY_METRICS)
    rho = np.array(res["spearman"])
    assert rho.shape == (len(PROXY_METRICS), len(PROXY_METRICS))
    np.testing.assert_allclose(np.diag(rho), 1.0)
    np.testing.assert_allclose(rho, rho.T)
    assert rho[0, 1] > 0.5  # DSL tracks the exact count it approximates
    assert res["n_pairs"] == 2 * sum(len(v) for v in PERTURBATIONS.values())
    for name in ("proxy.md", "proxy.csv", "proxy.json"):
        assert (tmp_path / name).is_file()
    assert "| dsl |" in (tmp_path / "proxy.md").read_text()
    with pytest.raises(ValueError, match="n_targets"):
        proxy(n_targets=0, out_dir=tmp_path)
