"""Tests of checkpoints, resuming and run files (dsl_explore.training.checkpoint, .history)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _training import tiny, wait_for

from dsl_explore.training import (
    CheckpointError,
    TrainingRun,
    load_checkpoint,
    train,
)


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
