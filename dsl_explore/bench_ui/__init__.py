"""``dsl-explore bench ui``: time from a slider change to the updated figure of ``explore``.

For a 1D signal of 4096 samples, a 2D field of 512 x 512 and a 3D volume of 128^3 (shown as
slices), the benchmark builds :func:`dsl_explore.widgets.explore`, then sets
``explorer.k_slider.value`` (what a slider drag does through the widget comm) and times the
call until it returns: the observers run synchronously, so by then the loss, the count readout
and the DSL map are recomputed and the ``FigureWidget`` update is serialised into its comm
message. No browser is involved (the plotly.js redraw in the page is not measured). The first
change after building is a warm-up and not counted. A weight change (which also recomputes the
weighted count and the exact map) and, for 3D, a slice change are timed the same way.

Targets (issue 5, 2-core CPU machine): < 100 ms for 2D 512^2 and < 500 ms for 3D 128^3.

The widget runs its updates with one torch thread (``explore(..., threads=1)``, the default):
on a 2-core machine with any other load, every multi-threaded op waits for the second core.

Data: seeded power-law Gaussian random fields (:func:`dsl_explore.data.gaussian_random_field`)
as targets; the "reconstruction" is the target plus a smoother field of 5 % amplitude.

Dashboard overhead (the ``dashboard`` case, :func:`bench_dashboard_overhead`): the throughput
(training steps per second of wall time, evaluations included) of one short CPU training run
with and without a live :class:`~dsl_explore.widgets.TrainingDashboard` attached and
refreshing, in the same process with the same config, alternating which goes first; the
ratio of the medians is reported (target: the dashboard costs under 5 %). The dashboard is
built before the run starts and closed after it ends (both untimed); its refresher thread
redraws the curves and the reconstruction as the run publishes evaluations, and the widget
updates are serialised as in a kernel (without a frontend, nothing is sent).

Register with the CLI through :func:`add_parser` and :func:`run`; or run
``python -m dsl_explore.bench_ui [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CASES",
    "DASHBOARD_TARGET",
    "TARGETS_MS",
    "add_parser",
    "bench_dashboard_overhead",
    "bench_pair",
    "bench_ui",
    "format_table",
    "run",
]

CASES: dict[str, tuple[int, ...]] = {"1d": (4096,), "2d": (512, 512), "3d": (128, 128, 128)}
"""The benchmark cases: name -> field shape."""

TARGETS_MS: dict[str, float] = {"2d": 100.0, "3d": 500.0}
"""Targets for the k-slider update, in milliseconds."""

DASHBOARD_CASE = "dashboard"
"""The case name of the dashboard-overhead measurement in :func:`bench_ui` and ``--cases``."""

DASHBOARD_TARGET = 0.05
"""Target for the throughput cost of a live dashboard: under 5 %."""


def bench_pair(shape: tuple[int, ...], seed: int) -> tuple[Any, Any]:
    """The benchmark's ``(x, y)``: a seeded random field ``y`` and ``x = y + 5 % wobble``."""
    import numpy as np

    from dsl_explore.data import gaussian_random_field

    y = gaussian_random_field(1, shape, alpha=3.0, seed=seed)[0, 0]
    wobble = gaussian_random_field(1, shape, alpha=4.0, seed=seed + 1)[0, 0] - 0.5
    x = (y + 0.05 * wobble).astype(np.float32)
    return x, y


def _time_set(widget: Any, value: Any, explorer: Any) -> float:
    t0 = time.perf_counter()
    widget.value = value
    dt = time.perf_counter() - t0
    if explorer.last_error is not None:
        raise RuntimeError(f"the widget update failed: {explorer.last_error!r}")
    return dt * 1e3


def _summary(ms: Sequence[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def bench_ui(
    *,
    repeats: int = 5,
    cases: Sequence[str] = ("1d", "2d", "3d", DASHBOARD_CASE),
    seed: int = 0,
    dashboard_steps: int = 200,
    dashboard_repeats: int = 2,
) -> dict[str, Any]:
    """Time slider changes of :func:`~dsl_explore.widgets.explore` in the kernel (no browser).

    Parameters
    ----------
    repeats : int
        Timed changes per control and case (after one warm-up change).
    cases : sequence of {"1d", "2d", "3d", "dashboard"}
        Which of :data:`CASES` to run, and ``"dashboard"`` for
        :func:`bench_dashboard_overhead`.
    seed : int
        Seed of the data.
    dashboard_steps, dashboard_repeats : int
        ``steps`` and ``repeats`` of :func:`bench_dashboard_overhead`.

    Returns
    -------
    dict
        ``{"machine": {...}, "repeats": int, "results": [{"case", "shape", "setup_s",
        "k": {"median_ms", "min_ms", "max_ms"}, "weight": {...}, "slice": {...} (3D),
        "target_ms", "meets_target"}, ...], "dashboard": {...}}``; ``meets_target`` compares
        the median k-change time with :data:`TARGETS_MS` (None where there is no target);
        ``"dashboard"`` (with that case) is what :func:`bench_dashboard_overhead` returns.

    Examples
    --------
    >>> res = bench_ui(repeats=1, cases=("1d",))  # doctest: +SKIP
    >>> res["results"][0]["k"]["median_ms"] < 1000  # doctest: +SKIP
    True
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    unknown = [c for c in cases if c not in CASES and c != DASHBOARD_CASE]
    if unknown:
        raise ValueError(
            f"unknown case(s) {unknown}; choose from {[*CASES, DASHBOARD_CASE]}"
        )
    import torch

    from dsl_explore.widgets import explore

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "widget_threads": 1,
            "load_avg_1m_at_start": round(load[0], 2) if load else None,
        },
        "repeats": repeats,
        "note": "k change -> loss, count readout and DSL map recomputed, FigureWidget update "
                "serialised; no browser redraw",
        "results": [],
    }
    for case in cases:
        if case == DASHBOARD_CASE:
            continue
        shape = CASES[case]
        x, y = bench_pair(shape, seed)
        t0 = time.perf_counter()
        ex = explore(x, y, k=10.0)
        setup = time.perf_counter() - t0
        ks = [10.0 ** (1.0 + 0.15 * (i + 1)) for i in range(repeats + 1)]
        k_ms = [_time_set(ex.k_slider, k, ex) for k in ks][1:]
        ws = [0.5 if i % 2 == 0 else 1.0 for i in range(repeats + 1)]
        w_ms = [_time_set(ex.weight_sliders[0], w, ex) for w in ws][1:]
        row: dict[str, Any] = {
            "case": case,
            "shape": list(shape),
            "setup_s": round(setup, 3),
            "k": _summary(k_ms),
            "weight": _summary(w_ms),
        }
        if case == "3d":
            assert ex.slice_slider is not None
            idx = [(shape[0] // 2 + 7 * (i + 1)) % shape[0] for i in range(repeats + 1)]
            row["slice"] = _summary([_time_set(ex.slice_slider, i, ex) for i in idx][1:])
        target = TARGETS_MS.get(case)
        row["target_ms"] = target
        row["meets_target"] = None if target is None else row["k"]["median_ms"] < target
        out["results"].append(row)
        ex.close()
    if DASHBOARD_CASE in cases:
        out["dashboard"] = bench_dashboard_overhead(
            steps=dashboard_steps, repeats=dashboard_repeats, seed=seed
        )
    return out


def _timed_run(config: Any, *, dashboard: bool, refresh_hz: float) -> dict[str, Any]:
    """One training run, with or without a live dashboard; wall time from start to join."""
    from dsl_explore.training import TrainingRun
    from dsl_explore.widgets import TrainingDashboard

    run = TrainingRun(config)
    dash = TrainingDashboard(run, refresh_hz=refresh_hz) if dashboard else None
    try:
        t0 = time.perf_counter()
        run.start().join()
        wall = time.perf_counter() - t0
        if dash is not None:  # the final refresh is part of a dashboard's life
            deadline = time.monotonic() + 10.0
            while dash.state()["run_state"] != run.state and time.monotonic() < deadline:
                time.sleep(0.01)
        redraws = None if dash is None else dash.n_redraws
        cpu = None if dash is None else dash.cpu_seconds
        if dash is not None and dash.last_error is not None:
            raise RuntimeError(f"the dashboard failed: {dash.last_error!r}")
    finally:
        if dash is not None:
            dash.close()
    return {"wall_s": wall, "steps_per_s": run.step / wall, "redraws": redraws,
            "dashboard_cpu_s": cpu}


def bench_dashboard_overhead(
    *,
    steps: int = 200,
    spatial_dims: int = 2,
    size: int = 32,
    eval_every: int = 20,
    repeats: int = 2,
    refresh_hz: float = 4.0,
    threads: int | None = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Throughput of a short CPU training run with and without a live dashboard, as a ratio.

    Runs ``repeats`` pairs of the same :class:`~dsl_explore.training.TrainingRun` (one
    without, one with a :class:`~dsl_explore.widgets.TrainingDashboard` refreshing at
    ``refresh_hz``), alternating which goes first, after one untimed warm-up run. Throughput
    is ``steps / wall time`` from ``run.start()`` to ``run.join()`` (evaluations included).

    Parameters
    ----------
    steps : int
        Training steps per run.
    spatial_dims, size : int
        The data: ``"blobs"`` of ``size`` per axis (an 8-channel autoencoder, batch 16).
    eval_every : int
        Evaluations (new snapshots for the dashboard to draw) every this many steps.
    repeats : int
        Pairs of runs.
    refresh_hz : float
        The dashboard's refresh rate.
    threads : int or None
        torch intra-op threads for the runs (restored afterwards; default 1). On a busy
        2-core machine a small model with 2 OpenMP threads runs several times slower and an
        order of magnitude noisier than with 1 (the threads spin-wait for a core), which
        would swamp the measurement. None keeps torch's setting.
    seed : int
        Data and model seed.

    Returns
    -------
    dict
        ``config`` (the run's fields), ``refresh_hz``, ``torch_threads``, ``without`` and
        ``with`` (``{"steps_per_s": [...], "median": float}``), ``pair_ratios`` (with /
        without, per pair), ``ratio`` (median with / median without), ``cost`` (``1 -
        ratio``), ``target`` (:data:`DASHBOARD_TARGET`), ``meets_target``, ``redraws`` (per
        dashboard run), ``dashboard_cpu_share`` (median CPU time of the dashboard's refreshes
        over the run's wall time: its direct cost, free of the run-to-run noise) and
        ``seconds`` (the whole measurement).

    Examples
    --------
    >>> res = bench_dashboard_overhead(steps=40, repeats=1)  # doctest: +SKIP
    >>> 0.5 < res["ratio"] < 1.5  # doctest: +SKIP
    True
    """
    for name, v in (("steps", steps), ("repeats", repeats), ("eval_every", eval_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
    import torch

    from dsl_explore.training import TrainingConfig

    cfg = TrainingConfig(
        data="blobs", spatial_dims=spatial_dims, size=size, n_samples=96, batch_size=16,
        base_channels=8, compression=16, loss="mse+dsl", steps=steps, eval_every=eval_every,
        eval_samples=4, seed=seed, data_seed=seed, device="cpu",
    )
    old_threads = torch.get_num_threads()
    t_start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        _timed_run(cfg.replace(steps=min(steps, 2 * eval_every)), dashboard=True,
                   refresh_hz=refresh_hz)  # warm-up: imports, allocator, first figures
        without: list[float] = []
        with_: list[float] = []
        redraws: list[int | None] = []
        cpu_share: list[float] = []
        for i in range(repeats):
            order = (False, True) if i % 2 == 0 else (True, False)
            pair: dict[bool, float] = {}
            for dashboard in order:
                r = _timed_run(cfg, dashboard=dashboard, refresh_hz=refresh_hz)
                pair[dashboard] = r["steps_per_s"]
                if dashboard:
                    redraws.append(r["redraws"])
                    cpu_share.append(r["dashboard_cpu_s"] / r["wall_s"])
            without.append(pair[False])
            with_.append(pair[True])
        used_threads = torch.get_num_threads()
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    med_without, med_with = statistics.median(without), statistics.median(with_)
    ratio = med_with / med_without
    return {
        "config": {k: v for k, v in cfg.to_dict().items()
                   if k in ("spatial_dims", "size", "steps", "eval_every", "batch_size",
                            "base_channels", "loss", "device")},
        "refresh_hz": refresh_hz,
        "torch_threads": used_threads,
        "without": {"steps_per_s": [round(v, 2) for v in without],
                    "median": round(med_without, 2)},
        "with": {"steps_per_s": [round(v, 2) for v in with_], "median": round(med_with, 2)},
        "pair_ratios": [round(w / wo, 3) for w, wo in zip(with_, without, strict=True)],
        "ratio": round(ratio, 3),
        "cost": round(1.0 - ratio, 3),
        "target": DASHBOARD_TARGET,
        "meets_target": (1.0 - ratio) < DASHBOARD_TARGET,
        "redraws": redraws,
        "dashboard_cpu_share": round(statistics.median(cpu_share), 4),
        "seconds": round(time.perf_counter() - t_start, 1),
    }


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`bench_ui` as a plain-text table."""
    lines = [
        f"{'case':<5} {'shape':<16} {'setup s':>8} {'k change ms':>22} {'weight ms':>10} "
        f"{'slice ms':>9} {'target':>8}",
    ]
    for r in result["results"]:
        k = r["k"]
        target = "-" if r["target_ms"] is None else (
            f"<{r['target_ms']:.0f} " + ("ok" if r["meets_target"] else "MISS"))
        sl = f"{r['slice']['median_ms']:.1f}" if "slice" in r else "-"
        lines.append(
            f"{r['case']:<5} {'x'.join(map(str, r['shape'])):<16} {r['setup_s']:>8.2f} "
            f"{k['median_ms']:>8.1f} ({k['min_ms']:.1f}-{k['max_ms']:.1f}) "
            f"{r['weight']['median_ms']:>10.1f} {sl:>9} {target:>8}"
        )
    m = result["machine"]
    d = result.get("dashboard")
    if d is not None:
        c = d["config"]
        lines.append(
            f"dashboard overhead: {d['with']['median']:.3g} steps/s with a live dashboard vs "
            f"{d['without']['median']:.3g} without -> ratio {d['ratio']:.3f} (cost "
            f"{100 * d['cost']:.1f} %, target < {100 * d['target']:.0f} % "
            f"{'ok' if d['meets_target'] else 'MISS'}); pairs {d['pair_ratios']}; the "
            f"dashboard's own CPU {100 * d['dashboard_cpu_share']:.1f} % of the wall time; "
            f"{c['spatial_dims']}D {'x'.join(map(str, c['size']))}, {c['steps']} steps, "
            f"eval every {c['eval_every']}, refresh {d['refresh_hz']:g} Hz, "
            f"torch threads {d['torch_threads']}, {d['seconds']:.0f} s"
        )
    lines.append(
        f"median of {result['repeats']} changes after a warm-up; {m['cpu_count']} CPUs, "
        f"torch {m['torch']} ({m['torch_threads']} threads; widget updates use "
        f"{m['widget_threads']}), load average "
        f"{m['load_avg_1m_at_start']} at start; {result['note']}"
    )
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ui`` command to a ``bench`` subparsers object (``dsl-explore bench ui``)."""
    p = subparsers.add_parser(
        "ui",
        help="time from a slider change to the updated explore() figure (no browser)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--repeats", type=int, default=5, help="timed changes per control (5)")
    p.add_argument("--cases", default="1d,2d,3d,dashboard",
                   help="comma-separated subset of 1d,2d,3d,dashboard (default: all; "
                   "'dashboard' is the training-throughput cost of a live dashboard)")
    p.add_argument("--dashboard-steps", type=int, default=200,
                   help="training steps per run of the dashboard case (200)")
    p.add_argument("--dashboard-repeats", type=int, default=2,
                   help="pairs of runs (without/with a dashboard) of the dashboard case (2)")
    p.add_argument("--seed", type=int, default=0, help="data seed (0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--browser", action="store_true",
                   help="measure in JupyterLab + headless Chromium instead (slider release to "
                   "the plot's repaint, in the page; prints JSON; cases 1d,2d,3d)")
    p.add_argument("--browser-repeats", type=int, default=10,
                   help="with --browser: single steps and drags per case (10 each)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed arguments; prints a table (or JSON); returns 0."""
    cases = [c.strip() for c in str(args.cases).split(",") if c.strip()]
    if getattr(args, "browser", False):
        from dsl_explore.bench_ui.browser import bench_ui_browser

        cases = [c for c in cases if c != DASHBOARD_CASE]
        print(json.dumps(bench_ui_browser(repeats=args.browser_repeats, cases=cases,
                                          seed=args.seed), indent=2))
        return 0
    result = bench_ui(repeats=args.repeats, cases=cases, seed=args.seed,
                      dashboard_steps=args.dashboard_steps,
                      dashboard_repeats=args.dashboard_repeats)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dsl_explore.bench_ui")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["ui", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
