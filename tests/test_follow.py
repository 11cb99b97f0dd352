"""Following and steering a run from another process: live files, the control file and
``TrainingDashboard.follow``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import numpy as np
import pytest
from _torchrun import TINY_TOML, launch
from _training import tiny

from dsl_explore.training import TrainingRun
from dsl_explore.training.control_file import (
    CONTROL_FILE,
    ControlChannel,
    read_control,
    write_control,
)
from dsl_explore.training.follow import RunDirectory


def _wait(pred, timeout, what, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None and not pred():
            raise AssertionError(f"the run ended before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" +
                                 ("" if log is None else f":\n{log.read_text()}"))
        time.sleep(0.05)


def _run_with_files(tmp_path, **kw):
    run = TrainingRun(tiny(steps=20, eval_every=4, loss="mse+dsl", **kw), run_dir=tmp_path / "r",
                      live_files=True)
    run.control_channel = ControlChannel(tmp_path / "r", every=1)
    return run


def test_a_bad_control_file_is_refused_whole_and_logged_never_crashing(tmp_path):
    run = _run_with_files(tmp_path)
    d = tmp_path / "r"
    doc = {"format": "dsl_explore.control/1", "seq": 1, "run": "running"}
    writes = {
        4: b'{"format": "dsl_explore.control/1", "settings": {"k": ',  # truncated JSON
        8: json.dumps({**doc, "settings": {"lam": 2.0, "k": -1.0}}).encode(),  # k out of range
        12: json.dumps({**doc, "settings": {"k": 33.0, "lam": 0.25}}).encode(),
        16: json.dumps({**doc, "settings": {"k": 33.0, "lam": 0.25}, "run": "stopped"}).encode(),
    }
    run.add_listener(lambda snap: (d / CONTROL_FILE).write_bytes(writes[snap["step"]])
                     if snap["step"] in writes else None)
    run.run()
    ev = run.history["events"]
    refused = [e for e in ev if e["event"] == "control_refused"]
    assert [e["step"] for e in refused] == [5, 9]
    assert "not valid JSON" in refused[0]["reason"] and "k" in refused[1]["reason"]
    sets = [e for e in ev if e["event"] == "set"]
    assert sets == [{"step": 13, "event": "set", "changes": {"k": 33.0, "lam": 0.25}}]
    assert run.history["steps"]["lam"][11:13] == [0.5, 0.25]  # nothing of step 9's file
    assert [e["step"] for e in ev if e["event"] == "stop"] == [17]
    assert (run.state, run.step) == ("stopped", 16)
    status = json.loads((d / "status.json").read_text())
    assert (status["state"], status["step"], status["config"]["k"]) == ("stopped", 16, 33.0)


def test_control_file_written_before_the_start_is_ignored(tmp_path):
    (tmp_path / "r").mkdir()
    write_control(tmp_path / "r", run="stopped")
    run = TrainingRun(tiny(steps=6, eval_every=3), run_dir=tmp_path / "r", live_files=True,
                      overwrite=True)
    run.control_channel = ControlChannel(tmp_path / "r", every=1)
    assert run.run().state == "finished"


def test_write_control_merges_settings_and_replaces_a_bad_file(tmp_path):
    write_control(tmp_path, settings={"k": 30})
    write_control(tmp_path, settings={"lam": 1}, run="paused")
    assert read_control(tmp_path) == {"seq": 2, "settings": {"k": 30, "lam": 1}, "run": "paused"}
    (tmp_path / CONTROL_FILE).write_text("{")
    write_control(tmp_path, settings={"lr": 0.01})
    assert read_control(tmp_path)["settings"] == {"lr": 0.01}
    with pytest.raises(ValueError, match="run must be one of"):
        write_control(tmp_path, run="gone")


def test_run_directory_reads_a_finished_run_and_a_vanished_one(tmp_path):
    run = TrainingRun(tiny(steps=8, eval_every=4), run_dir=tmp_path / "r", live_files=True)
    run.run()
    rd = RunDirectory(tmp_path / "r")
    assert rd.status()["state"] == "finished" and rd.status()["step"] == 8
    assert rd.history()["steps"]["step"] == list(range(1, 9))
    snap = rd.snapshot()
    assert snap["step"] == 8
    np.testing.assert_array_equal(snap["reconstruction"], run.snapshot()["reconstruction"])
    assert rd.config() == run.config
    # a status that says running, written by a process that is gone
    dead = subprocess.Popen(["true"])
    dead.wait()
    st = json.loads((tmp_path / "r" / "status.json").read_text())
    st.update(state="running", pid=dead.pid)
    (tmp_path / "r" / "status.json").write_text(json.dumps(st))
    gone = RunDirectory(tmp_path / "r").status()
    assert gone["state"] == "failed" and "process ended" in gone["error"]
    with pytest.raises(FileNotFoundError):
        RunDirectory(tmp_path / "nothing")


@pytest.mark.slow
def test_follow_sees_a_two_rank_run_grow_and_a_k_change_lands_on_both_ranks_at_one_step(
        tmp_path):
    from dsl_explore.widgets import TrainingDashboard

    toml = TINY_TOML.replace("steps = 6", "steps = 100000").replace("eval_every = 3",
                                                                    "eval_every = 5")
    (tmp_path / "run.toml").write_text(toml)
    d, log = tmp_path / "run", tmp_path / "log.txt"
    args = ["--config", str(tmp_path / "run.toml"), "--run-dir", str(d), "--no-progress",
            "--control-every", "2"]
    with launch(2, args, log=log) as proc:
        _wait(lambda: (d / "config.toml").is_file(), 90, "config.toml", proc, log)
        dash = TrainingDashboard.follow(d, autorefresh=False)
        try:
            _wait(lambda: (dash.refresh()["snapshot_step"] or 0) >= 5, 60, "an evaluation",
                  proc, log)
            first = dash.state()
            _wait(lambda: dash.refresh()["history_points"]["total"] >
                  first["history_points"]["total"], 60, "the history to grow", proc, log)
            _wait(lambda: dash.refresh()["step"] > first["step"], 60, "the step to grow", proc,
                  log)
            assert dash.state()["run_state"] == "running"
            assert dash.recon_figure is not None and "2 ranks" in dash.state()["device"]
            dash.k_slider.value = 37.0
            assert dash.last_error is None, dash.message.value
            _wait(lambda: dash.refresh()["k"] == 37.0 and dash.run.config.k == 37.0, 60,
                  "the k change", proc, log)
            dash.buttons["pause"].click()
            _wait(lambda: dash.refresh()["run_state"] == "paused", 60, "the pause", proc, log)
            dash.buttons["resume"].click()
            _wait(lambda: dash.refresh()["run_state"] == "running", 60, "the resume", proc, log)
            dash.buttons["stop"].click()
            proc.wait(timeout=60)
            _wait(lambda: dash.refresh()["run_state"] == "stopped", 10, "stopped")
        finally:
            dash.close()
    assert proc.returncode == 0, log.read_text()
    out = log.read_text()
    steps = {r: set(re.findall(rf"rank {r}\]: event at step (\d+): .*'k': 37\.0", out))
             for r in (0, 1)}
    assert len(steps[0]) == 1 and steps[0] == steps[1], out
    (s,) = steps[0]
    hist = json.loads((d / "history.json").read_text())
    sets = [e for e in hist["events"] if e["event"] == "set"]
    assert sets == [{"step": int(s), "event": "set", "changes": {"k": 37.0}}]
    assert [e["event"] for e in hist["events"] if e["event"] != "set"] == \
        ["pause", "resume", "stop"]
    assert int(s) % 2 == 1  # read before a step s with (s - 1) % control_every == 0
    assert not os.path.exists(d / "snapshot.npz.tmp")
