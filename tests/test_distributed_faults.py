"""A rank that dies: the others stop within a bounded time with a clear message, the newest
checkpoint stays loadable, and rerunning the same command resumes."""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest
from _torchrun import TINY_TOML, launch, run_torchrun

from dsl_explore.training import load_checkpoint
from dsl_explore.training.checkpoint import list_checkpoints
from dsl_explore.training.control_file import write_control

pytestmark = pytest.mark.slow


def _rank_pid(proc, rank: int) -> int:
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.environ().get("LOCAL_RANK") == str(rank):
                return child.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    raise AssertionError(f"no worker of rank {rank}")


def test_killing_one_rank_stops_the_other_and_the_same_command_resumes(tmp_path):
    toml = TINY_TOML.replace("steps = 6", "steps = 200") + "checkpoint_every = 5\n"
    (tmp_path / "run.toml").write_text(toml)
    d = tmp_path / "run"
    args = ["--config", str(tmp_path / "run.toml"), "--run-dir", str(d), "--no-progress",
            "--control-every", "1", "--timeout", "30"]
    log = tmp_path / "first.txt"
    with launch(2, args, log=log) as proc:
        deadline = time.monotonic() + 90
        while not list_checkpoints(d):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        write_control(d, run="paused")  # hold it before it finishes
        while json.loads((d / "status.json").read_text()).get("state") != "paused":
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        psutil.Process(_rank_pid(proc, 1)).send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        rc = proc.wait(timeout=60)
        stopped_after = time.monotonic() - t0
    out = log.read_text()
    assert rc != 0, out
    assert stopped_after < 45, (stopped_after, out)
    assert "Signal 9 (SIGKILL) received by PID" in out or "exitcode  : -9" in out, out
    ckpt = load_checkpoint(d)
    assert 0 < ckpt["step"] < 200
    rc, out2 = run_torchrun(2, args, log=tmp_path / "second.txt")
    assert rc == 0, out2
    assert f"resuming from {ckpt['path']} at step {ckpt['step']}" in out2
    hist = json.loads((d / "history.json").read_text())
    assert hist["steps"]["step"] == list(range(1, 201))
    assert load_checkpoint(d)["step"] == 200
