"""Fault sweep, the command line (issue 12, item 1 and SIGTERM): every user error is one line
naming the input and what to do, exit 2 (usage) or 1 (runtime), never a traceback; ``--debug``
shows one; a failed export leaves no directory behind; SIGTERM saves the run and exits 143."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _faults import one_line_error, tmpfs

from dsl_explore import cli
from dsl_explore.training import Terminated, TrainingConfig, TrainingRun, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--spatial-dims", "1", "--size", "64", "--n-samples", "20", "--batch-size", "4",
        "--base-channels", "4", "--eval-every", "2", "--eval-samples", "2", "--device", "cpu",
        "--no-progress"]


def _train(tmp_path: Path, *extra: str) -> int:
    return cli.main(["train", "--run-dir", str(tmp_path / "run"), "--steps", "1", *TINY, *extra])


# ------------------------------------------------------------------------------- bad data files


def test_missing_npz_key(tmp_path, capsys):
    f = tmp_path / "multi.npz"
    np.savez(f, a=np.zeros((4, 1, 64)), b=np.zeros((4, 1, 64)))
    assert _train(tmp_path, "--data", "array", "--data-path", str(f), "--data-key", "zz") == 2
    one_line_error(capsys.readouterr().err, "'zz'", "multi.npz", "'a', 'b'")
    assert not (tmp_path / "run").exists()


def test_corrupt_npz(tmp_path, capsys):
    f = tmp_path / "bad.npz"
    f.write_bytes(b"PK\x03\x04" + b"garbage" * 20)
    assert _train(tmp_path, "--data", "array", "--data-path", str(f)) == 2
    one_line_error(capsys.readouterr().err, "bad.npz", "not a valid .npz")


def test_144_byte_npy_declaring_a_terabyte_shape(tmp_path, capsys):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += " " * (128 - 10 - len(header) - 1) + "\n"
    f = tmp_path / "bomb.npy"
    f.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                  + b"\0" * 16)
    assert f.stat().st_size == 144
    assert _train(tmp_path, "--data", "array", "--data-path", str(f)) == 2
    one_line_error(capsys.readouterr().err, "bomb.npy", "(1000000000000,)")


# ---------------------------------------------------------------------------- sizes in configs


def _toml(tmp_path: Path, **fields) -> str:
    cfg = TrainingConfig(spatial_dims=1, size=64, n_samples=20, batch_size=4, base_channels=4,
                         eval_samples=2, device="cpu", steps=2)
    text = cfg.to_toml()
    for k, v in fields.items():  # appended raw: the TOML value is written as given
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{k} ="))
        text += f"\n{k} = {v}\n"
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("field", "value"), [("n_samples", 10**11), ("size", 10**9)])
def test_config_sizes_beyond_memory_are_refused_before_allocating(tmp_path, capsys, field,
                                                                   value):
    conf = _toml(tmp_path, **{field: value})
    rc = cli.main(["train", "--config", conf, "--run-dir", str(tmp_path / "run"),
                   "--no-progress"])
    assert rc == 2
    one_line_error(capsys.readouterr().err, "'n_samples'", "'size'", str(value),
                   "of memory is available", "lower n_samples or size")
    assert not (tmp_path / "run").exists()


def test_huge_eval_every_allocates_a_bounded_buffer(tmp_path, capsys):
    conf = _toml(tmp_path, eval_every=10**12)
    run = TrainingRun(TrainingConfig.from_toml(conf))
    assert run._buffer._values.shape[0] <= 4096  # was eval_every rows: 12 TB
    assert cli.main(["train", "--config", conf, "--run-dir", str(tmp_path / "run"),
                     "--no-progress"]) == 0
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist["steps"]["step"] == [1, 2] and hist["evals"]["step"] == [0, 2]
    assert "done: 2 steps" in capsys.readouterr().out


# ---------------------------------------------------------------------------- export failures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("export") / "run"
    cfg = TrainingConfig(spatial_dims=1, size=32, n_samples=12, batch_size=4, base_channels=4,
                         eval_every=1, eval_samples=2, steps=2, device="cpu")
    TrainingRun(cfg, run_dir=d).run()
    return d


def test_export_into_a_read_only_directory(run_dir, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as ro:
        out = ro / "figs"
        assert cli.main(["export", str(run_dir), "--format", "html", "--out", str(out)]) == 1
        one_line_error(capsys.readouterr().err, str(out), "Read-only file system",
                       "write somewhere else")
        assert not out.exists()


def test_export_onto_a_full_disk_leaves_no_directory(run_dir, tmp_path, capsys):
    with tmpfs(tmp_path / "full", size="64k") as full:
        out = full / "a" / "figs"
        assert cli.main(["export", str(run_dir), "--format", "html", "--out", str(out)]) == 1
        one_line_error(capsys.readouterr().err, "No space left on device", "free some space")
        assert list(full.iterdir()) == []  # neither figs nor its new parent a/ is left
        # an existing output directory is kept, with nothing half-written in it
        (full / "mine").mkdir()
        (full / "mine" / "notes.txt").write_text("keep")
        assert cli.main(["export", str(run_dir), "--format", "html", "--out",
                         str(full / "mine")]) == 1
        capsys.readouterr()
        assert sorted(p.name for p in (full / "mine").iterdir()) == ["notes.txt"]


def test_export_with_debug_shows_the_os_error(run_dir, tmp_path):
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as ro, pytest.raises(OSError) as e:
        cli.main(["--debug", "export", str(run_dir), "--format", "html", "--out",
                  str(ro / "figs")])
    assert e.value.errno == errno.EROFS


# ---------------------------------------------------------------------------- the error path


@pytest.mark.parametrize(("exc", "status", "needles"), [
    (OSError(errno.ENOSPC, "No space left on device", "out/x.png"), 1,
     ["'out/x.png'", "No space left", "free some space"]),
    (OSError(errno.EROFS, "Read-only file system", "out"), 1, ["'out'", "read-only"]),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 2, ["'/root/x'"]),
    (MemoryError("Unable to allocate 5.8 TiB"), 1, ["out of memory", "5.8 TiB", "smaller"]),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"), 1,
     ["out of memory", "smaller sizes"]),
    (ValueError("config field 'lam' must be >= 0"), 2, ["error:", "'lam'"]),
    (ZeroDivisionError("division by zero"), 1, ["internal error", "ZeroDivisionError", "--debug"]),
    (Terminated(signal.SIGTERM, step=7), 143, ["terminated by SIGTERM at step 7", "saved in r"]),
    (Terminated(signal.SIGHUP, step=1), 129, ["SIGHUP"]),
    (KeyboardInterrupt(), 130, ["interrupted"]),
])
def test_every_error_is_one_line_with_its_status(capsys, exc, status, needles):
    def add_parser(subparsers):
        p = subparsers.add_parser("boom")
        p.add_argument("--run-dir", default="r")

        def fail(args):
            raise exc

        p.set_defaults(func=fail)

    cli.register(add_parser)
    try:
        assert cli.main(["boom"]) == status
        one_line_error(capsys.readouterr().err, *needles)
        if not isinstance(exc, Terminated):
            with pytest.raises(type(exc)):
                cli.main(["--debug", "boom"])
    finally:
        cli.REGISTRARS.remove(add_parser)


def test_a_plain_system_exit_passes_through():
    def add_parser(subparsers):
        p = subparsers.add_parser("leave")
        p.set_defaults(func=lambda args: sys.exit(5))

    cli.register(add_parser)
    try:
        with pytest.raises(SystemExit) as e:
            cli.main(["leave"])
        assert e.value.code == 5
    finally:
        cli.REGISTRARS.remove(add_parser)


# ---------------------------------------------------------------------------- SIGTERM


def _wait(pred, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.05)


@pytest.mark.slow
def test_train_stopped_by_sigterm_saves_and_resumes(tmp_path):
    sig = signal.SIGTERM
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsl_explore.cli", "train", "--run-dir", str(run),
         "--steps", "1000000", "--checkpoint-every", "3", *TINY, "--eval-every", "1000"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait(lambda: (run / "checkpoints").is_dir() and any(
            p.suffix == ".pt" for p in (run / "checkpoints").iterdir()), proc)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    name = signal.Signals(sig).name
    assert f"terminated by {name} at step" in err and "Traceback" not in err
    ck = load_checkpoint(run)
    step = ck["step"]
    assert step >= 3 and f"at step {step};" in err
    hist = json.loads((run / "history.json").read_text())
    assert hist["steps"]["step"] == list(range(1, step + 1))
    assert json.loads((run / "metrics.json").read_text())["step"] == step
    assert cli.main(["train", "--run-dir", str(run), "--resume", str(run), "--steps",
                     str(step + 2), "--no-progress"]) == 0
    assert load_checkpoint(run)["step"] == step + 2
    hist = json.loads((run / "history.json").read_text())
    assert hist["steps"]["step"] == list(range(1, step + 3))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_script_run_handles_sigterm_like_ctrl_c(tmp_path, sig):
    """In the main thread, SIGTERM (SIGHUP) stops ``TrainingRun.run`` after the step, saves, and
    raises Terminated (a SystemExit with code 143 / 129); the old handler is restored."""
    from _training import tiny

    run = TrainingRun(tiny(steps=10**6, eval_every=1000), run_dir=tmp_path / "r")
    sent = []

    def send_once():
        if run.step >= 3 and not sent:
            sent.append(run.step)
            os.kill(os.getpid(), sig)

    before = signal.getsignal(sig)
    orig = run._one_step

    def one_step():
        orig()
        send_once()

    run._one_step = one_step
    with pytest.raises(Terminated) as e:
        run.run()
    assert e.value.code == 128 + sig and e.value.step == run.step == sent[0]
    assert run.state == "stopped"
    assert load_checkpoint(tmp_path / "r")["step"] == sent[0]
    assert json.loads((tmp_path / "r" / "history.json").read_text())["steps"]["step"][-1] == \
        sent[0]
    assert signal.getsignal(sig) is before
