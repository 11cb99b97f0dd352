"""A pyvista scene and the fused DSL op in one process (they both carry an LLVM)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pyvista")
pytest.importorskip("triton")

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import numpy as np, torch
    from dsl_explore.plots import plot_volume_pyvista
    from dsl_explore.loss import directional_sign_loss
    a = np.random.default_rng(0).random((10, 11, 12))
    pl = plot_volume_pyvista(a, a[::-1].copy(), slices=True, window_size=(160, 120))
    pl.screenshot(None)                       # a real OpenGL window (EGL / OSMesa headless)
    x = torch.rand(2, 1, 8, 9, requires_grad=True)
    directional_sign_loss(x, torch.rand(2, 1, 8, 9)).backward()   # the fused op: imports triton
    print("ok")
""")


def test_render_then_fused_dsl_does_not_crash():
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYVISTA_OFF_SCREEN": "true"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip().endswith("ok")
