"""The metric registry (dsl_explore.training.metrics) and what reads it: history, tables, runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _training import tiny

import dsl_explore.training.metrics as metrics_mod
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.experiments.report import table_columns as _table_columns
from dsl_explore.training import TrainingRun, evaluate_model, load_checkpoint, train
from dsl_explore.training.history import LossBuffer, new_history
from dsl_explore.training.metrics import (
    METRICS,
    EvalBatch,
    Metric,
    compute_metrics,
    history_keys,
    metric,
    sign_mismatch_rate,
    step_columns,
    upgrade_history,
)
from dsl_explore.training.step import loss_terms


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_sign_mismatch_rate_is_a_rate_in_0_1(dims):
    y = np.random.default_rng(dims).random((2, 1, *(6,) * dims))
    assert sign_mismatch_rate(-y, y) == 1.0  # every difference flips: the old sum gave `dims`
    assert sign_mismatch_rate(y, y) == 0.0
    x = np.random.default_rng(9).random(y.shape)
    per_axis = sign_mismatch_count(x, y, reduction="mean", per_axis=True)
    assert sign_mismatch_rate(x, y) == pytest.approx(float(np.mean(per_axis)))
    assert 0.0 < sign_mismatch_rate(x, y) < 1.0
    assert metric("count_rate").upper == 1.0 and metric("count_rate").lower == 0.0


def test_evaluate_model_rate_is_within_its_registered_range():
    from dsl_explore.models import build_model

    data = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
    m = evaluate_model(build_model(2, compression=4, base_channels=4), data, bottleneck=False)
    for entry in METRICS:
        if entry.kind == "eval" and entry.key in m and not entry.per_dim:
            assert entry.lower is None or m[entry.key] >= entry.lower, entry.key
            assert entry.upper is None or m[entry.key] <= entry.upper, entry.key
    assert "bottleneck" not in m


def test_history_columns_come_from_the_registry():
    assert step_columns("mse") == ("mse", "total")
    assert step_columns("mse+ph") == ("mse", "ph", "total")
    h = new_history("mse+ph")
    assert list(h["steps"]) == ["step", "mse", "ph", "total", "lr", "lam"]
    assert list(h["evals"]) == ["step", *history_keys("eval")]
    assert list(new_history("mse")["steps"]) == ["step", "mse", "total", "lr"]
    with pytest.raises(KeyError, match="known"):
        metric("nope")
    with pytest.raises(ValueError, match="kind"):
        Metric("x", "other", "x")


def test_adding_a_metric_is_one_entry(monkeypatch):
    extra = Metric("max_err", "eval", "max error", compute=lambda b: float(
        np.max(np.abs(b.recon - b.target))), history_key="max_err", table=True)
    monkeypatch.setattr(metrics_mod, "METRICS", (*METRICS, extra))
    assert "max_err" in new_history("mse")["evals"]
    run = train(tiny(steps=2, eval_every=2, loss="mse"), progress=False)
    assert len(run.history["evals"]["max_err"]) == 2
    assert "max_err" in run.snapshot()["metrics"]
    cols = _table_columns([{"dims": 2}])
    assert cols[-1][:2] == ("max_err", "max error")


def test_table_columns_keep_their_order_and_titles():
    titles = [t for _, t, _ in _table_columns([{"dims": 3}])]
    assert titles == ["MSE", "PSNR (dB)", "sign-mismatch rate", "spurious CP", "lost CP",
                      "Betti err H0", "Betti err H1", "Betti err H2", "Betti err total",
                      "bottleneck", "s/step"]
    assert [k for k, _, _ in _table_columns([{"dims": 1}])][5] == "betti_h0"


def test_compute_metrics_live_keys_and_optional_ones():
    y = np.random.default_rng(0).random((2, 1, 16))
    batch = EvalBatch(y + 0.1, y, betti_thresholds=4)
    live = compute_metrics(batch, live=True)
    assert list(live) == list(history_keys("eval"))
    full = compute_metrics(EvalBatch(y + 0.1, y, bottleneck=True, k=20.0))
    assert {"psnr", "betti_relative", "bottleneck", "dsl"} <= set(full)
    assert full["mse"] == pytest.approx(0.01) and live["val_mse"] == full["mse"]


def test_upgrade_history_rescales_version_1_rates():
    h = new_history("mse")
    h["evals"]["count_rate"] = [2.0, None, 1.0]
    h["evals"]["betti_total"] = [3.0, 1.0, 2.0]
    upgrade_history(h, spatial_dims=2, version=2)
    assert h["evals"]["count_rate"] == [2.0, None, 1.0]
    upgrade_history(h, spatial_dims=2, version=1)
    assert h["evals"]["count_rate"] == [1.0, None, 0.5]
    assert h["evals"]["betti_total"] == [3.0, 1.0, 2.0]


def test_resuming_an_old_checkpoint_rescales_its_rates(tmp_path):
    cfg = tiny(steps=8, checkpoint_every=4, keep_checkpoints=3, spatial_dims=2, size=16,
               data="blobs", data_options={})
    full = train(cfg, run_dir=tmp_path / "full", progress=False)
    mid = tmp_path / "full" / "checkpoints" / "step_00000004.pt"
    state = load_checkpoint(mid)
    assert state["metrics_version"] == 2
    del state["metrics_version"], state["path"]  # as written before the rate was fixed
    state["history"]["evals"]["count_rate"] = [2 * v for v in state["history"]["evals"]
                                               ["count_rate"]]
    torch.save(state, tmp_path / "old.pt")
    resumed = TrainingRun.from_checkpoint(tmp_path / "old.pt", run_dir=tmp_path / "r").run()
    assert resumed.history["evals"]["count_rate"] == pytest.approx(
        full.history["evals"]["count_rate"], rel=1e-12)
    assert all(0 <= v <= 1 for v in resumed.history["evals"]["count_rate"])


def test_loss_buffer_and_loss_terms():
    buf = LossBuffer(2, "mse+dsl", torch.device("cpu"))
    assert buf.columns == ("mse", "dsl", "total") and not buf.full
    buf.add(torch.tensor([1.0, 2.0, 3.0]), step=1, lr=0.1, lam=0.5)
    buf.add(torch.tensor([4.0, 5.0, 6.0]), step=2, lr=0.1, lam=0.5)
    assert buf.full
    with pytest.raises(RuntimeError, match="full"):
        buf.add(torch.zeros(3), step=3, lr=0.1, lam=0.5)
    assert buf.drain() == [(1, 0.1, 0.5, [1.0, 2.0, 3.0]), (2, 0.1, 0.5, [4.0, 5.0, 6.0])]
    assert len(buf) == 0 and buf.drain() == []
    x = torch.rand(2, 1, 16)
    for loss in ("mse", "mse+dsl", "mse+ph"):
        cfg = dataclasses.replace(tiny(loss=loss, lam=0.5), size=16)
        terms = loss_terms(x + 0.1, x, cfg)
        assert len(terms) == len(step_columns(loss))
        if loss != "mse":
            assert float(terms[-1]) == pytest.approx(float(terms[0] + 0.5 * terms[1]))
