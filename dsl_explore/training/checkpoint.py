"""Checkpoints: written atomically, rotated, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain values (format ``"dsl_explore.training/1"``):
``config``, ``initial_config``, ``model_config``, ``model_state``, ``optimizer_state``,
``scaler_state``, ``step``, ``history``, the data order (``data_generator_state``,
``data_perm``, ``data_cursor``), ``rng`` (torch, CUDA, numpy and Python states),
``torch_version`` and ``metrics_version`` (absent in checkpoints older than
:data:`~dsl_explore.training.metrics.METRICS_VERSION` 2, which still load).

:class:`Checkpointer` is the handler a run calls: it names periodic checkpoints
``run_dir/checkpoints/step_XXXXXXXX.pt``, writes them atomically and keeps the newest
``keep``.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsl_explore.io import atomic_write_bytes
from dsl_explore.training.config import LIVE_FIELDS, RESUME_OVERRIDABLE, TrainingConfig
from dsl_explore.training.errors import CheckpointError

__all__ = [
    "CKPT_FORMAT",
    "Checkpointer",
    "capture_rng",
    "list_checkpoints",
    "load_checkpoint",
    "restore_rng",
    "resume_config",
    "resume_dir",
    "save_checkpoint",
]

CKPT_FORMAT = "dsl_explore.training/1"
_REQUIRED = ("format", "config", "model_config", "model_state", "optimizer_state", "step")


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The periodic checkpoints of a run directory, oldest first."""
    d = run_dir / "checkpoints"
    if not d.is_dir():
        return []
    files = [f for f in d.iterdir() if re.fullmatch(r"step_\d+\.pt", f.name)]
    return sorted(files, key=lambda f: int(f.stem.split("_")[1]))


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``state`` to memory, then write it atomically to ``path``."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return atomic_write_bytes(path, buf.getvalue())


class Checkpointer:
    """Periodic checkpoints of one run directory, keeping the newest ``keep``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ck = Checkpointer(pathlib.Path(tmp), keep=1)
    ...     _ = [ck.save({"step": s}, step=s) for s in (1, 2)]
    ...     print([p.name for p in list_checkpoints(pathlib.Path(tmp))])
    ['step_00000002.pt']
    """

    def __init__(self, run_dir: Path, *, keep: int) -> None:
        self.run_dir = run_dir
        self.keep = keep

    def path(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes."""
        return self.run_dir / "checkpoints" / f"step_{step:08d}.pt"

    def save(self, state: Mapping[str, Any], *, step: int) -> Path:
        """Write the checkpoint of ``step``, then delete all but the newest ``keep``."""
        target = save_checkpoint(state, self.path(step))
        old = list_checkpoints(self.run_dir)
        for f in old[: max(0, len(old) - self.keep)]:
            with contextlib.suppress(OSError):
                f.unlink()
        return target

    def clear(self) -> None:
        """Delete every periodic checkpoint (a run that starts over in this directory)."""
        for old in list_checkpoints(self.run_dir):
            old.unlink()


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)`` and check its layout.

    ``path`` may be a checkpoint file or a run directory (its newest checkpoint is used).
    The returned dict has the checkpoint's entries plus ``path``.

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, corrupt or not a dsl_explore training checkpoint.
    """
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p)
        if not found:
            raise CheckpointError(f"no checkpoint found in run directory {str(p)!r}")
        p = found[-1]
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        raise CheckpointError(
            f"cannot read checkpoint {str(p)!r} (corrupt, truncated, not a torch file, or "
            f"holding objects that weights_only=True refuses): {type(exc).__name__}: {detail}"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{str(p)!r} is not a dsl_explore training checkpoint")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {str(p)!r} lacks {', '.join(missing)}")
    ckpt["path"] = str(p)
    return ckpt


# -- RNG states -------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """The torch, CUDA, numpy and Python global RNG states, as tensors and plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss],
    }


def restore_rng(rng: Mapping[str, Any]) -> None:
    """Set the global RNG states :func:`capture_rng` returned (missing entries are skipped)."""
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(list(rng["cuda"]))
    if "numpy" in rng:
        s = rng["numpy"]
        np.random.set_state(  # noqa: NPY002
            (s["name"], s["keys"].numpy().astype(np.uint32), int(s["pos"]),
             int(s["has_gauss"]), float(s["cached_gaussian"]))
        )
    if "python" in rng:
        v, internal, gauss = rng["python"]
        random.setstate((v, tuple(internal), gauss))


# -- resuming ---------------------------------------------------------------------------------


def resume_config(
    ckpt: Mapping[str, Any], config: TrainingConfig | Mapping[str, Any] | None,
    overrides: dict[str, Any],
) -> TrainingConfig:
    """The config a run resumed from ``ckpt`` continues with.

    It is the checkpoint's (live) config with ``overrides`` applied; a given ``config`` must
    match the checkpoint's initial config except in :data:`RESUME_OVERRIDABLE` fields (which it
    then sets) and live fields.

    Raises
    ------
    CheckpointError
        An invalid saved config, or a ``config`` of another run.
    ValueError
        An override of a field other than :data:`RESUME_OVERRIDABLE`.
    """
    where = str(ckpt["path"])
    try:
        saved = TrainingConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {where!r} holds an invalid config: {exc}") from exc
    bad = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if bad:
        raise ValueError(
            f"cannot override {', '.join(bad)} when resuming; only "
            f"{', '.join(RESUME_OVERRIDABLE)}"
        )
    if config is not None:
        if isinstance(config, Mapping):
            config = TrainingConfig.from_dict(config)
        mine = config.to_dict()
        theirs = TrainingConfig.from_dict(ckpt.get("initial_config", ckpt["config"])).to_dict()
        free = set(RESUME_OVERRIDABLE) | set(LIVE_FIELDS)
        differ = [k for k in mine if k not in free and mine[k] != theirs[k]]
        if differ:
            raise CheckpointError(
                f"checkpoint {where!r} is from another run/model: config field(s) "
                f"{', '.join(differ)} differ (e.g. {differ[0]}: checkpoint "
                f"{theirs[differ[0]]!r}, given {mine[differ[0]]!r})"
            )
        for k in RESUME_OVERRIDABLE:
            overrides.setdefault(k, getattr(config, k))
    return saved.replace(**overrides) if overrides else saved


def resume_dir(
    ckpt_path: Path, run_dir: str | os.PathLike[str] | None
) -> tuple[Path | None, bool]:
    """Where a resumed run writes (default: the checkpoint's run directory) and whether that is
    the checkpoint's own run directory (resuming there is allowed although it is not empty)."""
    if run_dir is None and ckpt_path.parent.name == "checkpoints":
        run_dir = ckpt_path.parent.parent
    if run_dir is None:
        return None, False
    try:
        same = Path(run_dir).resolve() == ckpt_path.parent.parent.resolve()
    except OSError:
        same = False
    return Path(run_dir), same
