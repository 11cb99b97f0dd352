"""Small shared pieces of the experiment reports: mean ± std, number formatting, the machine.

Examples
--------
>>> mean_std([1.0, 2.0, 3.0])
(2.0, 1.0)
>>> fmt_mean_std(2.0, 1.0)
'2 ± 1'
>>> fmt_number(float("nan"))
''
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["fmt_mean_std", "fmt_number", "fmt_rho", "machine_info", "mean_std"]


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values (``nan`` when there are none)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def fmt_mean_std(mean: float, std: float, fmt: str = ".3g") -> str:
    """``"mean ± std"`` for a table cell; an em dash when the mean is not finite."""
    if not math.isfinite(mean):
        return "—"
    return f"{mean:{fmt}} ± {std:.2g}"


def fmt_number(v: float) -> str:
    """A CSV cell: the shortest exact repr of a finite float, empty otherwise."""
    return repr(float(v)) if math.isfinite(float(v)) else ""


def fmt_rho(v: float) -> str:
    """A correlation for a table cell (two decimals), an em dash when undefined."""
    return f"{v:.2f}" if math.isfinite(v) else "—"


def _git_commit() -> str | None:
    """The commit of the checkout the package runs from (None outside a git checkout)."""
    import subprocess
    from pathlib import Path

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, check=True,
            capture_output=True, text=True, timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parent, check=True, capture_output=True, text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    """Platform, Python, torch, CPU count, torch threads, the load average, the package's
    version and git commit (and the CUDA device, if any)."""
    from dsl_explore import __version__

    info: dict[str, Any] = {
        "dsl_explore": __version__,
        "git_commit": _git_commit(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info
