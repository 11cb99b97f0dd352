"""Shared helpers of the fault tests: ``from _faults import tmpfs, one_line_error``."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(mountpoint: Path, *, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at ``mountpoint`` (a full disk, or a read-only one), unmounted afterwards.

    Skips the test where mounting is not permitted (not root, no CAP_SYS_ADMIN, no tmpfs):
    as root, ``chmod`` does not stop writes, so a real mount is the only honest test.
    """
    mountpoint.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mountpoint)],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {proc.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=20,
                       check=False)


def one_line_error(err: str, *needles: str) -> None:
    """``err`` is one ``dsl-explore:`` line holding every needle, without a traceback."""
    assert err.startswith("dsl-explore:"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
