"""Multi-process training (torchrun, gloo on loopback): the same history as one process.

The tolerance of the equivalence is derived from float32 arithmetic. Two ranks compute each
loss term as the mean of two shard means and DDP averages two shard gradients; one process
sums the same products in another order. With pairwise summation over ``n`` elements a mean is
off by at most ``ceil(log2 n)`` ulps relative, and each step starts from parameters that carry
the previous steps' differences, so after ``s`` steps the relative difference of a loss term is
bounded by ``s * ceil(log2 n) * eps32`` (``eps32 = 2**-23``), with ``n`` the elements of a
global batch. (Measured: about 1 ulp.)
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _torchrun import TINY_TOML, run_torchrun

from dsl_explore.training import TrainingConfig, TrainingRun, load_checkpoint
from dsl_explore.training.distributed import (
    DistributedStepper,
    broadcast_object,
    is_distributed,
    shard_of,
)

pytestmark = pytest.mark.slow

EPS32 = float(np.finfo(np.float32).eps)


def _tolerance(cfg: TrainingConfig, steps: int) -> float:
    n = cfg.batch_size * int(np.prod(cfg.size))
    return steps * math.ceil(math.log2(n)) * EPS32


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    (d / "run.toml").write_text(TINY_TOML + "checkpoint_every = 3\n")
    rc, out = run_torchrun(2, ["--config", str(d / "run.toml"), "--run-dir", str(d / "run"),
                               "--no-progress"], log=d / "log.txt")
    assert rc == 0, out
    return d, out


def test_two_gloo_ranks_give_the_history_of_one_process(two_rank_run):
    d, out = two_rank_run
    cfg = TrainingConfig.from_toml(d / "run.toml")
    one = TrainingRun(cfg).run().history
    two = json.loads((d / "run" / "history.json").read_text())
    tol = _tolerance(cfg, cfg.steps)
    assert two["steps"]["step"] == one["steps"]["step"] == list(range(1, 7))
    for col in ("mse", "dsl", "total"):
        a, b = np.array(one["steps"][col]), np.array(two["steps"][col])
        assert np.all(np.abs(a - b) <= tol * np.abs(a)), (col, a, b, tol)
    assert two["evals"]["step"] == one["evals"]["step"]
    np.testing.assert_allclose(two["evals"]["val_mse"], one["evals"]["val_mse"], rtol=tol)
    assert "done: 6 steps on 2 process(es) (gloo)" in out


def test_the_config_records_world_size_and_global_batch(two_rank_run):
    d, _ = two_rank_run
    import tomllib

    doc = tomllib.loads((d / "run" / "config.toml").read_text())
    assert doc["launch"] == {"world_size": 2, "global_batch": 8, "per_rank_batch": 4,
                             "backend": "gloo"}
    assert TrainingConfig.from_toml(d / "run" / "config.toml") == \
        TrainingConfig.from_toml(d / "run.toml")
    status = json.loads((d / "run" / "status.json").read_text())
    assert (status["state"], status["world_size"], status["global_batch"]) == ("finished", 2, 8)


def test_a_checkpoint_of_two_ranks_resumes_on_one(two_rank_run):
    d, _ = two_rank_run
    cfg = TrainingConfig.from_toml(d / "run.toml")
    ckpt = d / "run" / "checkpoints" / "step_00000003.pt"
    assert load_checkpoint(ckpt)["step"] == 3
    resumed = TrainingRun.from_checkpoint(ckpt, run_dir=d / "resumed").run().history
    one = TrainingRun(cfg).run().history
    tol = _tolerance(cfg, cfg.steps)
    a, b = np.array(one["steps"]["total"]), np.array(resumed["steps"]["total"])
    assert resumed["steps"]["step"] == list(range(1, 7))
    assert np.all(np.abs(a - b) <= tol * np.abs(a)), (a, b)


def test_without_a_process_group():
    assert not is_distributed()
    assert broadcast_object({"a": 1}) == {"a": 1}
    assert shard_of(np.arange(5), rank=0, world_size=2).tolist() == [0, 2, 4]
    with pytest.raises(RuntimeError, match="process group"):
        DistributedStepper(None, None, TrainingConfig(), None)  # type: ignore[arg-type]


def test_a_global_batch_the_world_does_not_divide_is_refused(tmp_path):
    (tmp_path / "run.toml").write_text(TINY_TOML.replace("batch_size = 8", "batch_size = 7"))
    rc, out = run_torchrun(2, ["--config", str(tmp_path / "run.toml"), "--run-dir",
                               str(tmp_path / "run"), "--no-progress"], log=tmp_path / "log")
    assert rc != 0
    assert "must be a multiple of the world size (2)" in out


def test_cli_train_nproc_launches_torchrun(tmp_path, monkeypatch, capfd):
    from _torchrun import ROOT

    from dsl_explore.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    argv = ["train", "--nproc", "1", "--run-dir", str(tmp_path / "run"), "--no-progress",
            "--spatial-dims", "1", "--size", "32", "--n-samples", "24", "--batch-size", "4",
            "--base-channels", "2", "--compression", "4", "--steps", "4", "--eval-every", "2",
            "--device", "cpu"]
    assert main(argv) == 0
    out, err = capfd.readouterr()
    assert "torch.distributed.run --standalone --nproc-per-node 1 -m dsl_explore.train" in err
    assert "done: 4 steps on 1 process(es) (gloo)" in out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 4
    assert main(["train", "--nproc", "0", "--run-dir", str(tmp_path / "x")]) == 2
