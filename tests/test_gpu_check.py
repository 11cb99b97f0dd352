"""``scripts/gpu-check --dry-run`` (what ``make gpu-check`` runs, at tiny sizes): on a machine
without CUDA it skips the CUDA steps with a message, runs the rest and exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu-check.json"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu-check"), "--dry-run",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["dry_run"] is True
    assert res["bench_kernels"]["ok"] and res["bench_kernels"]["result"]["cases"]
    for key in ("mse", "mse+dsl", "mse +dashboard", "mse+dsl +dashboard"):
        row = res["training"][key]
        assert row is None or row["steps_per_second"] > 0, (key, row)
    if not torch.cuda.is_available():
        assert res["device"] == "cpu" and res["tests"] is None and res["reproduce"] is None
        assert any("no CUDA device" in s for s in res["skipped"])
        assert "no CUDA device" in proc.stderr


def test_makefile_has_gpu_check_target():
    text = (REPO / "Makefile").read_text()
    assert "\ngpu-check:" in text and "scripts/gpu-check" in text
