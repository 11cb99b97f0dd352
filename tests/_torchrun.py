"""Start ``torchrun -m dsl_explore.train`` from a test, bounded in time and cleaned up.

``from _torchrun import TINY_TOML, launch, run_torchrun``. Every launch gets its own session
(process group), so a timeout or the end of a test kills torchrun *and* its workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TINY_TOML = """
spatial_dims = 1
size = 32
n_samples = 40
batch_size = 8
base_channels = 4
compression = 4
steps = 6
eval_every = 3
eval_samples = 4
device = "cpu"
loss = "mse+dsl"
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def command(nproc: int, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "dsl_explore.train", *args]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (torchrun and its workers) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def launch(nproc: int, args: Sequence[str], *, log: Path) -> Iterator[subprocess.Popen]:
    """Start torchrun with output to ``log``; on leaving, kill whatever is left of it."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command(nproc, args), cwd=ROOT, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                kill_group(proc)


def run_torchrun(nproc: int, args: Sequence[str], *, timeout: float = 120.0,
                 log: Path) -> tuple[int, str]:
    """Run torchrun to the end (killed after ``timeout`` s); ``(returncode, output)``."""
    with launch(nproc, args, log=log) as proc:
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise AssertionError(f"torchrun ran past {timeout} s:\n{log.read_text()}") from None
    return rc, log.read_text(errors="replace")
