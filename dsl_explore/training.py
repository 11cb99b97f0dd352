r"""Training that runs live: an autoencoder trains in a background thread under your hands.

A :class:`TrainingRun` trains a :class:`~dsl_explore.models.ConvAutoencoder` on one of the
generated data sets of :mod:`dsl_explore.data` (or your own array) with

.. math::

    \mathcal{L} = \mathrm{MSE}(x, y) + \lambda \, \mathrm{DSL}_{k,w}(x, y)
    \qquad\text{or}\qquad
    \mathcal{L} = \mathrm{MSE}(x, y) + \lambda \, \mathrm{PH}_p(x, y),

(``loss="mse"``, ``"mse+dsl"`` or ``"mse+ph"``; see :mod:`dsl_explore.loss` and
:mod:`dsl_explore.phloss`). It runs in a daemon thread so a notebook kernel and its widgets stay
responsive: :meth:`TrainingRun.start`, :meth:`~TrainingRun.pause`, :meth:`~TrainingRun.resume`,
:meth:`~TrainingRun.stop`, and :meth:`~TrainingRun.set` changes ``lam``, ``k``, ``weights``,
``surrogate`` and ``lr`` while it runs (applied before the next step and recorded in the history
as an event).

How the hot loop avoids host syncs
----------------------------------
The loss terms of every step are written into a small tensor buffer on the training device
(``eval_every`` rows); nothing is read back to the host per step. Every ``eval_every`` steps (and
before a checkpoint, a pause or the end) the buffer is copied to the host in one transfer and
appended to :attr:`TrainingRun.history`. At the same moments the model reconstructs a *fixed*
validation batch; the reconstruction, its target and its metrics (exact sign-mismatch rate,
mismatched critical points, Betti error) are computed on CPU numpy copies of a few samples and
published as :meth:`TrainingRun.snapshot`. So the per-step history lags by at most
``eval_every`` steps. (The PH-loss baseline is the exception: it computes persistence on the CPU
every step, which is exactly its cost.)

Device and precision
--------------------
``device="auto"`` takes CUDA when available, else the CPU. ``amp=True`` runs the model under
``torch.autocast`` in bfloat16 (float16 with a gradient scaler where bfloat16 is unsupported) on
CUDA only; **on the CPU ``amp`` is ignored** (training stays float32). The losses are always
computed in float32.

Checkpoints and resuming
------------------------
:meth:`TrainingRun.checkpoint` writes model and optimizer state, the (live) config, the
history, the step, the data-order generator and RNG states atomically (a temporary file, then
``os.replace``). :meth:`TrainingRun.from_checkpoint` loads it with ``torch.load(...,
weights_only=True)`` and continues: on the CPU a run killed at step ``s`` and resumed from its
checkpoint has exactly the history of an uninterrupted run (the data order comes from a seeded
``torch.Generator`` whose state is checkpointed). Evaluations happen at multiples of
``eval_every`` and at the final step.

Examples
--------
>>> from dsl_explore.training import TrainingConfig, train
>>> cfg = TrainingConfig(spatial_dims=1, size=64, n_samples=24, steps=4, eval_every=2,
...                      batch_size=8, base_channels=4)
>>> run = train(cfg, progress=False)
>>> run.step, run.history["steps"]["step"]
(4, [1, 2, 3, 4])
>>> sorted(run.snapshot()["metrics"])[:3]
['betti_per_dim', 'betti_total', 'changed']
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import json
import math
import numbers
import os
import random
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    tomllib = None  # type: ignore[assignment]

from dsl_explore._validation import check_choice, check_k, resolve_weights
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import mismatched_critical_points
from dsl_explore.data import DATASET_KINDS, load_array, make_dataset, split
from dsl_explore.export import atomic_write_bytes, atomic_write_text
from dsl_explore.loss import SURROGATES, directional_sign_loss
from dsl_explore.models import ConvAutoencoder, build_model, model_config
from dsl_explore.phloss import persistent_homology_loss
from dsl_explore.topology import betti_error, diagram_distance

__all__ = [
    "DEVICES",
    "LOSSES",
    "CheckpointError",
    "TrainingConfig",
    "TrainingError",
    "TrainingRun",
    "evaluate_model",
    "load_checkpoint",
    "make_training_data",
    "resolve_device",
    "train",
]

LOSSES = ("mse", "mse+dsl", "mse+ph")
"""The training objectives: plain MSE, MSE + lambda DSL, MSE + lambda PH-loss."""

DEVICES = ("auto", "cpu", "cuda")

_CKPT_FORMAT = "dsl_explore.training/1"
_ARRAY_DATA = "array"
# Fields a resumed run may take from a new config; every other field must match the checkpoint.
_RESUME_OVERRIDABLE = ("steps", "checkpoint_every", "keep_checkpoints", "device")
_LIVE = ("lam", "k", "weights", "surrogate", "lr")


class TrainingError(RuntimeError):
    """The training thread failed; ``__cause__`` is the original exception.

    Attributes
    ----------
    step : int
        The number of completed steps when it failed.
    traceback_text : str
        The formatted traceback from the training thread (also in the message).
    """

    def __init__(self, message: str, *, step: int, traceback_text: str) -> None:
        super().__init__(message)
        self.step = step
        self.traceback_text = traceback_text


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the run (nothing was written)."""


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int_field(name: str, v: object, minimum: int) -> int:
    if not _is_int(v):
        raise ValueError(f"config field {name!r} must be an int >= {minimum}, got {v!r}")
    if int(v) < minimum:  # type: ignore[arg-type]
        raise ValueError(f"config field {name!r} must be an int >= {minimum}, got {v!r}")
    return int(v)  # type: ignore[arg-type]


def _float_field(name: str, v: object, *, minimum: float, strict: bool) -> float:
    if not _is_real(v) or not math.isfinite(float(v)):  # type: ignore[arg-type]
        raise ValueError(f"config field {name!r} must be a finite number, got {v!r}")
    f = float(v)  # type: ignore[arg-type]
    if (f <= minimum) if strict else (f < minimum):
        op = ">" if strict else ">="
        raise ValueError(f"config field {name!r} must be {op} {minimum}, got {v!r}")
    return f


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a training run (validated on construction).

    Every field can be set from a TOML file (:meth:`from_toml`) or from ``dsl-explore train``
    flags (``--batch-size 16`` for ``batch_size``). Errors are :class:`ValueError` naming the
    field.

    Attributes
    ----------
    data : str
        A generator of :data:`dsl_explore.data.DATASET_KINDS` (``"bumps"``, ``"sinusoids"``,
        ``"blobs"``, ``"grf"``, ``"marschner_lobb"``), or ``"array"`` for data passed to
        :class:`TrainingRun` directly. Ignored when ``data_path`` is set.
    data_path : str or None
        A ``.npy``/``.npz`` file read with :func:`dsl_explore.data.load_array` (normalised to
        [0, 1] per sample).
    data_key : str or None
        The array inside an ``.npz`` file.
    data_options : dict
        Extra keyword options of the generator (e.g. ``{"n_extrema": 12}`` for ``"bumps"``).
    n_samples : int
        Samples generated (train + validation).
    size : int or tuple of int
        Spatial size; an int is used for every spatial axis. Must suit the model (a multiple of
        ``2**depth``; the model says which sizes are valid).
    spatial_dims : int
        1, 2 or 3. With ``data_path`` it must match the file's data.
    val_fraction : float
        Held-out fraction (in (0, 1)); the fixed snapshot batch comes from it.
    data_seed : int
        Seed of the generator and of the train/validation split.
    compression, base_channels : int
        Model options (:class:`~dsl_explore.models.ConvAutoencoder`).
    loss : {"mse", "mse+dsl", "mse+ph"}
        The objective.
    lam : float
        Weight of the DSL or PH term, >= 0 (0 with ``"mse+dsl"`` is plain MSE that still logs
        DSL and can be changed live).
    k, weights, surrogate
        DSL sharpness (for [0, 1] data), per-axis weights (one per spatial axis, default all 1)
        and sign surrogate (:func:`~dsl_explore.loss.directional_sign_loss`).
    ph_order : float
        Exponent of the PH loss (:func:`~dsl_explore.phloss.persistent_homology_loss`).
    ph_samples : int or None
        Compute the PH term on only the first ``ph_samples`` samples of each batch (it costs a
        CPU persistence computation per sample); ``None`` uses the whole batch.
    lr : float
        Adam learning rate (> 0).
    batch_size, steps : int
        Batch size (at most the number of training samples) and total optimisation steps.
    eval_every : int
        Flush the loss buffer and evaluate the snapshot batch every this many steps.
    eval_samples : int
        Size of the fixed validation batch for snapshots and live metrics.
    betti_thresholds : int
        Number of thresholds of the Betti error (:func:`~dsl_explore.topology.betti_error`).
    checkpoint_every : int
        Write a checkpoint every this many steps (0: only at the end / on stop) when the run has
        a run directory.
    keep_checkpoints : int
        How many periodic checkpoints to keep (older ones are deleted; >= 1).
    seed : int
        Seed of the model initialisation and of the data order.
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: CUDA when available.
    amp : bool
        Mixed precision (CUDA only; ignored on the CPU).

    Examples
    --------
    >>> cfg = TrainingConfig(loss="mse+dsl", lam=0.5, spatial_dims=2, size=16)
    >>> cfg.size
    (16, 16)
    >>> TrainingConfig.from_toml(cfg.to_toml()) == cfg
    True
    >>> TrainingConfig(lam=-1)
    Traceback (most recent call last):
    ...
    ValueError: config field 'lam' must be >= 0.0, got -1
    """

    data: str = "blobs"
    data_path: str | None = None
    data_key: str | None = None
    data_options: dict = dataclasses.field(default_factory=dict)
    n_samples: int = 256
    size: int | tuple[int, ...] = 32
    spatial_dims: int = 2
    val_fraction: float = 0.2
    data_seed: int = 0
    compression: int = 16
    base_channels: int = 16
    loss: str = "mse+dsl"
    lam: float = 0.5
    k: float = 20.0
    weights: tuple[float, ...] | None = None
    surrogate: str = "tanh"
    ph_order: float = 2.0
    ph_samples: int | None = None
    lr: float = 1e-3
    batch_size: int = 16
    steps: int = 1000
    eval_every: int = 50
    eval_samples: int = 4
    betti_thresholds: int = 16
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = False

    def __post_init__(self) -> None:
        s = object.__setattr__
        if not isinstance(self.data, str) or self.data not in (*DATASET_KINDS, _ARRAY_DATA):
            raise ValueError(
                f"config field 'data' must be one of {', '.join(map(repr, DATASET_KINDS))} or "
                f"'array', got {self.data!r}"
            )
        for name in ("data_path", "data_key"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, (str, os.PathLike)):
                raise ValueError(f"config field {name!r} must be a string or None, got {v!r}")
            if isinstance(v, os.PathLike):
                s(self, name, os.fspath(v))
        if not isinstance(self.data_options, Mapping):
            raise ValueError(
                f"config field 'data_options' must be a table (dict), got {self.data_options!r}"
            )
        s(self, "data_options", dict(self.data_options))
        sd = self.spatial_dims
        if not _is_int(sd) or not 1 <= int(sd) <= 3:
            raise ValueError(f"config field 'spatial_dims' must be 1, 2 or 3, got {sd!r}")
        s(self, "spatial_dims", int(sd))
        size = self.size
        if _is_int(size):
            size = (int(size),) * self.spatial_dims  # type: ignore[arg-type]
        if isinstance(size, (str, bytes)) or not isinstance(size, Sequence):
            raise ValueError(f"config field 'size' must be an int or a list of ints, got {size!r}")
        size = tuple(size)
        if len(size) != self.spatial_dims or not all(_is_int(v) and v >= 2 for v in size):
            raise ValueError(
                f"config field 'size' must be an int or {self.spatial_dims} ints >= 2 (one per "
                f"spatial axis), got {self.size!r}"
            )
        s(self, "size", tuple(int(v) for v in size))
        s(self, "n_samples", _int_field("n_samples", self.n_samples, 2))
        vf = _float_field("val_fraction", self.val_fraction, minimum=0.0, strict=True)
        if vf >= 1:
            raise ValueError(f"config field 'val_fraction' must be < 1, got {vf!r}")
        s(self, "val_fraction", vf)
        for name in ("data_seed", "seed"):
            s(self, name, _int_field(name, getattr(self, name), 0))
        s(self, "compression", _int_field("compression", self.compression, 1))
        s(self, "base_channels", _int_field("base_channels", self.base_channels, 1))
        if self.loss not in LOSSES:
            raise ValueError(
                f"config field 'loss' must be one of {', '.join(map(repr, LOSSES))}, "
                f"got {self.loss!r}"
            )
        s(self, "lam", _float_field("lam", self.lam, minimum=0.0, strict=False))
        s(self, "k", _float_field("k", self.k, minimum=0.0, strict=True))
        try:
            w = resolve_weights(self.weights, self.spatial_dims)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config field 'weights': {exc}") from None
        s(self, "weights", w)
        if self.surrogate not in SURROGATES:
            raise ValueError(
                f"config field 'surrogate' must be one of {', '.join(map(repr, SURROGATES))}, "
                f"got {self.surrogate!r}"
            )
        s(self, "ph_order", _float_field("ph_order", self.ph_order, minimum=1.0, strict=False))
        if self.ph_samples is not None:
            s(self, "ph_samples", _int_field("ph_samples", self.ph_samples, 1))
        s(self, "lr", _float_field("lr", self.lr, minimum=0.0, strict=True))
        for name, lo in (
            ("batch_size", 1),
            ("steps", 0),
            ("eval_every", 1),
            ("eval_samples", 1),
            ("betti_thresholds", 1),
            ("checkpoint_every", 0),
            ("keep_checkpoints", 1),
        ):
            s(self, name, _int_field(name, getattr(self, name), lo))
        if self.device not in DEVICES:
            raise ValueError(
                f"config field 'device' must be one of {', '.join(map(repr, DEVICES))}, "
                f"got {self.device!r}"
            )
        if not isinstance(self.amp, bool):
            raise ValueError(f"config field 'amp' must be true or false, got {self.amp!r}")

    # -- conversions ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists instead of tuples), JSON and TOML friendly."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, dict):
                v = copy.deepcopy(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingConfig:
        """Build a config from a dict; unknown keys are a ValueError naming them."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a config must be a table (dict), got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown config field(s) {', '.join(map(repr, unknown))}; known fields: "
                f"{', '.join(sorted(names))}"
            )
        return cls(**dict(d))

    def to_toml(self) -> str:
        """TOML text of the config (fields that are ``None`` are left out)."""
        lines = ["# dsl_explore training config"]
        for key, value in self.to_dict().items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> TrainingConfig:
        """Read a config from TOML text or a ``.toml`` file path.

        A ``[training]`` table is read if present, else the top level.
        """
        text: str
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and source.endswith(".toml")
        ):
            path = Path(source)
            if not path.is_file():
                raise ValueError(f"config file {str(path)!r} does not exist")
            text = path.read_text(encoding="utf-8")
        elif isinstance(source, str):
            text = source
        else:
            raise ValueError(f"source must be TOML text or a path, got {type(source).__name__}")
        if tomllib is None:  # pragma: no cover - Python 3.10
            raise ValueError("reading TOML configs needs Python >= 3.11 (tomllib)")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"invalid TOML config: {exc}") from None
        if "training" in data and isinstance(data["training"], dict):
            data = data["training"]
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for everything json escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items())
        return "{ " + items + " }" if items else "{}"
    raise ValueError(f"cannot write {v!r} ({type(v).__name__}) as TOML")


# --------------------------------------------------------------------------------------------
# data, device, evaluation
# --------------------------------------------------------------------------------------------


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is a ValueError."""
    check_choice(device, "device", DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return torch.device(device)


def make_training_data(
    config: TrainingConfig, data: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(train, val)`` float32 ``(N, C, *spatial)`` arrays a config describes.

    ``data`` (an array or tensor) is used instead of the config's source when given; it goes
    through :func:`~dsl_explore.data.load_array` (validated, normalised per sample to [0, 1]).
    The split is :func:`~dsl_explore.data.split` with ``val_fraction`` and ``data_seed``.

    Examples
    --------
    >>> tr, va = make_training_data(TrainingConfig(spatial_dims=1, size=32, n_samples=10))
    >>> tr.shape, va.shape
    ((8, 1, 32), (2, 1, 32))
    """
    if data is not None:
        arr = load_array(data)
    elif config.data_path is not None:
        arr = load_array(config.data_path, key=config.data_key)
    elif config.data == _ARRAY_DATA:
        raise ValueError(
            "config field 'data' is 'array' but no data was given: pass data= (an array)"
        )
    else:
        try:
            arr = make_dataset(
                config.data,
                config.n_samples,
                config.size,
                seed=config.data_seed,
                **config.data_options,
            )
        except TypeError as exc:
            raise ValueError(
                f"config field 'data_options' ({config.data_options}): {exc}"
            ) from None
    if arr.ndim - 2 != config.spatial_dims:
        raise ValueError(
            f"config field 'spatial_dims' is {config.spatial_dims} but the data has "
            f"{arr.ndim - 2} spatial axes (shape {tuple(arr.shape)})"
        )
    if arr.shape[0] < 2:
        raise ValueError(f"the data needs at least 2 samples to hold some out, got {arr.shape[0]}")
    train_arr, val_arr = split(arr, val_fraction=config.val_fraction, seed=config.data_seed)
    return np.ascontiguousarray(train_arr), np.ascontiguousarray(val_arr)


def _spatial_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(2, ndim))


def _topology_metrics(
    rec: np.ndarray, tgt: np.ndarray, *, thresholds: int, bottleneck: bool
) -> dict[str, Any]:
    """Metrics of a batch ``(N, C, *spatial)`` on the host; critical points and Betti per sample."""
    axes = _spatial_axes(rec.ndim)
    n = rec.shape[0] * rec.shape[1]
    out: dict[str, Any] = {}
    out["mse"] = float(np.mean((rec.astype(np.float64) - tgt.astype(np.float64)) ** 2))
    out["psnr"] = float(10 * np.log10(1.0 / max(out["mse"], 1e-30)))
    out["count_rate"] = float(sign_mismatch_count(rec, tgt, dims=axes, reduction="mean"))
    cm = mismatched_critical_points(rec, tgt, dims=axes)
    out["spurious"] = cm.n_spurious / n
    out["lost"] = cm.n_lost / n
    out["changed"] = cm.n_changed / n
    be = betti_error(rec, tgt, thresholds=thresholds, dims=axes)
    per_dim = np.asarray(be.per_dim, dtype=np.float64).reshape(-1, len(axes))
    out["betti_per_dim"] = [float(v) for v in per_dim.mean(axis=0)]
    out["betti_total"] = float(np.mean(be.total))
    out["betti_relative"] = float(np.mean(np.asarray(be.relative)))
    if bottleneck:
        out["bottleneck"] = float(np.mean(diagram_distance(rec, tgt, dims=axes)))
    return out


def evaluate_model(
    model: torch.nn.Module,
    data: np.ndarray | torch.Tensor,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    betti_thresholds: int = 16,
    bottleneck: bool = True,
    k: float | None = 20.0,
) -> dict[str, Any]:
    """Reconstruct held-out ``data`` and measure it: means over samples.

    Returns a dict with ``mse``, ``psnr`` (peak 1, the data being in [0, 1]), ``count_rate``
    (exact sign-mismatch rate), ``spurious``/``lost``/``changed`` (mismatched axis-wise critical
    points per sample), ``betti_per_dim``, ``betti_total``, ``betti_relative``, ``bottleneck``
    (optional) and ``dsl`` (DSL with sharpness ``k``, mean reduction; left out for ``k=None``).

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.models import build_model
    >>> m = evaluate_model(build_model(1, compression=8, base_channels=4),
    ...                    np.random.default_rng(0).random((3, 1, 32), dtype=np.float32))
    >>> sorted(m)
    ['betti_per_dim', 'betti_relative', 'betti_total', 'bottleneck', 'changed', 'count_rate',
     'dsl', 'lost', 'mse', 'psnr', 'spurious']
    """
    dev = torch.device(device)
    x = torch.as_tensor(np.asarray(data, dtype=np.float32) if not torch.is_tensor(data) else data)
    was_training = model.training
    model.eval()
    recs = []
    try:
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                recs.append(model(x[i : i + batch_size].to(dev)).float().cpu())
    finally:
        model.train(was_training)
    rec = torch.cat(recs).numpy()
    tgt = x.float().cpu().numpy()
    out = _topology_metrics(rec, tgt, thresholds=betti_thresholds, bottleneck=bottleneck)
    if k is not None:
        out["dsl"] = float(directional_sign_loss(rec, tgt, k=k))
    return out


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)`` and check its layout.

    ``path`` may be a checkpoint file or a run directory (its newest checkpoint is used).

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, corrupt or not a dsl_explore training checkpoint.
    """
    p = Path(path)
    if p.is_dir():
        found = _list_checkpoints(p)
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
    required = ("format", "config", "model_config", "model_state", "optimizer_state", "step")
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CKPT_FORMAT:
        raise CheckpointError(f"{str(p)!r} is not a dsl_explore training checkpoint")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {str(p)!r} lacks {', '.join(missing)}")
    ckpt["path"] = str(p)
    return ckpt


def _list_checkpoints(run_dir: Path) -> list[Path]:
    d = run_dir / "checkpoints"
    if not d.is_dir():
        return []
    files = [f for f in d.iterdir() if re.fullmatch(r"step_\d+\.pt", f.name)]
    return sorted(files, key=lambda f: int(f.stem.split("_")[1]))


def _np_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_np_rng_state(s: Mapping[str, Any]) -> None:
    np.random.set_state(  # noqa: NPY002
        (
            s["name"],
            s["keys"].numpy().astype(np.uint32),
            int(s["pos"]),
            int(s["has_gauss"]),
            float(s["cached_gaussian"]),
        )
    )


def _py_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _step_columns(loss: str) -> tuple[str, ...]:
    if loss == "mse":
        return ("mse", "total")
    if loss == "mse+dsl":
        return ("mse", "dsl", "total")
    return ("mse", "ph", "total")


def _new_history(loss: str) -> dict[str, Any]:
    cols = ["step", *_step_columns(loss), "lr"] + ([] if loss == "mse" else ["lam"])
    return {
        "steps": {c: [] for c in cols},
        "evals": {
            c: []
            for c in (
                "step",
                "val_mse",
                "count_rate",
                "spurious",
                "lost",
                "changed",
                "betti_total",
                "betti_per_dim",
            )
        },
        "events": [],
    }


class TrainingRun:
    """A training run that can execute in a background thread and be steered while it runs.

    Parameters
    ----------
    config : TrainingConfig or dict
        What to train (a dict is passed to :meth:`TrainingConfig.from_dict`).
    run_dir : path, optional
        Where ``config.toml``, ``checkpoints/step_*.pt``, ``history.json``/``.csv`` and
        ``metrics.json`` go. An existing non-empty directory is an error unless
        ``overwrite=True`` (or the run resumes from a checkpoint in it). Without a run
        directory nothing is written unless you call :meth:`checkpoint` / :meth:`save_history`
        with a path.
    progress : bool
        Show a ``tqdm.auto`` progress bar (terminal or notebook).
    overwrite : bool
        Allow a non-empty ``run_dir`` (its old checkpoints are removed when the run starts).
    data : array or tensor, optional
        Training data ``(N, C, *spatial)`` (or anything :func:`~dsl_explore.data.load_array`
        reads) instead of the config's generator; ``config.data`` should be ``"array"``.

    Attributes
    ----------
    model, optimizer, device, step, config
        The live objects; ``config`` reflects the latest :meth:`set` changes.
    error : BaseException or None
        The exception that ended the training thread, if any.

    Examples
    --------
    >>> cfg = TrainingConfig(spatial_dims=1, size=64, n_samples=24, steps=6, eval_every=3,
    ...                      batch_size=8, base_channels=4, lam=0.0)
    >>> run = TrainingRun(cfg)
    >>> run.set(lam=0.5)                 # applied before the next step (here: step 1)
    >>> run.start().join()
    >>> run.step, run.history["events"][0]["changes"]
    (6, {'lam': 0.5})
    """

    def __init__(
        self,
        config: TrainingConfig | Mapping[str, Any],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
        overwrite: bool = False,
        data: Any = None,
        _resume: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(config, Mapping):
            config = TrainingConfig.from_dict(config)
        if not isinstance(config, TrainingConfig):
            raise TypeError(
                f"config must be a TrainingConfig or a dict, got {type(config).__name__}"
            )
        self.config = config
        self.initial_config = config if _resume is None else TrainingConfig.from_dict(
            _resume.get("initial_config", _resume["config"])
        )
        self.progress = bool(progress)
        self.device = resolve_device(config.device)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self._overwrite = bool(overwrite)
        if self.run_dir is not None:
            if self.run_dir.exists() and not self.run_dir.is_dir():
                raise ValueError(f"run directory {str(self.run_dir)!r} is a file")
            non_empty = self.run_dir.is_dir() and any(self.run_dir.iterdir())
            resuming_here = _resume is not None and _resume.get("_same_dir", False)
            if non_empty and not overwrite and not resuming_here:
                raise FileExistsError(
                    f"run directory {str(self.run_dir)!r} exists and is not empty; pass "
                    "overwrite=True (--overwrite) to reuse it, or resume from its checkpoint"
                )

        # data (validated before anything is built or written)
        train_arr, val_arr = make_training_data(config, data)
        if config.batch_size > train_arr.shape[0]:
            raise ValueError(
                f"config field 'batch_size' ({config.batch_size}) is larger than the training "
                f"set ({train_arr.shape[0]} samples)"
            )
        if config.weights is not None and len(config.weights) != train_arr.ndim - 2:
            raise ValueError("config field 'weights' needs one entry per spatial axis")

        # model: initialised from `seed` without touching the caller's global RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = build_model(
                config.spatial_dims,
                compression=config.compression,
                base_channels=config.base_channels,
                in_channels=int(train_arr.shape[1]),
            )
        model.check_input_shape(train_arr.shape)
        self.model: ConvAutoencoder = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self._amp = bool(config.amp and self.device.type == "cuda")
        self._amp_dtype = (
            torch.bfloat16
            if self._amp and torch.cuda.is_bf16_supported()
            else torch.float16
        )
        self._scaler = (
            torch.amp.GradScaler("cuda")
            if self._amp and self._amp_dtype == torch.float16
            else None
        )

        self._train = torch.from_numpy(train_arr).to(self.device)
        self._n_train = int(train_arr.shape[0])
        n_fixed = min(config.eval_samples, val_arr.shape[0])
        self._val_fixed = torch.from_numpy(val_arr[:n_fixed]).to(self.device)
        self.val_data = val_arr
        self._gen = torch.Generator().manual_seed(config.seed)
        self._perm = torch.randperm(self._n_train, generator=self._gen)
        self._perm_dev: torch.Tensor | None = None
        self._cursor = 0
        self.step = 0
        self._history = _new_history(config.loss)

        # threading state
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stop_flag = False
        self._pause_flag = False
        self._paused = False
        self._pending: dict[str, Any] = {}
        self._requests: list[tuple[Callable[[], Any], dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._error_tb = ""
        self.state = "created"
        self._snapshot: dict[str, Any] | None = None
        self._buf = torch.zeros(
            (config.eval_every, len(_step_columns(config.loss))), device=self.device
        )
        self._buf_host: list[tuple[int, float, float]] = []  # (step, lr, lam) per buffered row
        self._train_seconds = 0.0
        self._timed_steps = 0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._wrote_config = False
        self.last_checkpoint: Path | None = None

        if _resume is not None:
            self._load_state(_resume)

    # -- construction from a checkpoint --------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        config: TrainingConfig | Mapping[str, Any] | None = None,
        progress: bool = False,
        overwrite: bool = False,
        data: Any = None,
        **overrides: Any,
    ) -> TrainingRun:
        """Resume a run from a checkpoint file (or a run directory's newest checkpoint).

        Parameters
        ----------
        path
            The checkpoint, or a run directory.
        run_dir
            Where to keep writing; default the checkpoint's own run directory (resuming there
            is allowed even though it is not empty).
        config
            Optional config the checkpoint must match; it may differ only in ``steps``,
            ``checkpoint_every``, ``keep_checkpoints`` and ``device`` (which it then sets).
        overrides
            The same fields as keywords, e.g. ``steps=2000`` to train longer.

        Raises
        ------
        CheckpointError
            Unreadable / corrupt file, or a checkpoint of another model or config. Nothing is
            written in that case.
        """
        ckpt = load_checkpoint(path)
        ckpt_path = Path(ckpt["path"])
        try:
            saved = TrainingConfig.from_dict(ckpt["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {str(ckpt_path)!r} holds an invalid config: {exc}"
            ) from exc
        bad = sorted(set(overrides) - set(_RESUME_OVERRIDABLE))
        if bad:
            raise ValueError(
                f"cannot override {', '.join(bad)} when resuming; only "
                f"{', '.join(_RESUME_OVERRIDABLE)}"
            )
        if config is not None:
            if isinstance(config, Mapping):
                config = TrainingConfig.from_dict(config)
            mine, theirs = config.to_dict(), TrainingConfig.from_dict(
                ckpt.get("initial_config", ckpt["config"])
            ).to_dict()
            live = set(_LIVE)
            differ = [
                k
                for k in mine
                if k not in _RESUME_OVERRIDABLE and k not in live and mine[k] != theirs[k]
            ]
            if differ:
                raise CheckpointError(
                    f"checkpoint {str(ckpt_path)!r} is from another run/model: config field(s) "
                    f"{', '.join(differ)} differ (e.g. {differ[0]}: checkpoint "
                    f"{theirs[differ[0]]!r}, given {mine[differ[0]]!r})"
                )
            for k in _RESUME_OVERRIDABLE:
                overrides.setdefault(k, getattr(config, k))
        new_cfg = saved.replace(**overrides) if overrides else saved
        same_dir = False
        if run_dir is None and ckpt_path.parent.name == "checkpoints":
            run_dir = ckpt_path.parent.parent
        if run_dir is not None:
            try:
                same_dir = Path(run_dir).resolve() == ckpt_path.parent.parent.resolve()
            except OSError:
                same_dir = False
        state = dict(ckpt)
        state["_same_dir"] = same_dir
        return cls(
            new_cfg, run_dir=run_dir, progress=progress, overwrite=overwrite, data=data,
            _resume=state,
        )

    def _load_state(self, ckpt: Mapping[str, Any]) -> None:
        mine = model_config(self.model)
        theirs = dict(ckpt["model_config"])
        if mine != theirs:
            raise CheckpointError(
                f"checkpoint is from another model: {theirs} vs this run's {mine}"
            )
        try:
            self.model.load_state_dict(ckpt["model_state"], strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0:3]
            raise CheckpointError(
                "checkpoint's model state does not fit this model: " + " ".join(first)
            ) from exc
        try:
            self.optimizer.load_state_dict(ckpt["optimizer_state"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint's optimizer state does not fit: {exc}") from exc
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr
        if self._scaler is not None and ckpt.get("scaler_state"):
            self._scaler.load_state_dict(ckpt["scaler_state"])
        self.step = int(ckpt["step"])
        hist = ckpt.get("history")
        if not isinstance(hist, dict) or "steps" not in hist:
            raise CheckpointError("checkpoint lacks a valid history")
        self._history = copy.deepcopy(hist)
        if "data_generator_state" in ckpt:
            self._gen.set_state(ckpt["data_generator_state"])
            perm = ckpt["data_perm"]
            if perm.numel() != self._n_train:
                raise CheckpointError(
                    f"checkpoint's data order covers {perm.numel()} samples, this data has "
                    f"{self._n_train}: the checkpoint is from other data"
                )
            self._perm = perm.clone()
            self._perm_dev = None
            self._cursor = int(ckpt["data_cursor"])
        rng = ckpt.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            with contextlib.suppress(RuntimeError, IndexError):
                torch.cuda.set_rng_state_all(list(rng["cuda"]))
        if "numpy" in rng:
            _set_np_rng_state(rng["numpy"])
        if "python" in rng:
            v, internal, gauss = rng["python"]
            random.setstate((v, tuple(internal), gauss))
        self.last_checkpoint = Path(ckpt["path"]) if "path" in ckpt else None

    # -- public control ------------------------------------------------------------------------

    @property
    def history(self) -> dict[str, Any]:  # type: ignore[no-redef]
        """A consistent deep copy of the history (plain dicts and lists).

        ``history["steps"]``: per step ``step``, ``mse``, ``dsl`` (``"mse+dsl"``) or ``ph``
        (``"mse+ph"``), ``total``, ``lr``, ``lam``. ``history["evals"]``: per evaluation of the
        fixed validation batch ``step``, ``val_mse``, ``count_rate``, ``spurious``, ``lost``,
        ``changed`` (per sample), ``betti_total``, ``betti_per_dim``. ``history["events"]``:
        ``{"step": s, "event": "set", "changes": {...}}``, applied from step ``s`` on.
        The per-step part lags by up to ``eval_every`` steps while the run is going.
        """
        with self._lock:
            return copy.deepcopy(self._history)

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a training step (evaluations and checkpoints excluded)."""
        return self._train_seconds / self._timed_steps if self._timed_steps else float("nan")

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call ``fn(snapshot)`` from the training thread after every evaluation.

        An exception in ``fn`` fails the run like any other (never silently).
        """
        self._listeners.append(fn)

    def start(self) -> TrainingRun:
        """Start training in a background daemon thread; returns ``self``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the run is already running")
            if self.state in ("failed",):
                raise RuntimeError("the run failed; build a new one (or resume a checkpoint)")
            self._stop_flag = False
            self.state = "running"
            self._thread = threading.Thread(
                target=self._thread_main, name="dsl_explore-training", daemon=True
            )
            self._thread.start()
        return self

    def run(self) -> TrainingRun:
        """Train in the calling thread until done (Ctrl-C stops it and saves, then re-raises)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the run is already running in the background")
            self._stop_flag = False
            self.state = "running"
        try:
            self._loop()
        except KeyboardInterrupt:
            self._finish("stopped")
            raise
        except BaseException as exc:
            self._fail(exc)
            self.raise_if_failed()
        self._finish("finished" if self.step >= self.config.steps else "stopped")
        return self

    def pause(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Pause after the current step (buffers are flushed); ``wait`` until it has paused."""
        with self._cond:
            self._pause_flag = True
            self._cond.notify_all()
            deadline = None if timeout is None else time.monotonic() + timeout
            while wait and not self._paused and self._alive():
                if deadline is not None and time.monotonic() > deadline:
                    break
                self._cond.wait(timeout=0.05)

    def resume(self) -> None:
        """Continue a paused run."""
        with self._cond:
            self._pause_flag = False
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop after the current step; a final checkpoint and history are written when the run
        has a run directory. With ``wait``, join the thread (re-raising a failure)."""
        with self._cond:
            self._stop_flag = True
            self._pause_flag = False
            self._cond.notify_all()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread; raise :class:`TrainingError` if it failed."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        """Raise :class:`TrainingError` (chained to the original) if the training thread failed."""
        if self.error is not None:
            exc = self.error
            raise TrainingError(
                f"training failed at step {self.step}: {type(exc).__name__}: {exc}\n\n"
                f"Traceback in the training thread:\n{self._error_tb}",
                step=self.step,
                traceback_text=self._error_tb,
            ) from exc

    def is_alive(self) -> bool:
        """Whether the training thread is running (or paused)."""
        return self._alive()

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def set(self, **changes: Any) -> None:
        """Change ``lam``, ``k``, ``weights``, ``surrogate`` or ``lr``, live and thread-safe.

        The values are validated now (ValueError), applied before the next step and recorded
        in ``history["events"]`` with that step. ``lam``, ``k``, ``weights`` and ``surrogate``
        need ``loss="mse+dsl"`` (``lam`` also ``"mse+ph"``).
        """
        unknown = sorted(set(changes) - set(_LIVE))
        if unknown:
            raise ValueError(
                f"set() takes {', '.join(_LIVE)}; cannot change {', '.join(unknown)} live"
            )
        loss = self.config.loss
        clean: dict[str, Any] = {}
        for key, v in changes.items():
            if key == "lam":
                if loss == "mse":
                    raise ValueError(
                        "lam has no effect with loss='mse'; use loss='mse+dsl' with lam=0 to "
                        "change it live"
                    )
                clean[key] = _float_field("lam", v, minimum=0.0, strict=False)
            elif key in ("k", "weights", "surrogate") and loss != "mse+dsl":
                raise ValueError(f"{key} is a DSL setting; this run's loss is {loss!r}")
            elif key == "k":
                clean[key] = check_k(v)
            elif key == "weights":
                w = resolve_weights(v, self.config.spatial_dims)
                clean[key] = None if w is None else list(w)
            elif key == "surrogate":
                clean[key] = check_choice(v, "surrogate", tuple(SURROGATES))
            elif key == "lr":
                clean[key] = _float_field("lr", v, minimum=0.0, strict=True)
        with self._lock:
            self._pending.update(clean)

    def snapshot(self) -> dict[str, Any] | None:
        """The latest evaluation of the fixed validation batch (thread-safe), or ``None``.

        A dict with ``step``, ``reconstruction`` and ``target`` (numpy ``(n, C, *spatial)``),
        ``metrics`` (``val_mse``, ``count_rate``, ``spurious``, ``lost``, ``changed``,
        ``betti_total``, ``betti_per_dim``), ``loss`` (the last logged per-step terms) and
        ``state``. The arrays are fresh copies, safe to keep.
        """
        with self._lock:
            if self._snapshot is None:
                return None
            snap = dict(self._snapshot)
            snap["state"] = self.state
            return snap

    # -- files ---------------------------------------------------------------------------------

    def checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write a checkpoint atomically and return its path.

        ``path=None`` writes ``run_dir/checkpoints/step_XXXXXXXX.pt`` (keeping the newest
        ``keep_checkpoints``). Safe to call while training: it is written by the training
        thread between two steps.
        """
        if path is None and self.run_dir is None:
            raise ValueError("checkpoint() needs a path when the run has no run_dir")
        return self._in_worker(lambda: self._write_checkpoint(path))

    def save_history(self, path: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write the history atomically: ``.json`` (everything) or ``.csv`` (one row per step,
        evaluation columns filled at evaluation steps, ``betti_h<q>`` per dimension).

        ``path=None`` writes ``history.json`` and ``history.csv`` in the run directory.
        """
        if path is None:
            if self.run_dir is None:
                raise ValueError("save_history() needs a path when the run has no run_dir")
            targets = [self.run_dir / "history.json", self.run_dir / "history.csv"]
        else:
            p = Path(path)
            if p.suffix not in (".json", ".csv"):
                raise ValueError(f"history path must end in .json or .csv, got {str(p)!r}")
            targets = [p]
        self._in_worker(self._flush)
        hist = self.history
        for t in targets:
            if t.suffix == ".json":
                atomic_write_text(t, json.dumps(_jsonable(hist), indent=1) + "\n")
            else:
                atomic_write_text(t, _history_csv(hist))
        return targets

    def final_metrics(self) -> dict[str, Any]:
        """The last evaluation plus timing, as written to ``metrics.json``."""
        hist = self.history
        ev = hist["evals"]
        last = {k: v[-1] for k, v in ev.items() if v} if ev["step"] else {}
        return {
            "step": self.step,
            "state": self.state,
            "device": str(self.device),
            "seconds_per_step": self.seconds_per_step,
            "steps_per_second": (1.0 / self.seconds_per_step)
            if self.seconds_per_step == self.seconds_per_step and self.seconds_per_step > 0
            else None,
            "last_eval": last,
            "config": self.config.to_dict(),
        }

    # -- internals: thread plumbing ------------------------------------------------------------

    def _in_worker(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` between two steps of the worker thread (or here when no worker runs)."""
        if self._alive() and threading.current_thread() is not self._thread:
            box: dict[str, Any] = {}
            with self._cond:
                self._requests.append((fn, box))
                self._cond.notify_all()
                while "done" not in box and self._alive():
                    self._cond.wait(timeout=0.05)
            if "done" not in box:  # the worker ended first: do it here
                with self._lock:
                    return fn()
            if "error" in box:
                raise box["error"]
            return box["result"]
        with self._lock:
            return fn()

    def _serve_requests(self) -> None:
        with self._cond:
            reqs, self._requests = self._requests, []
        for fn, box in reqs:
            try:
                box["result"] = fn()
            except BaseException as exc:  # handed back to the caller
                box["error"] = exc
            with self._cond:
                box["done"] = True
                self._cond.notify_all()

    def _thread_main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._fail(exc)
            return
        self._finish("finished" if self.step >= self.config.steps else "stopped")

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self._error_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with contextlib.suppress(BaseException):
            self._flush()
        with self._cond:
            self.state = "failed"
            self._cond.notify_all()
        if self.run_dir is not None:  # keep what we have: history (the last checkpoint stays)
            with contextlib.suppress(BaseException):
                self.save_history()
        self._serve_requests()

    def _finish(self, state: str) -> None:
        self._flush()
        if self.run_dir is not None and self.step > 0:
            self._write_checkpoint(None)
            self.save_history()
            atomic_write_text(
                self.run_dir / "metrics.json",
                json.dumps(_jsonable(self.final_metrics()), indent=1) + "\n",
            )
        with self._cond:
            self.state = state
            self._cond.notify_all()
        self._serve_requests()

    # -- internals: the loop -------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        if self.run_dir is None or self._wrote_config:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._overwrite and self.step == 0:
            for old in _list_checkpoints(self.run_dir):
                old.unlink()
        atomic_write_text(self.run_dir / "config.toml", self.config.to_toml())
        self._wrote_config = True

    def _loop(self) -> None:
        from tqdm.auto import tqdm

        cfg = self.config
        self._prepare_run_dir()
        bar = tqdm(
            total=cfg.steps, initial=self.step, disable=not self.progress, desc=cfg.loss,
            unit="step", dynamic_ncols=True,
        )
        try:
            if self.step == 0 and self._snapshot is None:
                self._evaluate()
            while self.step < self.config.steps:
                self._serve_requests()
                if self._stop_flag:
                    break
                if self._pause_flag:
                    self._wait_paused()
                    continue
                self._apply_pending()
                t0 = time.perf_counter()
                self._train_step()
                self._train_seconds += time.perf_counter() - t0
                self._timed_steps += 1
                self.step += 1
                bar.update(1)
                cfg = self.config
                if len(self._buf_host) >= cfg.eval_every:
                    self._flush()
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._flush()
                    self._evaluate()
                    snap = self._snapshot or {}
                    m = snap.get("metrics", {})
                    bar.set_postfix(
                        loss=f"{snap.get('loss', {}).get('total', float('nan')):.4g}",
                        rate=f"{m.get('count_rate', float('nan')):.3f}",
                        betti=f"{m.get('betti_total', float('nan')):.2f}",
                        refresh=False,
                    )
                    for fn in list(self._listeners):
                        fn(self.snapshot())
                if (
                    cfg.checkpoint_every
                    and self.run_dir is not None
                    and self.step % cfg.checkpoint_every == 0
                    and self.step < cfg.steps
                ):
                    self._write_checkpoint(None)
        finally:
            bar.close()

    def _wait_paused(self) -> None:
        self._flush()
        with self._cond:
            self._paused = True
            self.state = "paused"
            self._cond.notify_all()
        while True:
            self._serve_requests()
            with self._cond:
                if not self._pause_flag or self._stop_flag:
                    break
                if not self._requests:
                    self._cond.wait(timeout=0.5)
        with self._cond:
            self._paused = False
            self.state = "running"
            self._cond.notify_all()

    def _apply_pending(self) -> None:
        with self._lock:
            if not self._pending:
                return
            changes, self._pending = self._pending, {}
            upd = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items()}
            self.config = self.config.replace(**upd)
            if "lr" in changes:
                for group in self.optimizer.param_groups:
                    group["lr"] = changes["lr"]
            self._history["events"].append(
                {"step": self.step + 1, "event": "set", "changes": dict(changes)}
            )

    def _next_batch(self) -> torch.Tensor:
        bs = self.config.batch_size
        if self._cursor + bs > self._n_train:
            self._perm = torch.randperm(self._n_train, generator=self._gen)
            self._perm_dev = None
            self._cursor = 0
        if self._perm_dev is None:  # one host-to-device copy per epoch, none per step
            self._perm_dev = self._perm.to(self.device)
        idx = self._perm_dev[self._cursor : self._cursor + bs]
        self._cursor += bs
        return self._train[idx]

    def _loss_terms(self, out: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        cfg = self.config
        mse = F.mse_loss(out, x)
        if cfg.loss == "mse":
            return [mse, mse]
        if cfg.loss == "mse+dsl":
            aux = directional_sign_loss(
                out, x, k=cfg.k, weights=cfg.weights, surrogate=cfg.surrogate
            )
        else:
            n = x.shape[0] if cfg.ph_samples is None else min(cfg.ph_samples, x.shape[0])
            aux = persistent_homology_loss(out[:n], x[:n], order=cfg.ph_order)
        return [mse, aux, mse + cfg.lam * aux]

    def _train_step(self) -> None:
        cfg = self.config
        x = self._next_batch()
        if self._amp:
            with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                out = self.model(x)
            out = out.float()
        else:
            out = self.model(x)
        terms = self._loss_terms(out, x)
        total = terms[-1]
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            total.backward()
            self.optimizer.step()
        row = len(self._buf_host)
        if row >= self._buf.shape[0]:  # eval_every was changed: grow the buffer
            self._flush()
            row = 0
        with torch.no_grad():
            self._buf[row] = torch.stack([t.detach().float() for t in terms])
        self._buf_host.append((self.step + 1, cfg.lr, cfg.lam))

    def _flush(self) -> None:
        """Move the buffered loss terms to the history: one device-to-host copy."""
        with self._lock:
            n = len(self._buf_host)
            if n == 0:
                return
            values = self._buf[:n].cpu().tolist()
            cols = _step_columns(self.config.loss)
            st = self._history["steps"]
            for (step, lr, lam), vals in zip(self._buf_host, values, strict=True):
                st["step"].append(step)
                for c, v in zip(cols, vals, strict=True):
                    st[c].append(float(v))
                st["lr"].append(float(lr))
                if "lam" in st:
                    st["lam"].append(float(lam))
            self._buf_host = []

    def _evaluate(self) -> None:
        cfg = self.config
        self.model.eval()
        try:
            with torch.no_grad():
                if self._amp:
                    with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                        rec = self.model(self._val_fixed)
                else:
                    rec = self.model(self._val_fixed)
        finally:
            self.model.train()
        rec_np = rec.float().cpu().numpy()
        tgt_np = self._val_fixed.cpu().numpy()
        m = _topology_metrics(rec_np, tgt_np, thresholds=cfg.betti_thresholds, bottleneck=False)
        metrics = {
            "val_mse": m["mse"],
            "count_rate": m["count_rate"],
            "spurious": m["spurious"],
            "lost": m["lost"],
            "changed": m["changed"],
            "betti_total": m["betti_total"],
            "betti_per_dim": m["betti_per_dim"],
        }
        with self._lock:
            ev = self._history["evals"]
            ev["step"].append(self.step)
            for key, v in metrics.items():
                ev[key].append(v)
            st = self._history["steps"]
            last = {c: st[c][-1] for c in st if st[c]}
            self._snapshot = {
                "step": self.step,
                "reconstruction": rec_np,
                "target": tgt_np,
                "metrics": metrics,
                "loss": last,
                "config": self.config.to_dict(),
            }

    def _write_checkpoint(self, path: str | os.PathLike[str] | None) -> Path:
        self._flush()
        with self._lock:
            if path is None:
                assert self.run_dir is not None
                target = self.run_dir / "checkpoints" / f"step_{self.step:08d}.pt"
            else:
                target = Path(path)
            state = {
                "format": _CKPT_FORMAT,
                "config": self.config.to_dict(),
                "initial_config": self.initial_config.to_dict(),
                "model_config": model_config(self.model),
                "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer_state": _to_cpu(self.optimizer.state_dict()),
                "scaler_state": None if self._scaler is None else self._scaler.state_dict(),
                "step": self.step,
                "history": copy.deepcopy(self._history),
                "data_generator_state": self._gen.get_state(),
                "data_perm": self._perm.clone(),
                "data_cursor": self._cursor,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": list(torch.cuda.get_rng_state_all())
                    if torch.cuda.is_available()
                    else [],
                    "numpy": _np_rng_state(),
                    "python": _py_rng_state(),
                },
                "torch_version": str(torch.__version__),
            }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(target, buf.getvalue())
        self.last_checkpoint = target
        if path is None and self.run_dir is not None:
            old = _list_checkpoints(self.run_dir)
            for f in old[: max(0, len(old) - self.config.keep_checkpoints)]:
                with contextlib.suppress(OSError):
                    f.unlink()
        return target


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def _history_csv(hist: Mapping[str, Any]) -> str:
    st, ev = hist["steps"], hist["evals"]
    step_cols = [c for c in st if c != "step"]
    n_dims = max((len(v) for v in ev.get("betti_per_dim", [])), default=0)
    ev_cols = [c for c in ev if c not in ("step", "betti_per_dim")]
    header = ["step", *step_cols, *ev_cols, *(f"betti_h{q}" for q in range(n_dims))]
    rows: dict[int, dict[str, Any]] = {}
    for i, s in enumerate(st["step"]):
        rows.setdefault(s, {}).update({c: st[c][i] for c in step_cols})
    for i, s in enumerate(ev["step"]):
        r = rows.setdefault(s, {})
        r.update({c: ev[c][i] for c in ev_cols})
        for q, v in enumerate(ev["betti_per_dim"][i]):
            r[f"betti_h{q}"] = v
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for s in sorted(rows):
        r = rows[s]
        w.writerow([s, *(_csv_cell(r.get(c)) for c in header[1:])])
    return out.getvalue()


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def train(
    config: TrainingConfig | Mapping[str, Any],
    *,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    overwrite: bool = False,
    data: Any = None,
) -> TrainingRun:
    """Train to completion in the calling thread and return the finished :class:`TrainingRun`.

    Ctrl-C stops it: a final checkpoint and the history are written (with a run directory) and
    the KeyboardInterrupt is re-raised. A failure raises :class:`TrainingError`.
    """
    run = TrainingRun(config, run_dir=run_dir, progress=progress, overwrite=overwrite, data=data)
    return run.run()
