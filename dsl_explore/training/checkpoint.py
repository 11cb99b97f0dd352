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

Integrity. Every checkpoint written here gets a sidecar ``<name>.sha256`` (one line,
``sha256sum`` format, written atomically right after the checkpoint;
:func:`dsl_explore.io.write_checksum`); the run's ``history.json`` gets ``history.json.sha256``
the same way. :func:`load_checkpoint` verifies the checksum (a mismatch is a
:class:`CheckpointError`; a checkpoint without a sidecar, e.g. one written before checksums were
kept, loads with a :class:`UnverifiedCheckpointWarning`) and then validates every field
(:func:`validate_checkpoint`: format, ``step >= 0`` and equal to the history's last step, valid
configs, tensor shapes that fit the model of ``model_config``). :func:`load_newest_intact` is
what resuming from a run directory uses: the newest checkpoint that passes, with the ones it
skipped.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import random
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsl_explore.io import atomic_write_bytes, verify_checksum, write_checksum
from dsl_explore.training.config import LIVE_FIELDS, RESUME_OVERRIDABLE, TrainingConfig
from dsl_explore.training.errors import CheckpointError

__all__ = [
    "CKPT_FORMAT",
    "Checkpointer",
    "UnverifiedCheckpointWarning",
    "capture_rng",
    "list_checkpoints",
    "load_checkpoint",
    "load_newest_intact",
    "restore_rng",
    "resume_config",
    "resume_dir",
    "save_checkpoint",
    "validate_checkpoint",
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


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint without a ``.sha256`` sidecar was loaded (its bytes could not be checked)."""


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``state`` to memory, write it atomically to ``path``, then its checksum
    to ``path.sha256`` (see the module docstring)."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    data = buf.getvalue()
    target = atomic_write_bytes(path, data)
    write_checksum(target, data)
    return target


def _remove_with_checksum(f: Path) -> None:
    for victim in (f, f.with_name(f.name + ".sha256")):
        with contextlib.suppress(FileNotFoundError):
            victim.unlink()


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
                _remove_with_checksum(f)
        return target

    def clear(self) -> None:
        """Delete every periodic checkpoint (a run that starts over in this directory)."""
        for old in list_checkpoints(self.run_dir):
            _remove_with_checksum(old)


def load_checkpoint(path: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)``, verify and validate it.

    ``path`` may be a checkpoint file or a run directory (its newest checkpoint is used; see
    :func:`load_newest_intact` for falling back to an older one). The returned dict has the
    checkpoint's entries plus ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file or a run directory.
    verify : bool
        Check the bytes against ``<path>.sha256``. Without a sidecar the checkpoint still loads,
        with an :class:`UnverifiedCheckpointWarning`.

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, corrupt (its checksum does not match), not a
        dsl_explore training checkpoint, or holds invalid fields (:func:`validate_checkpoint`).
        Nothing the file holds is executed: ``weights_only=True`` refuses any pickled object
        other than tensors and plain containers.
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
        data = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {str(p)!r}: {exc}") from exc
    if verify:
        ok = verify_checksum(p, data)
        if ok is False:
            raise CheckpointError(
                f"cannot read checkpoint {str(p)!r}: it is corrupt (its SHA-256 does not match "
                f"{p.name}.sha256: the file changed after it was written)"
            )
        if ok is None:
            warnings.warn(
                f"checkpoint {str(p)!r} has no {p.name}.sha256 checksum (written by an older "
                "version?): loaded unverified",
                UnverifiedCheckpointWarning, stacklevel=2,
            )
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        raise CheckpointError(
            f"cannot read checkpoint {str(p)!r} (corrupt, truncated, not a torch file, or "
            f"holding objects that weights_only=True refuses): {type(exc).__name__}: {detail}"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{str(p)!r} is not a dsl_explore training checkpoint")
    validate_checkpoint(ckpt, str(p))
    ckpt["path"] = str(p)
    return ckpt


def _int_list(v: object) -> list[int] | None:
    if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                          for i in v):
        return None
    return v


def _check_history(hist: object, step: int, where: str) -> None:
    if not isinstance(hist, dict) or not isinstance(hist.get("steps"), dict):
        raise CheckpointError(f"checkpoint {where!r} holds no valid history")
    steps = _int_list(hist["steps"].get("step"))
    if steps is None:
        raise CheckpointError(f"checkpoint {where!r}: history steps are not a list of ints")
    if any(b <= a for a, b in itertools.pairwise(steps)) or (steps and steps[0] < 1):
        raise CheckpointError(
            f"checkpoint {where!r}: its history steps are not increasing from 1 (duplicated or "
            "reordered steps)"
        )
    if steps and steps[-1] != step:
        raise CheckpointError(
            f"checkpoint {where!r}: step {step} does not match its history, which ends at step "
            f"{steps[-1]}"
        )
    evals = hist.get("evals")
    ev_steps = _int_list(evals.get("step")) if isinstance(evals, dict) else None
    if ev_steps is None or any(s < 0 or s > step for s in ev_steps):
        raise CheckpointError(
            f"checkpoint {where!r}: its history's evaluations are missing or lie outside steps "
            f"0..{step}"
        )


def _check_model_shapes(ckpt: Mapping[str, Any], where: str) -> None:
    from dsl_explore.models import model_from_config

    state = ckpt["model_state"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(f"checkpoint {where!r}: model_state is not a dict of tensors")
    try:  # on the meta device: no memory, no draw from the global RNG
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = model_from_config(ckpt["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {where!r} holds an invalid model_config: {exc}") from exc
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        bad = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        k = bad[0]
        raise CheckpointError(
            f"checkpoint {where!r}: the model state does not fit its model_config: {k!r} has "
            f"shape {got.get(k, 'missing')}, the model needs {want.get(k, 'none')}"
            f"{f' ({len(bad)} entries differ)' if len(bad) > 1 else ''}"
        )


def validate_checkpoint(ckpt: Mapping[str, Any], where: str = "checkpoint") -> None:
    """Check every field of a checkpoint dict as :func:`torch.load` returned it.

    ``format`` and the required entries; ``step`` an int ``>= 0`` equal to the last step of the
    history (whose steps increase from 1, evaluations within ``0..step``); ``config`` and
    ``initial_config`` valid :class:`TrainingConfig` dicts; ``model_state`` tensors of the shapes
    of the model ``model_config`` describes; ``optimizer_state`` a dict.

    Raises
    ------
    CheckpointError
        Naming ``where`` and the first field that fails.

    Examples
    --------
    >>> validate_checkpoint({"format": CKPT_FORMAT, "step": -5}, "x.pt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dsl_explore.training.errors.CheckpointError: checkpoint 'x.pt' lacks config, model_config, ...
    """
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {where!r} lacks {', '.join(missing)}")
    step = ckpt["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"checkpoint {where!r}: step must be an int >= 0, got {step!r}")
    for key in ("config", "initial_config"):
        if key not in ckpt:
            continue
        try:
            TrainingConfig.from_dict(ckpt[key])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {where!r} holds an invalid {key}: {exc}") from exc
    if "history" in ckpt:
        _check_history(ckpt["history"], step, where)
    if not isinstance(ckpt["optimizer_state"], Mapping):
        raise CheckpointError(f"checkpoint {where!r}: optimizer_state is not a dict")
    _check_model_shapes(ckpt, where)


def load_newest_intact(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """The newest checkpoint of ``run_dir`` that loads, verifies and validates.

    Returns
    -------
    (dict, list of str)
        The checkpoint (as :func:`load_checkpoint` returns it) and one line per newer one that
        was skipped, naming the file and why, newest first.

    Raises
    ------
    CheckpointError
        No checkpoint, or none intact (the message names each one and why).
    """
    d = Path(run_dir)
    found = list_checkpoints(d)
    if not found:
        raise CheckpointError(f"no checkpoint found in run directory {str(d)!r}")
    skipped: list[str] = []
    for p in reversed(found):
        try:
            return load_checkpoint(p), skipped
        except CheckpointError as exc:
            skipped.append(str(exc))
    raise CheckpointError(
        f"no intact checkpoint in run directory {str(d)!r}: " + "; ".join(skipped)
    )


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
