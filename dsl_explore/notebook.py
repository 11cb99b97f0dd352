"""Small helpers shared by the notebooks in ``notebooks/`` (so no logic lives only in a notebook).

- :func:`quick_mode` / :func:`sizes`: the size switch. ``DSL_EXPLORE_QUICK=1`` (what ``make test``
  and CI set) picks small sizes that run in seconds; unset, the notebooks use full sizes.
- :func:`figures_dir`: where a notebook exports its figures (``DSL_EXPLORE_FIGURES`` overrides).
- :func:`figure_formats`: ``("png",)`` when a Chromium for kaleido is found, else ``("html",)``
  (defined in :mod:`dsl_explore.export`, re-exported here).
- :func:`degrade`: a stand-in "reconstruction": the target blurred (per-axis widths, so the
  damage can be anisotropic) plus a little smooth noise, how an undersized autoencoder errs.
- :func:`critical_table`: critical-point counts of target and reconstruction, axis-wise and PL.
- :func:`plot_betti_curves`: Betti curves of target and reconstruction (plotly).
- :func:`load_results` / :func:`plot_reproduce`: the committed reproduction results
  (``docs/results``) and a bar chart of one metric.

Importing this module is cheap (numpy only); scipy, plotly and the core are imported on use.
"""

from __future__ import annotations

import html
import math
import numbers
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dsl_explore.export import figure_formats  # re-exported: the notebooks import it from here

__all__ = [
    "FIGURES_ENV",
    "QUICK_ENV",
    "RESULTS_ENV",
    "CriticalTable",
    "critical_table",
    "degrade",
    "figure_formats",
    "figures_dir",
    "load_results",
    "plot_betti_curves",
    "plot_reproduce",
    "quick_mode",
    "results_dir",
    "sizes",
]

QUICK_ENV = "DSL_EXPLORE_QUICK"
"""Environment variable of the size switch: ``1`` (also true/yes/on) = quick, small sizes."""

FIGURES_ENV = "DSL_EXPLORE_FIGURES"
"""Environment variable naming the directory the notebooks export into (overrides the default)."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_T = TypeVar("_T")


def quick_mode() -> bool:
    """True when ``DSL_EXPLORE_QUICK`` asks for quick (small) sizes.

    ``1``, ``true``, ``yes``, ``on`` (any case) mean quick; unset, empty, ``0``, ``false``,
    ``no``, ``off`` mean full sizes. Anything else raises ``ValueError`` rather than guessing.

    Examples
    --------
    >>> import os
    >>> os.environ["DSL_EXPLORE_QUICK"] = "1"; quick_mode()
    True
    >>> os.environ["DSL_EXPLORE_QUICK"] = "0"; quick_mode()
    False
    >>> del os.environ["DSL_EXPLORE_QUICK"]
    """
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV}={os.environ[QUICK_ENV]!r} is not understood; use 1 (quick sizes) or 0 "
        "(full sizes)"
    )


def sizes(*, full: _T, quick: _T) -> _T:
    """``quick`` in quick mode (see :func:`quick_mode`), else ``full``.

    Examples
    --------
    >>> import os
    >>> os.environ["DSL_EXPLORE_QUICK"] = "1"
    >>> sizes(full=256, quick=48)
    48
    >>> del os.environ["DSL_EXPLORE_QUICK"]
    >>> sizes(full=(64, 64), quick=(16, 16))
    (64, 64)
    """
    return quick if quick_mode() else full


def figures_dir(name: str) -> Path:
    """The directory a notebook exports its figures into, created if missing.

    - ``DSL_EXPLORE_FIGURES`` set: ``$DSL_EXPLORE_FIGURES/<name>``;
    - else in quick mode: ``<system temp dir>/dsl_explore_figures/<name>`` (tests and CI leave
      nothing in the repository);
    - else ``figures/<name>`` under the current directory, which in Jupyter is the notebook's
      directory (``notebooks/figures/`` is git-ignored).

    Parameters
    ----------
    name : str
        A plain name, usually the notebook's (no path separators).

    Returns
    -------
    pathlib.Path
        Relative to the current directory when it lies inside it (the Export box of
        :func:`~dsl_explore.widgets.explore` then reads ``figures/<name>``), else absolute.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.environ["DSL_EXPLORE_FIGURES"] = tmp
    ...     d = figures_dir("01_dsl_in_1d")
    ...     print(d.name, d.is_dir(), d.parent == Path(tmp).resolve())
    01_dsl_in_1d True True
    >>> del os.environ["DSL_EXPLORE_FIGURES"]
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"name must be a plain directory name, got {name!r}")
    base = os.environ.get(FIGURES_ENV, "").strip()
    if base:
        root = Path(base).expanduser()
    elif quick_mode():
        root = Path(tempfile.gettempdir()) / "dsl_explore_figures"
    else:
        root = Path("figures")
    out = (root / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return out.relative_to(Path.cwd().resolve())
    except ValueError:
        return out


def degrade(
    target: Any,
    *,
    blur: float | Sequence[float] = 2.0,
    noise: float = 0.0,
    noise_blur: float | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """A stand-in reconstruction: the target blurred with a Gaussian, plus smooth noise.

    ``x = gaussian_filter(y, blur) + noise * n / std(n)``, with ``n`` white noise smoothed by a
    Gaussian of width ``noise_blur`` (default ``max(1, max(blur) / 2)``). Blurring flattens
    small extrema (they are *lost*); the noise adds wiggles (*spurious* extrema). A per-axis
    ``blur`` such as ``(0, 3)`` damages one direction only, which the axis-weight sliders of
    :func:`dsl_explore.widgets.explore` then pick out.

    Parameters
    ----------
    target : numpy.ndarray or torch.Tensor
        A 1-3D field (values in [0, 1] for the kit's default k).
    blur : float or sequence of float
        Gaussian widths in samples, one for all axes or one per axis (0 = no blur there).
    noise : float
        Standard deviation of the added smooth noise (>= 0).
    noise_blur : float, optional
        Width of the noise's smoothing, in samples.
    seed : int or None
        Seed of the noise.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``target`` (not re-normalised).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.sin(np.linspace(0, 6 * np.pi, 200))
    >>> x = degrade(y, blur=3.0, noise=0.01, seed=1)
    >>> x.shape, x.dtype
    ((200,), dtype('float32'))
    >>> ramp = np.outer(np.arange(4.0), np.ones(6))   # varies along axis 0 only
    >>> bool(np.allclose(degrade(ramp, blur=(0, 2)), ramp))   # blurred along axis 1 only
    True
    """
    from scipy.ndimage import gaussian_filter

    from dsl_explore._validation import to_numpy

    y = np.asarray(to_numpy(target), dtype=np.float64)
    if y.ndim not in (1, 2, 3):
        raise ValueError(f"target must be a 1-3D field, got shape {y.shape}")
    blurs = [blur] * y.ndim if isinstance(blur, (float, numbers.Real)) else list(blur)
    sig = [float(b) for b in blurs]
    if len(sig) != y.ndim or any(not math.isfinite(s) or s < 0 for s in sig):
        raise ValueError(f"blur must be >= 0, one value or one per axis ({y.ndim}), got {blur!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be finite and >= 0, got {noise!r}")
    out = gaussian_filter(y, sig, mode="nearest") if any(sig) else y.copy()
    if noise > 0:
        rng = np.random.default_rng(seed)
        width = max(1.0, max(sig) / 2) if noise_blur is None else float(noise_blur)
        wiggle = gaussian_filter(rng.standard_normal(y.shape), width, mode="wrap")
        out = out + wiggle * (noise / max(float(wiggle.std()), 1e-12))
    return out.astype(np.float32)


@dataclass(frozen=True)
class CriticalTable:
    """Critical-point counts per classification method; shows as an HTML table in Jupyter.

    Attributes
    ----------
    columns : list of str
        Column names.
    rows : list of list
        One row per method: counts of minima / maxima / saddles in target and reconstruction,
        then spurious, lost, changed and matched points.
    """

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cells = [self.columns] + [[str(v) for v in r] for r in self.rows]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.columns))]
        return "\n".join(
            "  ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells
        )


def critical_table(
    target: Any, recon: Any, *, methods: Sequence[str] = ("axis", "pl")
) -> CriticalTable:
    """Count critical points of a target and its reconstruction by each method, and compare.

    For every method of :func:`dsl_explore.critical.critical_points` (``"axis"``: axis-wise,
    what DSL sees; ``"pl"``: piecewise-linear link-based): the minima, maxima and saddle vertices
    (1-saddles, 2-saddles and 3D degenerate vertices, which are both) of each field, then the
    spurious / lost / changed / matched points of
    :func:`dsl_explore.critical.mismatched_critical_points`.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    >>> row = critical_table(y, x, methods=("axis",)).as_dicts()[0]
    >>> row["target max"], row["recon max"], row["spurious"], row["lost"], row["changed"]
    (2, 1, 0, 2, 1)
    """
    from dsl_explore.critical import count_critical_points, mismatched_critical_points

    cols = ["method"]
    for who in ("target", "recon"):
        cols += [f"{who} min", f"{who} max", f"{who} saddle"]
    cols += ["spurious", "lost", "changed", "matched"]
    rows = []
    for m in methods:
        row: list[Any] = [m]
        for f in (target, recon):
            c = count_critical_points(f, method=m)
            row += [c["MINIMUM"], c["MAXIMUM"], c["SADDLE"] + c["SADDLE2"] + c["DEGENERATE"]]
        mm = mismatched_critical_points(recon, target, method=m)
        row += [mm.n_spurious, mm.n_lost, mm.n_changed, mm.n_matched]
        rows.append(row)
    return CriticalTable(cols, rows)


def plot_betti_curves(
    target: Any,
    recon: Any,
    *,
    thresholds: int | Sequence[float] = 48,
    name: str | None = None,
    title: str | None = None,
    width: int = 1200,
    height: int = 420,
) -> Any:
    r"""Betti curves :math:`\beta_q(\{f \le t\})` of target and reconstruction, one panel per q.

    Both fields are evaluated at the same thresholds (:func:`dsl_explore.topology.betti_curve`):
    ``thresholds`` values evenly spaced over the target's range, or the given values. The title
    gives the Betti error (:func:`dsl_explore.topology.betti_error`, 16 target quantiles),
    after ``name`` when given; ``title`` replaces it.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces with ``meta={"role": "betti", "panel": "target" | "recon", "q": q}``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 2.0, 0.0, 2.0, 0.0]); x = np.array([0.0, 0.5, 0.0, 2.0, 0.0])
    >>> fig = plot_betti_curves(y, x, thresholds=[0.25, 1.0])
    >>> [[int(v) for v in t.y] for t in fig.data]  # beta_0 at t = 0.25 and t = 1
    [[3, 3], [3, 2]]
    >>> plot_betti_curves(y, x, thresholds=[1.0], name="demo").layout.title.text[:20]
    'demo · Betti curves '
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from dsl_explore._validation import to_numpy
    from dsl_explore.plots import style
    from dsl_explore.topology import betti_curve, betti_error

    y, x = np.asarray(to_numpy(target)), np.asarray(to_numpy(recon))
    if isinstance(thresholds, int):
        thr = np.linspace(float(y.min()), float(y.max()), thresholds)
    else:
        thr = np.asarray(thresholds, dtype=np.float64)
    by = betti_curve(y, thresholds=thr)
    bx = betti_curve(x, thresholds=thr)
    d = by.shape[-1]
    fig = make_subplots(rows=1, cols=d, subplot_titles=[f"β{q}" for q in range(d)])
    for q in range(d):
        for who, b, color, dash in (
            ("target", by, style.TARGET_COLOR, "solid"),
            ("reconstruction", bx, style.RECON_COLOR, "dash"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=thr,
                    y=b[:, q],
                    mode="lines",
                    name=who,
                    legendgroup=who,
                    showlegend=q == 0,
                    line={"color": color, "width": 2.5, "dash": dash},
                    hovertemplate=f"{who}: t=%{{x:.3g}}, β{q}=%{{y}}<extra></extra>",
                    meta={
                        "role": "betti",
                        "panel": "target" if who == "target" else "recon",
                        "q": q,
                    },
                ),
                row=1,
                col=q + 1,
            )
        fig.update_xaxes(title_text="threshold t", row=1, col=q + 1)
    fig.update_yaxes(title_text="Betti number of {f ≤ t}", row=1, col=1)
    err = betti_error(x, y)
    per = ", ".join(f"β{q} {v:.3g}" for q, v in enumerate(err.per_dim))
    default = (f"{name} · " if name else "") + f"Betti curves · Betti error {err.total:.3g} ({per})"
    style.apply_style(
        fig,
        title=title if title is not None else default,
        width=width,
        height=height,
        legend_top=False,
    )
    return fig


RESULTS_ENV = "DSL_EXPLORE_RESULTS_DIR"
"""Environment variable naming the directory with ``<suite>/results.json`` (default: the
repository's ``docs/results``)."""


def results_dir() -> Path | None:
    """Where the committed reproduction results are: ``$DSL_EXPLORE_RESULTS_DIR``, else the
    ``docs/results`` folder of the checkout above the working directory (None if neither)."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env)
    for parent in (Path.cwd(), *Path.cwd().parents):
        cand = parent / "docs" / "results"
        if cand.is_dir():
            return cand
    return None


def load_results(name: str) -> dict | None:
    """``<results_dir()>/<name>/results.json`` (``name``: a suite, or ``"proxy"``, whose
    file is ``proxy.json``), or None when it does not exist.

    Raises
    ------
    ValueError
        If the file exists but is not valid JSON.
    """
    import json

    base = results_dir()
    if base is None:
        return None
    path = base / name / ("proxy.json" if name == "proxy" else "results.json")
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def plot_reproduce(result: dict, *, metric: str = "betti_total"):
    """Bar chart of one metric of :func:`dsl_explore.experiments.reproduce`'s summary.

    One group of bars per (data kind, dimensionality), one bar per objective: the mean over
    seeds, with the 95 % bootstrap interval of the mean as error bar where the summary has one
    (``betti_total``, ``mse``), else the standard deviation over seeds.

    Parameters
    ----------
    result : dict
        What ``reproduce`` returns (or its ``results.json``).
    metric : str
        A summary key such as ``"betti_total"``, ``"mse"``, ``"spurious"``, ``"count_rate"``.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    from dsl_explore.plots.style import apply_style

    summary = result["summary"]
    if not summary or metric not in summary[0]:
        keys = sorted(summary[0]) if summary else []
        raise ValueError(f"metric must be one of the summary keys {keys}, got {metric!r}")
    fig = go.Figure()
    interval = f"{metric}_interval" in summary[0]
    for name in dict.fromkeys(row["setting"] for row in summary):
        rows = [r for r in summary if r["setting"] == name]
        mean = [r[metric][0] for r in rows]
        if interval:
            iv = [r[f"{metric}_interval"] for r in rows]
            err = {"type": "data", "symmetric": False,
                   "array": [v["high"] - m for v, m in zip(iv, mean, strict=True)],
                   "arrayminus": [m - v["low"] for v, m in zip(iv, mean, strict=True)]}
        else:
            err = {"type": "data", "array": [r[metric][1] for r in rows]}
        fig.add_trace(go.Bar(
            name=name, x=[f"{r['data_kind']} {r['dims']}D" for r in rows], y=mean, error_y=err,
        ))
    what = "95 % bootstrap interval" if interval else "± std"
    fig.update_layout(barmode="group", xaxis_title="data", yaxis_title=metric)
    apply_style(fig, title=f"{metric} on held-out samples (mean over seeds, {what})",
                width=900, height=460)
    return fig


def _median_seconds(fn: Any, *, min_runs: int = 5, budget_s: float = 0.2,
                    max_runs: int = 50) -> float:
    """Median wall time of ``fn()`` after one untimed warm-up call: at least ``min_runs``
    runs, more while the total stays under ``budget_s`` (at most ``max_runs``).

    Examples
    --------
    >>> _median_seconds(lambda: sum(range(1000))) < 0.1
    True
    """
    import time

    fn()  # warm-up: first-call costs are not per-call costs
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget_s
                                    and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cost_comparison(sides: Sequence[int], *, seed: int = 0,
                    threads: int | None = 1) -> list[dict[str, float]]:
    """Seconds for DSL fwd+bwd (torch and fused C path) vs gudhi persistent homology, per size.

    For each ``side``, one random ``side^3`` volume (``(1, 1, side, side, side)`` float32):
    DSL forward+backward with the torch reference and with ``backend="cpu"``, and
    ``gudhi.CubicalComplex(vertices=...).compute_persistence()``. Each is timed by
    :func:`_median_seconds`: one untimed warm-up call (first-call set-up, thread-pool start and
    page faults are not the cost of a call), then the median of at least 5 timed calls and of
    as many as fit in about 0.2 s, so small sizes are not at the timer's resolution.
    ``threads`` torch threads during the timing (default 1, like gudhi; on a shared machine
    OpenMP's fork-join otherwise waits milliseconds for descheduled threads, and the table
    jumps from size to size); None keeps torch's setting.
    """

    import gudhi
    import torch

    from dsl_explore.loss import directional_sign_loss

    rng = np.random.default_rng(seed)
    rows = []
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for side in sides:
            rows.append(_cost_row(side, rng, gudhi, directional_sign_loss))
    finally:
        torch.set_num_threads(old_threads)
    return rows


def _cost_row(side: int, rng: np.random.Generator, gudhi: Any,
              directional_sign_loss: Any) -> dict[str, float]:
    """One row of :func:`cost_comparison`."""
    import torch

    a = rng.random((side, side, side)).astype(np.float32)
    x = torch.from_numpy(a)[None, None]
    y = torch.from_numpy(rng.random((side, side, side)).astype(np.float32))[None, None]
    row: dict[str, float] = {"side": side}
    for backend in ("torch", "cpu"):
        def dsl(backend: str = backend) -> None:
            directional_sign_loss(x.clone().requires_grad_(True), y,
                                  backend=backend).backward()

        row[f"dsl_{backend}_s"] = _median_seconds(dsl)
    a64 = a.astype(np.float64)
    row["gudhi_s"] = _median_seconds(
        lambda: gudhi.CubicalComplex(vertices=a64).compute_persistence(), min_runs=3)
    row["ph_over_fused_dsl"] = row["gudhi_s"] / row["dsl_cpu_s"]
    return row
