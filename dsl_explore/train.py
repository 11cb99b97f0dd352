"""``torchrun --nproc-per-node N -m dsl_explore.train --config run.toml --run-dir DIR``.

One training run on ``N`` processes (one per device; gloo on the CPU, NCCL on CUDA) with
DistributedDataParallel (:mod:`dsl_explore.training.distributed`). ``batch_size`` in the config
is the *global* batch; each rank trains on ``batch_size / N`` samples of it. Only rank 0 writes
``DIR``: ``config.toml`` (with a ``[launch]`` table: world size, global and per-rank batch),
checkpoints, ``history.json``, ``snapshot.npz`` and ``status.json`` (which
:meth:`~dsl_explore.widgets.TrainingDashboard.follow` reads), TensorBoard events (when the
``tensorboard`` extra is installed) and, at the end, ``history.csv`` and ``metrics.json``.

Rank 0 reads ``DIR/control.json`` every ``--control-every`` steps and broadcasts it
(:mod:`dsl_explore.training.control_file`): live settings, pause, resume, stop.

Rerunning the same command resumes from the newest checkpoint in ``DIR`` (on any number of
processes; the global batch stays), unless ``--overwrite``. A rank that dies makes the others
stop: torchrun stops the group, and a collective waits at most ``--timeout`` seconds.
``dsl-explore train --nproc N ...`` launches this module through torchrun.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_OVERRIDES = (("--steps", "steps", int), ("--checkpoint-every", "checkpoint_every", int),
              ("--keep-checkpoints", "keep_checkpoints", int), ("--device", "device", str))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dsl_explore.train",
        description="Train one model on the processes torchrun starts (see the module docs).",
    )
    p.add_argument("--config", type=Path, help="a TOML config (TrainingConfig fields)")
    p.add_argument("--run-dir", type=Path, required=True, help="output directory (rank 0)")
    p.add_argument("--overwrite", action="store_true", help="start over in a non-empty run dir")
    p.add_argument("--resume", type=Path, metavar="CKPT",
                   help="continue from this checkpoint (default: the run dir's newest, if any)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--control-every", type=int, default=10, metavar="STEPS",
                   help="read RUN_DIR/control.json every this many steps (default 10)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="how long a collective waits for the other ranks (default 120)")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard events")
    for flag, dest, typ in _OVERRIDES:
        p.add_argument(flag, dest=dest, type=typ, default=None,
                       help="override this config field (also when resuming)")
    return p


def _say(rank: int, text: str) -> None:
    print(f"dsl-explore[rank {rank}]: {text}", file=sys.stderr, flush=True)


def _build(args: argparse.Namespace, rank: int) -> Any:
    from dsl_explore.training import TrainingConfig, TrainingRun
    from dsl_explore.training.checkpoint import list_checkpoints

    overrides = {d: getattr(args, d) for _, d, _ in _OVERRIDES if getattr(args, d) is not None}
    base = TrainingConfig.from_toml(args.config) if args.config is not None else None
    source = args.resume
    if source is None and not args.overwrite and list_checkpoints(args.run_dir):
        source = args.run_dir
    opts: dict[str, Any] = {"progress": rank == 0 and not args.no_progress, "live_files": True,
            "tensorboard": not args.no_tensorboard, "writer": rank == 0}
    if source is not None:
        run = TrainingRun.from_checkpoint(source, run_dir=args.run_dir, config=base,
                                          overwrite=args.overwrite, **opts, **overrides)
        if rank == 0:
            _say(rank, f"resuming from {run.last_checkpoint} at step {run.step}")
        return run
    cfg = (base or TrainingConfig()).replace(**overrides)
    return TrainingRun(cfg, run_dir=args.run_dir, overwrite=args.overwrite, **opts)


def _agreed_build(args: argparse.Namespace, ctx: Any) -> Any:
    """Build the run on every rank; if any rank fails, every rank raises the first error (so
    that none waits in a collective for a rank that gave up)."""
    import torch.distributed as dist

    run, err = None, None
    try:
        run = _build(args, ctx.rank)
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}".splitlines()[0]
    errors: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(errors, err)
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise SystemExit(f"dsl-explore: error: {first}")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run one rank of the distributed training (``torchrun`` starts one per device)."""
    args = build_parser().parse_args(argv)
    import torch.distributed as dist

    from dsl_explore.training.control_file import ControlChannel
    from dsl_explore.training.distributed import DEFAULT_TIMEOUT_S, init_distributed

    ctx = init_distributed(args.device or "auto",
                           timeout_s=args.timeout if args.timeout else DEFAULT_TIMEOUT_S)
    run = None
    try:
        run = _agreed_build(args, ctx)
        run.control_channel = ControlChannel(args.run_dir if ctx.is_writer else None,
                                             every=args.control_every)
        run.on_event = lambda ev, r=ctx.rank: _say(r, f"event at step {ev['step']}: {ev}")
        run.run()
    except KeyboardInterrupt:
        _say(ctx.rank, "interrupted" + ("" if run is None else f" at step {run.step}"))
        return 130
    except Exception as exc:
        step = "?" if run is None else run.step
        ckpt = None if run is None else run.last_checkpoint
        _say(ctx.rank, f"stopped at step {step}: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}"
                       f"\n  (another rank may have died; the newest complete checkpoint is "
                       f"{ckpt}; rerun the same command to resume)")
        if args.timeout is None:
            traceback.print_exc(limit=3)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if ctx.rank == 0:
        m = run.final_metrics()
        last = m["last_eval"]
        sps = m["steps_per_second"]
        print(
            f"done: {run.step} steps on {ctx.world_size} process(es) ({ctx.backend}), "
            f"{sps or float('nan'):.3g} steps/s; val MSE {last.get('val_mse', float('nan')):.4g}, "
            f"sign-mismatch rate {last.get('count_rate', float('nan')):.4g}, Betti error "
            f"{last.get('betti_total', float('nan')):.4g}; wrote {args.run_dir}", flush=True,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
