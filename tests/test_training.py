"""Tests of the live training engine (dsl_explore.training)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dsl_explore.training.step as training_step
from dsl_explore.training import (
    CheckpointError,
    TrainingConfig,
    TrainingError,
    TrainingRun,
    load_checkpoint,
    train,
)

TINY_1D = dict(
    spatial_dims=1, size=64, n_samples=40, batch_size=8, base_channels=4, data="bumps",
    data_options={"n_extrema": 6}, eval_every=4, eval_samples=2, device="cpu", lr=3e-3,
)


def tiny(**kw) -> TrainingConfig:
    return TrainingConfig(**{**TINY_1D, **kw})


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lam", -0.1),
        ("lam", float("nan")),
        ("k", 0.0),
        ("loss", "l1"),
        ("surrogate", "relu"),
        ("lr", 0),
        ("steps", -1),
        ("batch_size", 0),
        ("eval_every", 0),
        ("device", "tpu"),
        ("amp", "yes"),
        ("spatial_dims", 4),
        ("size", 1),
        ("size", [8, 8]),
        ("weights", [1.0, 1.0]),
        ("weights", [-1.0]),
        ("val_fraction", 1.0),
        ("data", "noise"),
        ("compression", True),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=repr(field)):
        tiny(**{field: value})


def test_config_dict_and_toml_round_trip(tmp_path):
    cfg = tiny(loss="mse+dsl", weights=[0.5], lam=0.25, data_options={"n_extrema": 5})
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainingConfig.from_toml(cfg.to_toml()) == cfg
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert TrainingConfig.from_toml(path) == cfg
    assert TrainingConfig.from_toml("[training]\nlam = 0.0\n").lam == 0.0
    with pytest.raises(ValueError, match="unknown config field"):
        TrainingConfig.from_dict({"lamda": 1.0})
    with pytest.raises(ValueError, match="invalid TOML"):
        TrainingConfig.from_toml("lam = = 1\n")


def test_bad_shapes_and_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="not valid for this model"):
        TrainingRun(tiny(size=40))  # 1D, compression 16 -> depth 4 -> multiple of 16
    with pytest.raises(ValueError, match="batch_size"):
        TrainingRun(tiny(batch_size=64))
    with pytest.raises(ValueError, match="spatial_dims"):
        TrainingRun(tiny(data="array"), data=np.random.default_rng(0).random((8, 1, 16, 16)))


# -- training ----------------------------------------------------------------------------------


def test_short_cpu_training_decreases_mse():
    run = train(tiny(loss="mse", steps=60, eval_every=20), progress=False)
    mse = run.history["steps"]["mse"]
    assert len(mse) == 60
    assert np.mean(mse[-5:]) < 0.7 * np.mean(mse[:5])
    evals = run.history["evals"]
    assert evals["step"] == [0, 20, 40, 60]
    assert evals["val_mse"][-1] < evals["val_mse"][0]
    snap = run.snapshot()
    assert snap["step"] == 60 and snap["state"] == "finished"
    assert snap["reconstruction"].shape == snap["target"].shape == (2, 1, 64)
    assert set(snap["metrics"]) >= {"count_rate", "spurious", "lost", "betti_total"}
    assert run.seconds_per_step > 0


def test_pause_resume_stop_from_another_thread(tmp_path):
    run = TrainingRun(tiny(steps=10**6, loss="mse+dsl"), run_dir=tmp_path / "run").start()
    wait_for(lambda: run.step >= 3)
    run.pause()
    assert run.state == "paused"
    s = run.step
    time.sleep(0.15)
    assert run.step == s
    assert run.history["steps"]["step"][-1] == s  # paused runs have flushed their buffer
    run.resume()
    wait_for(lambda: run.step > s + 2)
    run.stop()
    assert run.state == "stopped"
    assert not run.is_alive()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == run.step
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist["steps"]["step"][-1] == run.step
    assert (tmp_path / "run" / "config.toml").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == run.step


def test_live_lambda_change_shows_in_history():
    run = TrainingRun(tiny(steps=10**6, loss="mse+dsl", lam=0.0)).start()
    wait_for(lambda: run.step >= 2)
    run.pause()
    s = run.step
    run.set(lam=2.0, k=30.0)
    run.resume()
    wait_for(lambda: run.step >= s + 3)
    run.stop()
    h = run.history
    (event,) = h["events"]
    assert event == {"step": s + 1, "event": "set", "changes": {"lam": 2.0, "k": 30.0}}
    st = h["steps"]
    for i, step in enumerate(st["step"]):
        lam = 0.0 if step <= s else 2.0
        assert st["lam"][i] == lam
        assert st["total"][i] == pytest.approx(st["mse"][i] + lam * st["dsl"][i], rel=1e-5)
    assert run.config.lam == 2.0 and run.config.k == 30.0
    assert st["total"][-1] > st["mse"][-1]  # the DSL term now counts


def test_set_rejects_bad_values():
    run = TrainingRun(tiny(loss="mse", steps=1))
    with pytest.raises(ValueError, match="lam"):
        run.set(lam=1.0)
    run2 = TrainingRun(tiny(loss="mse+dsl", steps=1))
    with pytest.raises(ValueError, match="lam"):
        run2.set(lam=-1.0)
    with pytest.raises(ValueError, match="cannot change"):
        run2.set(steps=3)
    with pytest.raises(ValueError, match="weights"):
        run2.set(weights=[1.0, 2.0])
    run2.set(lr=1e-4, surrogate="erf", weights=[0.5])


def test_kill_and_resume_gives_the_same_history(tmp_path):
    cfg = tiny(steps=16, loss="mse+dsl", checkpoint_every=8, keep_checkpoints=5, eval_every=4)
    full = train(cfg, run_dir=tmp_path / "full", progress=False)
    mid = tmp_path / "full" / "checkpoints" / "step_00000008.pt"
    assert mid.is_file()
    resumed = TrainingRun.from_checkpoint(mid, run_dir=tmp_path / "resumed")
    assert resumed.step == 8
    resumed.start().join()
    assert resumed.history == full.history
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    # a live change before the kill is restored too
    run = TrainingRun(tiny(steps=8, loss="mse+dsl"), run_dir=tmp_path / "live")
    run.set(lam=1.5)
    run.run()
    again = TrainingRun.from_checkpoint(tmp_path / "live", steps=12)
    assert again.config.lam == 1.5 and again.config.steps == 12
    again.run()
    assert again.step == 12


def test_exception_in_thread_reaches_the_caller(tmp_path, monkeypatch):
    real = training_step.directional_sign_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ZeroDivisionError("injected failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(training_step, "directional_sign_loss", flaky)
    run = TrainingRun(tiny(steps=50, checkpoint_every=2), run_dir=tmp_path / "r").start()
    with pytest.raises(TrainingError, match="injected failure") as info:
        run.join()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert "flaky" in info.value.traceback_text and "flaky" in str(info.value)
    assert isinstance(run.error, ZeroDivisionError) and run.state == "failed"
    with pytest.raises(TrainingError):
        run.raise_if_failed()
    with pytest.raises(TrainingError):
        run.stop()
    # the last checkpoint and the history survive
    assert load_checkpoint(tmp_path / "r")["step"] == 4
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert hist["steps"]["step"] == [1, 2, 3, 4]


def test_keyboard_interrupt_saves_and_reraises(tmp_path, monkeypatch):
    real = training_step.directional_sign_loss
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training_step, "directional_sign_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(steps=50), run_dir=tmp_path / "k", progress=False)
    assert load_checkpoint(tmp_path / "k")["step"] == 3
    assert json.loads((tmp_path / "k" / "history.json").read_text())["steps"]["step"] == [1, 2, 3]


def test_bad_checkpoints_are_clear_errors_and_write_nothing(tmp_path):
    train(tiny(steps=2), run_dir=tmp_path / "a", progress=False)
    ckpt = tmp_path / "a" / "checkpoints" / "step_00000002.pt"
    before = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read"):
        TrainingRun.from_checkpoint(corrupt)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        TrainingRun.from_checkpoint(truncated)
    other = torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    del other
    with pytest.raises(CheckpointError, match="not a dsl_explore"):
        TrainingRun.from_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        TrainingRun.from_checkpoint(tmp_path)
    # a checkpoint of another model
    with pytest.raises(CheckpointError, match="another"):
        TrainingRun.from_checkpoint(ckpt, config=tiny(steps=2, base_channels=8))
    # a state dict that does not fit its config
    state = torch.load(ckpt, weights_only=True)
    state["model_state"] = {k: v[..., :1] for k, v in state["model_state"].items()}
    torch.save(state, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        TrainingRun.from_checkpoint(tmp_path / "tampered.pt", run_dir=tmp_path / "t")
    assert not (tmp_path / "t").exists()
    after = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    assert after == before


def test_existing_run_dir_is_an_error_unless_overwrite(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        TrainingRun(tiny(steps=1), run_dir=d)
    assert (d / "keep.txt").read_text() == "mine"
    train(tiny(steps=1), run_dir=d, overwrite=True, progress=False)
    assert (d / "checkpoints" / "step_00000001.pt").is_file()
    # resuming into another non-empty directory is refused too
    with pytest.raises(FileExistsError):
        TrainingRun.from_checkpoint(d, run_dir=d.parent.parent / tmp_path.name)


def test_history_files_and_explicit_checkpoint(tmp_path):
    run = train(tiny(steps=5, eval_every=2), progress=False)
    paths = run.save_history(tmp_path / "h.csv") + run.save_history(tmp_path / "h.json")
    csv_text = paths[0].read_text().splitlines()
    assert csv_text[0].startswith("step,mse,dsl,total,lr,lam,val_mse")
    assert "betti_h0" in csv_text[0]
    assert len(csv_text) == 1 + 6  # evals at 0, 2, 4, 5 plus train steps 1..5
    assert json.loads(paths[1].read_text())["steps"]["step"] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        run.save_history(tmp_path / "h.txt")
    with pytest.raises(ValueError, match="needs a path"):
        run.checkpoint()
    p = run.checkpoint(tmp_path / "x.pt")
    assert load_checkpoint(p)["step"] == 5


def test_checkpoint_while_running_and_ph_loss(tmp_path):
    run = TrainingRun(tiny(steps=10**6, loss="mse+ph", lam=0.5, ph_samples=2)).start()
    wait_for(lambda: run.step >= 2)
    path = Path(run.checkpoint(tmp_path / "live.pt"))
    run.stop()
    ck = load_checkpoint(path)
    assert 2 <= ck["step"] <= run.step
    assert "ph" in run.history["steps"] and run.history["steps"]["ph"][0] >= 0.0


def test_user_array_data():
    data = np.random.default_rng(0).random((12, 1, 16, 16))
    run = train(
        TrainingConfig(data="array", spatial_dims=2, size=16, batch_size=4, steps=2,
                       base_channels=4, eval_every=1, device="cpu"),
        data=data,
        progress=False,
    )
    assert run.step == 2
    with pytest.raises(ValueError, match="no data was given"):
        TrainingRun(TrainingConfig(data="array", spatial_dims=2, size=16))


def test_listener_and_amp_ignored_on_cpu():
    seen = []
    run = TrainingRun(tiny(steps=4, eval_every=2, amp=True))
    run.add_listener(lambda snap: seen.append(snap["step"]))
    run.run()
    assert seen == [2, 4]
    assert not run.amp  # amp is CUDA-only; on the CPU training stays float32
    assert all(np.isfinite(run.history["steps"]["total"]))


@pytest.mark.cuda
def test_cuda_amp_training_runs(cuda_device):
    run = train(tiny(steps=6, device="cuda", amp=True, eval_every=3), progress=False)
    assert run.device.type == "cuda" and run.amp
    assert all(np.isfinite(run.history["steps"]["total"]))
    assert run.snapshot()["reconstruction"].dtype == np.float32
