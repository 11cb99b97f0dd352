"""The ``dsl-explore`` command line: ``train``, ``reproduce``, ``proxy`` (and more to come).

Each subcommand is added by a *registrar*: a function ``add_parser(subparsers)`` that creates
its parser with ``subparsers.add_parser(...)`` and sets ``func=handler`` with
``set_defaults``; ``handler(args) -> int`` returns the exit status. Add one with
:func:`register` (e.g. from a ``bench`` or ``export`` module)::

    from dsl_explore.cli import register

    @register
    def add_parser(subparsers):
        p = subparsers.add_parser("bench", help="...")
        p.set_defaults(func=run_bench)

Every error prints one line on stderr naming the input and what to do, never a traceback
(``--debug`` shows one instead): bad input (invalid config values, files that do not exist or
are not valid ``.npy``/``.npz``, a missing ``.npz`` key, a non-empty run directory, a corrupt
checkpoint, sizes that cannot fit in memory) exits with status 2; a failure at run time (a
failed training run, no space left, a read-only output directory, out of memory) exits with 1.
``train`` stopped by Ctrl-C exits with 130, by SIGTERM with 143 and by SIGHUP with 129
(128 + the signal number, as shells report it), after writing a checkpoint and the history.

Examples
--------
>>> main(["train", "--help"])  # doctest: +ELLIPSIS
usage: dsl-explore train ...
0
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["REGISTRARS", "build_parser", "error_message", "main", "register"]

Registrar = Callable[[Any], None]

REGISTRARS: list[Registrar] = []
"""Functions ``add_parser(subparsers)``, called in order to build the subcommands."""


class UsageError(ValueError):
    """Bad command-line input (exit status 2)."""


def register(fn: Registrar) -> Registrar:
    """Add a subcommand registrar (usable as a decorator); returns ``fn``."""
    if fn not in REGISTRARS:
        REGISTRARS.append(fn)
    return fn


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

# Config fields that take several values, and how to parse each.
_LIST_FIELDS = {"size": int, "weights": float}


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _config_flags(parser: argparse.ArgumentParser) -> None:
    from dsl_explore.training import DEVICES, LOSSES, TrainingConfig

    g = parser.add_argument_group(
        "config fields", "each overrides the same field of --config (see TrainingConfig)"
    )
    choices = {"loss": LOSSES, "device": DEVICES}
    defaults = TrainingConfig()
    for f in dataclasses.fields(TrainingConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        helptext = f"(default: {default!r})"
        if f.name == "data_options":
            g.add_argument(
                "--data-option", dest="data_options", action="append", type=_parse_option,
                metavar="KEY=VALUE", help="a generator option, e.g. n_extrema=12 (repeatable)",
            )
        elif f.name in _LIST_FIELDS:
            g.add_argument(
                flag, dest=f.name, nargs="+", type=_LIST_FIELDS[f.name], default=None,
                help=helptext,
            )
        elif f.name == "amp":
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                           default=None, help=helptext)
        else:
            if isinstance(default, bool):  # pragma: no cover - amp is the only bool
                typ: Any = bool
            elif isinstance(default, int) or f.name == "ph_samples":
                typ = int
            elif isinstance(default, float):
                typ = float
            else:
                typ = str
            g.add_argument(
                flag, dest=f.name, type=typ, default=None, choices=choices.get(f.name),
                help=helptext,
            )


def add_train_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an autoencoder (MSE, MSE+DSL or MSE+PH) and write a run directory",
        description=(
            "Train an autoencoder and write RUN_DIR/config.toml, checkpoints/step_*.pt, "
            "history.json, history.csv and metrics.json. Fields come from --config (TOML), "
            "then from the flags below."
        ),
    )
    p.add_argument("--config", type=Path, help="a TOML config file (TrainingConfig fields)")
    p.add_argument("--run-dir", type=Path, required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty run directory")
    p.add_argument(
        "--resume", type=Path, metavar="CKPT",
        help="continue from a checkpoint file (or a run directory's newest checkpoint)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc", type=int, default=None, metavar="N",
        help="train on N processes with DDP (one per device) through torchrun "
             "(`torchrun --nproc-per-node N -m dsl_explore.train`); rerunning resumes",
    )
    _config_flags(p)
    p.set_defaults(func=_cmd_train)


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    from dsl_explore.training import TrainingConfig

    out = {}
    for f in dataclasses.fields(TrainingConfig):
        v = getattr(args, f.name, None)
        if v is None:
            continue
        if f.name == "data_options":
            v = dict(v)
        elif f.name == "size" and len(v) == 1:
            v = v[0]
        out[f.name] = v
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from dsl_explore.training import RESUME_OVERRIDABLE, TrainingConfig, TrainingRun

    flags = _flag_values(args)
    base = TrainingConfig.from_toml(args.config) if args.config is not None else None
    if getattr(args, "nproc", None) is not None:
        return _launch_torchrun(args, flags, base)
    if args.resume is not None:
        bad = sorted(set(flags) - set(RESUME_OVERRIDABLE))
        if bad:
            allowed = ", ".join("--" + b.replace("_", "-") for b in RESUME_OVERRIDABLE)
            got = ", ".join("--" + b.replace("_", "-") for b in bad)
            raise UsageError(f"with --resume only {allowed} may be given; got {got}")
        run = TrainingRun.from_checkpoint(
            args.resume, run_dir=args.run_dir, config=base, progress=not args.no_progress,
            overwrite=args.overwrite, **flags,
        )
    else:
        start = base or TrainingConfig()
        sizes = (start.size,) if isinstance(start.size, int) else tuple(start.size)
        if "spatial_dims" in flags and "size" not in flags and len(set(sizes)) == 1:
            flags["size"] = sizes[0]  # a cube of the same edge in the new dimensionality
        if "spatial_dims" in flags and "weights" not in flags:
            flags["weights"] = None
        cfg = start.replace(**flags) if flags else start
        run = TrainingRun(
            cfg, run_dir=args.run_dir, progress=not args.no_progress, overwrite=args.overwrite
        )
    try:
        run.run()
    except KeyboardInterrupt:
        print(
            f"dsl-explore: interrupted at step {run.step}; checkpoint and history saved in "
            f"{args.run_dir}",
            file=sys.stderr,
        )
        return 130
    m = run.final_metrics()
    last = m["last_eval"]
    print(
        f"done: {run.step} steps, {m['seconds_per_step'] * 1000:.1f} ms/step on {m['device']}; "
        f"val MSE {last.get('val_mse', float('nan')):.4g}, sign-mismatch rate "
        f"{last.get('count_rate', float('nan')):.4g}, Betti error "
        f"{last.get('betti_total', float('nan')):.4g}; wrote {args.run_dir}"
    )
    return 0


def torchrun_command(nproc: int, train_args: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m dsl_explore.train
    ...``: one node, a rendezvous on a free local port.

    Examples
    --------
    >>> torchrun_command(2, ["--run-dir", "out"])[1:7]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '-m']
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "dsl_explore.train", *train_args]


def _launch_torchrun(args: argparse.Namespace, flags: dict[str, Any], base: Any) -> int:
    """``train --nproc N``: write the config to a temporary TOML file and run
    :mod:`dsl_explore.train` under torchrun as a subprocess; its exit status is ours."""
    import subprocess
    import tempfile

    from dsl_explore.training import RESUME_OVERRIDABLE, TrainingConfig

    if args.nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {args.nproc}")
    train_args = ["--run-dir", str(args.run_dir)]
    train_args += ["--overwrite"] * bool(args.overwrite) + ["--no-progress"] * args.no_progress
    with tempfile.TemporaryDirectory(prefix="dsl-explore-") as tmp:
        if args.resume is not None:
            bad = sorted(set(flags) - set(RESUME_OVERRIDABLE))
            if bad:
                raise UsageError(f"with --resume only {', '.join(RESUME_OVERRIDABLE)} may be "
                                 f"given; got {', '.join(bad)}")
            train_args += ["--resume", str(args.resume)]
            for k, v in flags.items():
                train_args += ["--" + k.replace("_", "-"), str(v)]
            if base is not None:
                train_args += ["--config", str(args.config)]
        else:
            cfg = _fresh_config(base or TrainingConfig(), flags)
            path = Path(tmp) / "config.toml"
            path.write_text(cfg.to_toml(), encoding="utf-8")
            train_args += ["--config", str(path)]
        cmd = torchrun_command(args.nproc, train_args)
        print("dsl-explore: " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
        try:
            return subprocess.run(cmd, check=False).returncode
        except KeyboardInterrupt:  # torchrun got the Ctrl-C too and stops its workers
            return 130


def _fresh_config(start: Any, flags: dict[str, Any]) -> Any:
    """``start`` with the flags' fields (a new dimensionality keeps a cubic size's edge)."""
    flags = dict(flags)
    sizes = (start.size,) if isinstance(start.size, int) else tuple(start.size)
    if "spatial_dims" in flags and "size" not in flags and len(set(sizes)) == 1:
        flags["size"] = sizes[0]
    if "spatial_dims" in flags and "weights" not in flags:
        flags["weights"] = None
    return start.replace(**flags) if flags else start


# --------------------------------------------------------------------------------------------
# reproduce, proxy
# --------------------------------------------------------------------------------------------


def add_reproduce_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run a reproduction suite (paper table, sweeps) and write its tables and figures",
        description=(
            "Run a suite of training runs (--suite paper: MSE, MSE+DSL and MSE+PH autoencoders "
            "on synthetic and real 1D/2D/3D data, 5 seeds, and their per-step cost; --suite "
            "sweeps: MSE+DSL over lambda, k and the sign surrogates on 2D) and write "
            "OUT/results.json, table.md, table.csv and the Betti-error-against-MSE figures "
            "pareto-<data>-<d>d.html (and .png where a browser for export exists). Results are "
            "saved after every run; --resume continues an interrupted suite."
        ),
    )
    p.add_argument("--suite", default="paper",
                   help="a suite of dsl_explore.experiments.suites.SUITES: paper (default), sweeps")
    p.add_argument("--data", default="both", choices=("synthetic", "real", "both"),
                   help="data kinds (default: both, as far as the suite has them)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 2 seeds (CI smoke test)")
    p.add_argument("--dims", type=int, nargs="+", default=None, choices=(1, 2, 3),
                   help="restrict the suite's dimensionalities")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: suite's)")
    p.add_argument("--size", type=int, default=None, help="spatial size per axis, all dims")
    p.add_argument("--steps", type=int, default=None, help="training steps per run")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes for the runs (1 torch thread each; CPU only)")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of OUT/results.json and run the rest")
    p.add_argument("--no-cost", action="store_true", help="skip the interleaved cost measurement")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from dsl_explore.experiments import reproduce

    data = ("synthetic", "real") if args.data == "both" else (args.data,)
    result = reproduce(
        out_dir=args.out, suite=args.suite, dims=args.dims, data=data, seeds=args.seeds,
        quick=args.quick, size=args.size, steps=args.steps, device=args.device, jobs=args.jobs,
        resume=args.resume, cost=False if args.no_cost else None,
        progress=not args.no_progress,
    )
    print((args.out / "table.md").read_text(encoding="utf-8"))
    for path in write_pareto_figures(result, args.out):
        print(f"wrote {path}")
    return 0


def write_pareto_figures(result: dict[str, Any], out: Path) -> list[Path]:
    """``pareto-<data>-<d>d.html`` (and ``.png`` where a browser for export exists) per group."""
    from dsl_explore.export import browser_available, save_figure
    from dsl_explore.plots.pareto import pareto_groups, plot_pareto

    paths = []
    png = browser_available()
    for kind, d in pareto_groups(result):
        fig = plot_pareto(result, data_kind=kind, dims=d)
        for ext in ("html", "png") if png else ("html",):
            scale = 2.0 if ext == "png" else None
            paths.append(save_figure(fig, out / f"pareto-{kind}-{d}d.{ext}", scale=scale))
    if not png:
        print("no browser for PNG export: wrote the HTML figures only", file=sys.stderr)
    return paths


def add_proxy_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "proxy",
        help="Spearman correlation of DSL with topology metrics over perturbations",
        description=(
            "Perturb targets (noise, blur, quantisation, smooth warps; error fields of one fixed "
            "MSE; monotone maps that keep every sign) and write the Spearman correlations of "
            "DSL and MSE with the exact count, mismatched critical points, Betti error and "
            "bottleneck distance, pooled and per family, and the partial correlations (DSL given "
            "MSE, MSE given DSL), each with a 95% cluster-bootstrap interval over targets, to "
            "OUT/proxy.md, proxy.csv (one line per correlation) and proxy.json (every score)."
        ),
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--quick", action="store_true",
                   help="small sizes (4 targets of 16 per axis, 200 resamples): a smoke test")
    p.add_argument("--n-targets", type=int, default=None, help="targets (default 48; quick 4)")
    p.add_argument("--size", type=int, default=None, help="size per axis (default 32; quick 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dims", type=int, default=2, choices=(1, 2, 3), help="spatial dims")
    p.add_argument("--data", default="blobs")
    p.add_argument("--k", type=float, default=20.0)
    p.add_argument("--n-resamples", type=int, default=None,
                   help="bootstrap resamples per interval (default 2000; quick 200)")
    p.add_argument("--fixed-rms", type=float, default=0.02,
                   help="RMS error of every pair of the fixed-MSE family (default 0.02)")
    p.set_defaults(func=_cmd_proxy)


def _cmd_proxy(args: argparse.Namespace) -> int:
    from dsl_explore.experiments import proxy

    proxy(
        n_targets=args.n_targets, size=args.size, seed=args.seed, out_dir=args.out,
        spatial_dims=args.dims, data=args.data, k=args.k, n_resamples=args.n_resamples,
        fixed_rms=args.fixed_rms, quick=args.quick,
    )
    print((args.out / "proxy.md").read_text(encoding="utf-8"))
    return 0


register(add_train_parser)
register(add_reproduce_parser)
register(add_proxy_parser)


def _add_bench_parser(subparsers: Any) -> None:
    from dsl_explore import bench

    bench.add_parser(subparsers)


register(_add_bench_parser)


def _add_export_parser(subparsers: Any) -> None:
    from dsl_explore import run_figures

    run_figures.add_parser(subparsers)


register(_add_export_parser)


def add_compare_parser(subparsers: Any) -> None:
    """``dsl-explore compare TARGET RECON --out DIR`` (:mod:`dsl_explore.chunked.compare`)."""
    p = subparsers.add_parser(
        "compare",
        help="exact count, DSL and critical points of two stored volumes, chunk by chunk",
        description=(
            "Compare a target and a reconstruction stored as .zarr, .npy (memory-mapped) or .npz "
            "without loading them whole (dask). Writes DIR/summary.json and DIR/maps.zarr "
            "(mismatch incidence, critical-point labels) atomically."
        ),
    )
    p.add_argument("target", type=Path, help="the target volume (.zarr, .npy or .npz)")
    p.add_argument("recon", type=Path, help="the reconstruction, same shape")
    p.add_argument("--out", type=Path, required=True, help="output directory (new or empty)")
    p.add_argument("--dims", type=int, nargs="+", default=None,
                   help="spatial axes (default: all axes of a 1-3D array)")
    p.add_argument("--method", choices=("axis", "pl"), default="axis",
                   help="critical-point classification (default: axis)")
    p.add_argument("--k", type=float, default=10.0, help="DSL sharpness (default 10)")
    p.add_argument("--surrogate", default="tanh", help="DSL sign surrogate (default tanh)")
    p.add_argument("--chunk", type=int, default=None,
                   help="chunk edge along spatial axes (default: the stores' own, or 128)")
    p.add_argument("--key", default=None, help="array name inside a zarr group or .npz")
    p.add_argument("--betti", action="store_true",
                   help="also Betti errors (gudhi, whole volume in memory; refused if too big)")
    p.add_argument("--betti-downsample", type=int, default=None, metavar="F",
                   help="compute Betti errors on an F-times mean-downsampled volume (implies "
                        "--betti; the caveat is written into summary.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        from dsl_explore.chunked.compare import compare
    except ImportError as exc:
        raise UsageError(
            f"compare needs the chunked extra (pip install 'dsl-explore[chunked]'): {exc}"
        ) from exc
    summary = compare(
        args.target, args.recon, args.out, dims=args.dims, method=args.method, k=args.k,
        surrogate=args.surrogate, chunk=args.chunk, key=args.key, betti=args.betti,
        betti_downsample=args.betti_downsample, progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    sm, cp = summary["sign_mismatch"], summary["critical_points"]
    print(
        f"sign mismatches per axis {sm['per_axis']} (total {sm['total']}), "
        f"DSL {summary['dsl']['value']:.6g}; critical points: {cp['lost']} lost, "
        f"{cp['spurious']} spurious, {cp['changed']} changed; wrote {args.out}"
    )
    return 0


register(add_compare_parser)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="dsl-explore",
        description="Directional Sign Loss exploration kit: training, experiments, tables.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for registrar in REGISTRARS:
        registrar(sub)
    return parser


def _bad_input_types() -> tuple[type[BaseException], ...]:
    from dsl_explore.training import CheckpointError

    return (UsageError, CheckpointError, ValueError, TypeError, FileExistsError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# errno -> what to do about it
_OS_HINTS = {
    errno.ENOSPC: "free some space or write somewhere else",
    errno.EDQUOT: "free some space or write somewhere else",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EACCES: "check the permissions or write somewhere else",
    errno.EPERM: "check the permissions or write somewhere else",
}
_MEMORY_HINT = "use smaller sizes (size, n_samples, batch_size) or a machine with more memory"


def _os_error_line(exc: OSError) -> str:
    where = f" {exc.filename!r}" if exc.filename else ""
    reason = exc.strerror or _first_line(exc)
    hint = _OS_HINTS.get(exc.errno or 0)
    return f"cannot write or read{where}: {reason}" + (f" ({hint})" if hint else "")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text
    )


def error_message(exc: BaseException, args: argparse.Namespace | None = None) -> tuple[str, int]:
    """The one line ``dsl-explore`` prints for ``exc`` and the exit status.

    2 for bad input (a bad value, path or file, a size that cannot fit in memory); 1 for a
    failure at run time (no space left, a read-only output, out of memory, a failed training
    run, an unexpected error); ``128 + signum`` for a run stopped by SIGTERM / SIGHUP
    (:class:`~dsl_explore.training.Terminated`); 130 for Ctrl-C.

    Examples
    --------
    >>> import errno
    >>> error_message(OSError(errno.ENOSPC, "No space left on device", "out/a.png"))
    ("dsl-explore: error: cannot write or read 'out/a.png': No space left on device (free some \
space or write somewhere else)", 1)
    """
    from dsl_explore.training import Terminated, TrainingError

    run_dir = getattr(args, "run_dir", None)
    if isinstance(exc, Terminated):
        saved = f"; checkpoint and history saved in {run_dir}" if run_dir else ""
        return f"dsl-explore: {exc}{saved}", int(exc.code)  # type: ignore[arg-type]
    if isinstance(exc, KeyboardInterrupt):
        return "dsl-explore: interrupted", 130
    if isinstance(exc, TrainingError):
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno in _OS_HINTS:
            detail = _os_error_line(cause)
        elif cause is not None and _is_out_of_memory(cause):
            detail = f"out of memory ({_first_line(cause)}): {_MEMORY_HINT}"
        else:
            detail = _first_line(exc)
        return (f"dsl-explore: training failed at step {exc.step}: {detail} "
                "(use --debug for the traceback)"), 1
    if isinstance(exc, _bad_input_types()):
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename:
            return f"dsl-explore: error: {_os_error_line(exc)}", 2
        return f"dsl-explore: error: {_first_line(exc)}", 2
    if isinstance(exc, OSError):
        return f"dsl-explore: error: {_os_error_line(exc)}", 1
    if _is_out_of_memory(exc):
        return f"dsl-explore: out of memory ({_first_line(exc)}): {_MEMORY_HINT}", 1
    return (f"dsl-explore: internal error: {type(exc).__name__}: {_first_line(exc)} (use "
            "--debug for the traceback, and please report it)"), 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dsl-explore`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Every error prints one line on stderr (:func:`error_message`), never a traceback unless
    ``--debug`` is given.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        return int(args.func(args))
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        from dsl_explore.training import Terminated

        if args.debug and not isinstance(exc, Terminated):
            raise
        if isinstance(exc, SystemExit) and not isinstance(exc, Terminated):
            raise
        line, status = error_message(exc, args)
        print(line, file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
