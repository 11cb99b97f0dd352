"""Tests of the reproduction (dsl_explore.experiments.reproduce, protocol, suites, report, cost)
and of the proxy study: tiny settings only."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from dsl_explore.experiments import (
    PERTURBATIONS,
    PROXY_METRICS,
    SETTINGS,
    SUITES,
    perturb,
    proxy,
    reproduce,
)
from dsl_explore.experiments.cost import measure_cost
from dsl_explore.experiments.protocol import DEFAULTS, config_for
from dsl_explore.experiments.report import fmt_change, summarise, table_md
from dsl_explore.experiments.reproduce import run_key
from dsl_explore.experiments.suites import SWEEP_K, SWEEP_LAM, Suite
from dsl_explore.registry import SURROGATES

PAPER_ROWS = ["mse", "mse+dsl", "mse+ph", "mse+ph (whole batch)"]


def test_reproduce_quick_tiny_writes_results_and_tables(tmp_path):
    res = reproduce(out_dir=tmp_path, suite="paper", dims=(1,), data=("synthetic",), seeds=2,
                    quick=True, steps=4, cost=False, progress=False)
    for name in ("results.json", "table.csv", "table.md"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"] is True and saved["suite"] == "paper"
    assert [r["setting"] for r in saved["runs"]] == PAPER_ROWS * 2
    assert [r["seed"] for r in saved["runs"]] == [0] * 4 + [1] * 4
    run = saved["runs"][0]
    for key in ("mse", "psnr", "count_rate", "spurious", "lost", "betti_per_dim", "betti_total",
                "bottleneck", "seconds_per_step", "mean_signal_mse", "config"):
        assert key in run
    assert run["steps"] == 4
    assert all(0.0 <= r["count_rate"] <= 1.0 for r in saved["runs"])  # a rate, not a sum
    # the objectives of one seed saw the same held-out data and the same mean-signal baseline
    for seed in (0, 1):
        sel = [r for r in saved["runs"] if r["seed"] == seed]
        assert len({r["mean_signal_mse"] for r in sel}) == 1
    ph = next(r for r in saved["runs"] if r["setting"] == "mse+ph (whole batch)")
    assert ph["config"]["ph_samples"] is None
    assert saved["machine"]["git_commit"] is None or len(saved["machine"]["git_commit"]) >= 40
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [r["setting"] for r in rows] == PAPER_ROWS
    md = (tmp_path / "table.md").read_text()
    assert "| synthetic | 1D | mse+dsl |" in md and "quick mode" in md
    assert "bootstrap interval" in md and "mean-signal MSE" in md
    changes = {c["setting"]: c for c in res["changes"]}
    assert set(changes) == set(PAPER_ROWS[1:])
    c = changes["mse+dsl"]["betti_total"]
    assert c["n"] == 2 and (math.isnan(c["low"]) or c["low"] <= c["value"] <= c["high"])


def test_reproduce_resume_runs_only_the_missing_runs(tmp_path):
    kw = dict(out_dir=tmp_path, suite="paper", dims=(2,), data=("synthetic",), quick=True,
              steps=2, cost=False, progress=False)
    first = reproduce(seeds=1, **kw)
    seen = []
    second = reproduce(seeds=2, resume=True, **{**kw, "progress": seen.append})
    assert "4 resumed" in seen[0]
    assert len(second["runs"]) == 8
    # the resumed runs are the very same records
    old = {run_key(r): r for r in first["runs"]}
    for r in second["runs"]:
        if run_key(r) in old:
            assert r == old[run_key(r)]
    with pytest.raises(ValueError, match="cannot resume"):
        reproduce(seeds=1, resume=True, **{**kw, "steps": 3})


def test_reproduce_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="suite"):
        reproduce(suite="nope", out_dir=tmp_path)
    with pytest.raises(ValueError, match="dims"):
        reproduce(dims=(4,), out_dir=tmp_path)
    with pytest.raises(ValueError, match="data"):
        reproduce(data=("imaginary",), out_dir=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        reproduce(dims=(1,), seeds=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        reproduce(dims=(1,), jobs=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"not valid for this model|size"):
        reproduce(dims=(1,), seeds=1, size=36, out_dir=tmp_path / "x", steps=1, cost=False)
    assert not (tmp_path / "x" / "results.json").exists()


def test_reproduce_in_worker_processes_matches_one_process(tmp_path):
    kw = dict(suite="paper", dims=(1,), data=("synthetic",), seeds=1, quick=True, steps=3,
              cost=False, progress=False, threads=1)
    one = reproduce(out_dir=tmp_path / "a", jobs=1, **kw)
    two = reproduce(out_dir=tmp_path / "b", jobs=2, **kw)
    for a, b in zip(one["runs"], two["runs"], strict=True):
        assert run_key(a) == run_key(b)
        assert a["mse"] == b["mse"] and a["betti_total"] == b["betti_total"]


def test_paper_suite_compares_the_paper_objectives_on_both_data_kinds():
    su = SUITES["paper"]
    assert [s.name for s in su.settings] == PAPER_ROWS
    assert su.dims == (1, 2, 3) and su.data_kinds == ("synthetic", "real") and su.seeds >= 5
    assert [s.name for s in su.settings_for("real")] == PAPER_ROWS[:3]
    assert su.n_runs(quick=False) == 3 * 5 * (4 + 3)


def test_sweeps_suite_has_four_lambdas_four_ks_and_every_surrogate():
    su = SUITES["sweeps"]
    fields = [s.fields for s in su.settings if s.loss == "mse+dsl"]
    assert len(SWEEP_LAM) >= 4 and len(SWEEP_K) >= 4
    assert {f["lam"] for f in fields if f["k"] == 20.0 and f["surrogate"] == "tanh"} \
        == set(SWEEP_LAM)
    assert {f["k"] for f in fields if f["lam"] == 0.5 and f["surrogate"] == "tanh"} == set(SWEEP_K)
    assert {f["surrogate"] for f in fields if f["lam"] == 0.5 and f["k"] == 20.0} \
        == set(SURROGATES)
    names = [s.name for s in su.settings]
    assert len(names) == len(set(names)) and su.baseline.name == "mse"


def test_config_for_follows_the_protocol():
    cfg = config_for(1, "synthetic", SETTINGS["mse"], seed=3)
    assert (cfg.compression, cfg.lr, cfg.size) == (8, 1e-3, (256,))
    assert cfg.seed == cfg.data_seed == 3
    real = config_for(2, "real", SETTINGS["mse+dsl"], seed=0)
    assert real.data == "real" and real.size == (DEFAULTS[2]["size"],) * 2
    assert real.steps == DEFAULTS[2]["steps"]  # the same training as the synthetic data
    with pytest.raises(ValueError, match="data kind"):
        config_for(2, "fake", SETTINGS["mse"], seed=0)


def _fake_runs(base, treat):
    cfg = {"batch_size": 4, "size": [8], "data": "bumps", "compression": 8, "lr": 1e-3,
           "ph_samples": None}
    runs = []
    for seed, (b, t) in enumerate(zip(base, treat, strict=True)):
        for name, v in (("mse", b), ("mse+dsl", t)):
            runs.append({"data_kind": "synthetic", "dims": 1, "seed": seed, "setting": name,
                         "mse": 0.01, "psnr": 20.0, "count_rate": 0.1, "spurious": 1,
                         "lost": 1, "betti_per_dim": [v], "betti_total": v, "bottleneck": 0.1,
                         "seconds_per_step": 0.01, "mean_signal_mse": 0.05, "steps": 10,
                         "config": cfg})
    return runs


def test_summarise_gives_the_paired_relative_change_with_an_interval():
    suite = Suite("t", (1,), ("synthetic",), (SETTINGS["mse"], SETTINGS["mse+dsl"]))
    runs = _fake_runs([2.0, 2.2, 1.8, 2.1, 1.9], [1.0, 1.2, 0.9, 1.1, 0.8])
    summary, changes = summarise(runs, suite)
    assert [r["setting"] for r in summary] == ["mse", "mse+dsl"]
    assert summary[0]["betti_total"][0] == pytest.approx(2.0)
    (c,) = changes
    assert c["betti_total"]["value"] == pytest.approx(-50.0)
    assert c["betti_total"]["excludes_zero"] is True
    assert c["betti_total"]["low"] <= -50.0 <= c["betti_total"]["high"]
    md = table_md({"suite": "t", "settings": {"seeds": 5, "quick": False, "device": "cpu",
                   "jobs": 1, "threads": 1, "objectives": [s.to_dict() for s in suite.settings]},
                   "wall_seconds": 1.0, "runs": runs, "summary": summary, "changes": changes,
                   "cost": None})
    assert "| synthetic | 1D | -50% [" in md and "] * |" in md


def test_an_interval_that_straddles_zero_is_not_starred():
    suite = Suite("t", (1,), ("synthetic",), (SETTINGS["mse"], SETTINGS["mse+dsl"]))
    _, (c,) = summarise(_fake_runs([1.0, 2.0, 1.0, 2.0], [2.0, 1.0, 2.0, 1.0]), suite)
    assert c["betti_total"]["excludes_zero"] is False
    assert not fmt_change(c["betti_total"]).endswith("*")


def test_measure_cost_reports_ratios_to_mse():
    res = measure_cost((2,), [SETTINGS["mse"], SETTINGS["mse+ph (whole batch)"]], rounds=2,
                       steps=1, warmup=0, quick=True)
    per = res["2"]
    assert per["mse"]["ratio_to_mse"] == 1.0
    assert len(per["mse+ph (whole batch)"]["seconds_per_step_rounds"]) == 2
    assert per["mse+ph (whole batch)"]["ph_samples"] is None
    with pytest.raises(ValueError, match="rounds"):
        measure_cost((2,), [SETTINGS["mse"]], rounds=0)


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


@pytest.mark.slow
def test_sweeps_suite_quick_runs_end_to_end(tmp_path):
    res = reproduce(out_dir=tmp_path, suite="sweeps", quick=True, steps=2, progress=False)
    names = [s.name for s in SUITES["sweeps"].settings]
    assert [r["setting"] for r in res["summary"]] == names
    assert {c["setting"] for c in res["changes"]} == set(names[1:])
    assert res["cost"] is None and res["complete"]
    assert "| synthetic | 2D | mse+dsl lam=8 |" in (tmp_path / "table.md").read_text()
