"""Tests of TrainingRun (dsl_explore.training.run, .control, .step, .live): the live engine."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from _training import tiny, wait_for

import dsl_explore.training.step as training_step
from dsl_explore.training import (
    TrainingConfig,
    TrainingError,
    TrainingRun,
    load_checkpoint,
    train,
)


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
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["state"] == "stopped"


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
