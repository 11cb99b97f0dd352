r"""``dsl-explore reproduce``: run a suite of training runs and write its results and tables.

A suite (:data:`~dsl_explore.experiments.suites.SUITES`) names dimensionalities, data kinds,
objectives and seeds. Every run trains an autoencoder with
:func:`~dsl_explore.experiments.protocol.config_for` and measures the *held-out* split with
:func:`~dsl_explore.training.evaluate_model` (the last model, nothing selected on it): MSE,
PSNR, exact sign-mismatch rate, mismatched critical points, Betti error per homology dimension
and in total, bottleneck distance; plus the MSE of predicting the training split's mean signal
(the plateau a model that learned nothing sits on). The objectives of one (dimensionality,
data kind, seed) share data, split, initialisation and data order.

Results go to ``OUT/results.json`` after every run (``"complete": false`` until the end), so a
crash loses at most the run in progress and ``resume=True`` continues where it stopped. The
tables (:mod:`~dsl_explore.experiments.report`) go to ``OUT/table.md`` and ``OUT/table.csv``.

Runs can go to several worker processes (``jobs``), one torch thread each by default; their
``seconds_per_step`` are then measured under each other's load. The suite's cost figures come
from the separate interleaved measurement (:mod:`~dsl_explore.experiments.cost`), run alone at
the end.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsl_explore._validation import check_int
from dsl_explore.experiments.cost import measure_cost
from dsl_explore.experiments.protocol import DATA_KINDS, SETTINGS, Setting, config_for
from dsl_explore.experiments.report import summarise, table_csv, table_md
from dsl_explore.experiments.suites import SUITES, Suite
from dsl_explore.experiments.summary import machine_info
from dsl_explore.io import atomic_write_json, atomic_write_text
from dsl_explore.training import evaluate_model, resolve_device, train
from dsl_explore.training.inputs import make_training_data

__all__ = ["reproduce", "run_key"]

RunKey = tuple[str, int, int, str]


def run_key(run: dict[str, Any]) -> RunKey:
    """``(data kind, dims, seed, setting name)``: what identifies a run within a suite."""
    return (str(run["data_kind"]), int(run["dims"]), int(run["seed"]), str(run["setting"]))


def _job_config(job: dict[str, Any]) -> Any:
    return config_for(
        job["dims"], job["data_kind"], Setting(job["setting"], job["fields"]), seed=job["seed"],
        quick=job["quick"], size=job["size"], steps=job["steps"], device=job["device"],
    )


def _mean_signal_mse(cfg: Any, val: np.ndarray) -> float:
    train_arr, _ = make_training_data(cfg)
    mean = train_arr.mean(axis=0, keepdims=True, dtype=np.float64)
    return float(np.mean((val.astype(np.float64) - mean) ** 2))


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one run (in this process or a worker)."""
    cfg = _job_config(job)
    c0, t0 = time.process_time(), time.perf_counter()
    run = train(cfg, progress=job["progress"])
    train_s = time.perf_counter() - t0
    metrics = evaluate_model(
        run.model, run.val_data, device=run.device, batch_size=max(cfg.batch_size, 16),
        betti_thresholds=cfg.betti_thresholds, bottleneck=True, k=SETTINGS["mse+dsl"].fields["k"],
    )
    eval_s = time.perf_counter() - t0 - train_s
    cpu_s = time.process_time() - c0
    return {
        "data_kind": job["data_kind"],
        "dims": job["dims"],
        "seed": job["seed"],
        "setting": job["setting"],
        "loss": cfg.loss,
        **metrics,
        "mean_signal_mse": _mean_signal_mse(cfg, np.asarray(run.val_data)),
        "seconds_per_step": run.seconds_per_step,
        "steps": run.step,
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "cpu_seconds": cpu_s,
        "n_train": int(run.n_train),
        "n_test": int(run.val_data.shape[0]),
        "torch_threads": torch.get_num_threads(),
        "config": cfg.to_dict(),
    }


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _check_choice(values: Sequence[Any] | None, allowed: Sequence[Any], name: str) -> tuple:
    if values is None:
        return tuple(allowed)
    out = tuple(values)
    bad = [v for v in out if v not in allowed]
    if not out or bad:
        raise ValueError(f"{name} must be among {tuple(allowed)}, got {out}")
    return tuple(v for v in allowed if v in out)


def reproduce(
    *,
    out_dir: str | os.PathLike[str],
    suite: str = "paper",
    dims: Sequence[int] | None = None,
    data: Sequence[str] | None = None,
    seeds: int | None = None,
    quick: bool = False,
    size: int | None = None,
    steps: int | None = None,
    device: str = "auto",
    jobs: int = 1,
    threads: int | None = None,
    resume: bool = False,
    cost: bool | None = None,
    progress: bool | Callable[[str], None] = True,
) -> dict[str, Any]:
    """Run a suite and write ``results.json``, ``table.md`` and ``table.csv`` to ``out_dir``.

    Parameters
    ----------
    out_dir
        Output directory (created).
    suite
        A name of :data:`~dsl_explore.experiments.suites.SUITES` (``"paper"``, ``"sweeps"``).
    dims, data
        Restrict the suite's dimensionalities / data kinds (``"synthetic"``, ``"real"``).
    seeds
        Number of seeds 0..seeds-1 (default: the suite's, or its quick count with ``quick``).
    quick
        Tiny sizes (:data:`~dsl_explore.experiments.protocol.QUICK`): a smoke test; its
        numbers say nothing about the method.
    size, steps
        Override every run's spatial size per axis / step count.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    jobs
        Worker processes for the training runs (1: in this process).
    threads
        torch threads per worker (default: 1 with ``jobs > 1``, else torch's default).
    resume
        Keep the runs of an existing ``out_dir/results.json`` of the same suite and settings
        and run only the missing ones.
    cost
        Measure the interleaved per-step cost at the end (default: the suite's ``cost``).
    progress
        True: progress on stderr (per-run bars with ``jobs=1``); a callable: gets one line
        per finished run; False: silent.

    Returns
    -------
    dict
        What ``results.json`` holds: ``suite``, ``settings``, ``runs``, ``summary``,
        ``changes`` (relative changes against the baseline with bootstrap intervals),
        ``cost``, ``machine``, ``wall_seconds``, ``complete``.

    Raises
    ------
    ValueError
        An unknown suite, dimensionality or data kind, a bad count, or a size that does not
        suit the model (checked before any training starts).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:   # doctest: +SKIP
    ...     res = reproduce(out_dir=tmp, suite="paper", dims=(1,), data=("synthetic",),
    ...                     quick=True, progress=False)
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {tuple(SUITES)}, got {suite!r}")
    su: Suite = SUITES[suite]
    dims_t = _check_choice(dims, su.dims, "dims")
    kinds = _check_choice(data, DATA_KINDS, "data")
    kinds = tuple(k for k in kinds if k in su.data_kinds) or kinds
    n_seeds = check_int(
        seeds if seeds is not None else (su.quick_seeds if quick else su.seeds), "seeds",
        minimum=1,
    )
    jobs = check_int(jobs, "jobs", minimum=1)
    if size is not None:
        check_int(size, "size", minimum=2)
    if steps is not None:
        check_int(steps, "steps", minimum=1)
    dev = resolve_device(device)
    if dev.type == "cuda" and jobs > 1:
        raise ValueError("jobs must be 1 on CUDA (the runs would share one GPU's memory)")
    threads = threads if threads is not None else (1 if jobs > 1 else torch.get_num_threads())
    check_int(threads, "threads", minimum=1)
    run_cost = su.cost if cost is None else bool(cost)
    say = _reporter(progress)

    jobs_list = [
        {
            "dims": d, "data_kind": kind, "setting": s.name, "fields": dict(s.fields),
            "seed": seed, "quick": quick, "size": size, "steps": steps, "device": dev.type,
            "progress": progress is True and jobs == 1,
        }
        for kind in kinds
        for d in dims_t
        for seed in range(n_seeds)
        for s in su.settings_for(kind)
    ]
    for job in jobs_list:  # every config is checked before hours of training
        _job_config(job)
    header: dict[str, Any] = {
        "suite": su.name,
        "machine_start": machine_info(),
        "settings": {
            "dims": list(dims_t), "data": list(kinds), "seeds": n_seeds, "quick": quick,
            "size": size, "steps": steps, "device": str(dev), "jobs": jobs, "threads": threads,
            "objectives": [s.to_dict() for s in su.settings],
            "synthetic_only": list(su.synthetic_only),
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous(out) if resume else {}
    runs = _resumed_runs(out, previous, header)
    done = {run_key(r) for r in runs}
    todo = [j for j in jobs_list if run_key(j) not in done]
    say(f"suite {su.name}: {len(jobs_list)} runs ({len(jobs_list) - len(todo)} resumed), "
        f"{jobs} job(s) x {threads} thread(s)")
    t_start = time.perf_counter()
    prior = previous if runs else {}
    prior_wall = float(prior.get("wall_seconds", 0.0))
    if prior.get("machine_start"):  # a resumed suite started when its first part did
        header["machine_start"] = prior["machine_start"]
    # nothing left to run or measure: keep the machine state of the run that made the numbers
    machine = prior.get("machine") if prior and not todo and not run_cost else None
    if prior and not todo:  # and how the runs were spread over processes
        for key in ("jobs", "threads"):
            header["settings"][key] = prior.get("settings", {}).get(key, header["settings"][key])

    def record(run: dict[str, Any]) -> None:
        runs.append(run)
        say(f"[{len(runs)}/{len(jobs_list)}] {run['data_kind']} {run['dims']}D seed "
            f"{run['seed']} {run['setting']}: betti {run['betti_total']:.3g}, "
            f"mse {run['mse']:.3g} ({run['train_seconds']:.0f} s)")
        _write(out, header, runs, None, prior_wall + time.perf_counter() - t_start, False, su)

    if jobs == 1:
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for job in todo:
                record(_run_one(job))
        finally:
            torch.set_num_threads(prev)
    else:
        _run_pool(todo, jobs, threads, record)
    # without a new measurement, a resumed suite keeps the cost it measured before
    cost_res = previous.get("cost") if resume and not run_cost else None
    if run_cost:
        cost_res = measure_cost(
            dims_t, su.settings, quick=quick, device=dev.type,
            progress=say if progress else None,
        )
    runs.sort(key=lambda r: (kinds.index(r["data_kind"]), r["dims"], r["seed"],
                             [s.name for s in su.settings].index(r["setting"])))
    return _write(out, header, runs, cost_res, prior_wall + time.perf_counter() - t_start, True,
                  su, machine=machine)


def _run_pool(todo: list[dict[str, Any]], jobs: int, threads: int,
              record: Callable[[dict[str, Any]], None]) -> None:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(_run_one, job) for job in todo]
        try:
            for fut in concurrent.futures.as_completed(futures):
                record(fut.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _reporter(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        import sys

        return lambda msg: print(msg, file=sys.stderr, flush=True)
    return lambda msg: None


def _previous(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot resume from {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _resumed_runs(out: Path, prev: dict[str, Any], header: dict[str, Any]
                  ) -> list[dict[str, Any]]:
    if not prev:
        return []
    same = prev.get("suite") == header["suite"] and all(
        prev.get("settings", {}).get(k) == header["settings"][k]
        for k in ("quick", "size", "steps", "objectives")
    )
    if not same:
        raise ValueError(
            f"cannot resume: {out / 'results.json'} holds another suite or other settings; "
            "choose another out directory or drop --resume"
        )
    return list(prev.get("runs", []))


def _write(out: Path, header: dict[str, Any], runs: list[dict[str, Any]],
           cost: dict[str, Any] | None, wall: float, complete: bool, su: Suite,
           *, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    summary, changes = summarise(runs, su)
    result = {
        **header,
        "complete": complete,
        "machine": machine or machine_info(),
        "wall_seconds": wall,
        "runs": runs,
        "summary": summary,
        "changes": changes,
        "cost": cost,
    }
    atomic_write_json(out / "results.json", result)
    if complete:
        atomic_write_text(out / "table.csv", table_csv(result))
        atomic_write_text(out / "table.md", table_md(result))
    return result
