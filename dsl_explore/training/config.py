"""What defines a training run: :class:`TrainingConfig`, validated on construction, and its TOML.

Besides the config this module names the choices a config offers (:data:`LOSSES`,
:data:`DEVICES`), the fields a resumed run may take from a new config
(:data:`RESUME_OVERRIDABLE`) and those :meth:`TrainingRun.set` changes live
(:data:`LIVE_FIELDS`). Every error is a :class:`ValueError` that names the field.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    tomllib = None  # type: ignore[assignment,unused-ignore]

from dsl_explore._validation import check_allocation, check_float, check_int, resolve_weights
from dsl_explore.data import DATASET_KINDS
from dsl_explore.loss import SURROGATES
from dsl_explore.registry import LOSS_KINDS

__all__ = [
    "ARRAY_DATA",
    "DEVICES",
    "LIVE_FIELDS",
    "LOSSES",
    "RESUME_OVERRIDABLE",
    "TrainingConfig",
    "check_data_memory",
    "config_float",
    "config_int",
    "data_nbytes",
]

LOSSES = LOSS_KINDS
"""The training objectives: plain MSE, MSE + lambda DSL, MSE + lambda PH-loss (the registry's
:data:`~dsl_explore.registry.LOSS_KINDS`, under the name training has always used)."""

DEVICES = ("auto", "cpu", "cuda")
"""Where a run trains; ``"auto"`` takes CUDA when available."""

ARRAY_DATA = "array"
"""The ``data`` value of a run trained on an array passed to it directly."""

RESUME_OVERRIDABLE = ("steps", "checkpoint_every", "keep_checkpoints", "device")
"""Fields a resumed run may take from a new config; every other field must match the checkpoint."""

LIVE_FIELDS = ("lam", "k", "weights", "surrogate", "lr")
"""Fields :meth:`~dsl_explore.training.TrainingRun.set` changes while the run goes."""

_INT_FIELDS = (
    ("n_samples", 2), ("data_seed", 0), ("seed", 0), ("compression", 1), ("base_channels", 1),
    ("batch_size", 1), ("steps", 0), ("eval_every", 1), ("eval_samples", 1),
    ("betti_thresholds", 1), ("checkpoint_every", 0), ("keep_checkpoints", 1),
)
# name, minimum, strict (> instead of >=)
_FLOAT_FIELDS = (("lam", 0.0, False), ("k", 0.0, True), ("ph_order", 1.0, False),
                 ("lr", 0.0, True))


def config_int(value: object, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; a :class:`ValueError` naming the config field else.

    Examples
    --------
    >>> config_int(True, "steps", 0)
    Traceback (most recent call last):
    ...
    ValueError: config field 'steps' must be an int >= 0, got bool
    """
    try:
        return check_int(value, f"config field {name!r}", minimum=minimum)
    except TypeError as exc:  # a config error is a ValueError, whatever the cause
        raise ValueError(str(exc)) from None


def config_float(value: object, name: str, *, minimum: float, strict: bool) -> float:
    """``value`` as a finite float ``>= minimum`` (``>`` when ``strict``); ValueError else.

    Examples
    --------
    >>> config_float(-1, "lam", minimum=0.0, strict=False)
    Traceback (most recent call last):
    ...
    ValueError: config field 'lam' must be finite and >= 0.0, got -1
    """
    try:
        return check_float(value, f"config field {name!r}", minimum=minimum, strict=strict)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _choice(cfg: Any, name: str, choices: Sequence[str], extra: str = "") -> None:
    value = getattr(cfg, name)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"config field {name!r} must be one of {', '.join(map(repr, choices))}{extra}, "
            f"got {value!r}"
        )


def _check_data(cfg: TrainingConfig, s: Any) -> None:
    """``data``, ``data_path``, ``data_key``, ``data_options``."""
    if cfg.data != ARRAY_DATA:
        _choice(cfg, "data", DATASET_KINDS, " or 'array'")
    for name in ("data_path", "data_key"):
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, (str, os.PathLike)):
            raise ValueError(f"config field {name!r} must be a string or None, got {v!r}")
        if isinstance(v, os.PathLike):
            s(cfg, name, os.fspath(v))
    if not isinstance(cfg.data_options, Mapping):
        raise ValueError(
            f"config field 'data_options' must be a table (dict), got {cfg.data_options!r}"
        )
    s(cfg, "data_options", dict(cfg.data_options))


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_shape(cfg: TrainingConfig, s: Any) -> None:
    """``spatial_dims`` and ``size`` (an int becomes one entry per spatial axis)."""
    sd = cfg.spatial_dims
    if not _is_int(sd) or not 1 <= int(sd) <= 3:
        raise ValueError(f"config field 'spatial_dims' must be 1, 2 or 3, got {sd!r}")
    s(cfg, "spatial_dims", int(sd))
    size: Any = cfg.size
    if _is_int(size):
        size = (int(size),) * cfg.spatial_dims
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence):
        raise ValueError(f"config field 'size' must be an int or a list of ints, got {size!r}")
    size = tuple(size)
    if len(size) != cfg.spatial_dims or not all(_is_int(v) and v >= 2 for v in size):
        raise ValueError(
            f"config field 'size' must be an int or {cfg.spatial_dims} ints >= 2 (one per "
            f"spatial axis), got {cfg.size!r}"
        )
    s(cfg, "size", tuple(int(v) for v in size))


def _check_numbers(cfg: TrainingConfig, s: Any) -> None:
    """Every int and float field, ``val_fraction``, ``ph_samples`` and ``weights``."""
    for name, lo in _INT_FIELDS:
        s(cfg, name, config_int(getattr(cfg, name), name, lo))
    for name, flo, strict in _FLOAT_FIELDS:
        s(cfg, name, config_float(getattr(cfg, name), name, minimum=flo, strict=strict))
    vf = config_float(cfg.val_fraction, "val_fraction", minimum=0.0, strict=True)
    if vf >= 1:
        raise ValueError(f"config field 'val_fraction' must be < 1, got {vf!r}")
    s(cfg, "val_fraction", vf)
    if cfg.ph_samples is not None:
        s(cfg, "ph_samples", config_int(cfg.ph_samples, "ph_samples", 1))
    try:
        w = resolve_weights(cfg.weights, cfg.spatial_dims)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config field 'weights': {exc}") from None
    s(cfg, "weights", w)


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
        ``"blobs"``, ``"grf"``, ``"marschner_lobb"``, ``"real"``: windows of real data of
        ``spatial_dims`` dimensions, :mod:`dsl_explore.real_data`), or ``"array"`` for data
        passed to :class:`TrainingRun` directly. Ignored when ``data_path`` is set.
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
    ValueError: config field 'lam' must be finite and >= 0.0, got -1
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
        _check_data(self, s)
        _check_shape(self, s)
        _choice(self, "loss", LOSSES)
        _choice(self, "surrogate", tuple(SURROGATES))
        _check_numbers(self, s)
        _choice(self, "device", DEVICES)
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
        data = _read_toml(source)
        if "training" in data and isinstance(data["training"], dict):
            data = data["training"]
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


# Bytes per element of generated data: the float32 dataset, the generator's float64 work
# array, and the float32 train/validation copies of the split.
_DATA_BYTES_PER_ELEMENT = 4 + 8 + 4


def _sizes(config: TrainingConfig) -> tuple[int, ...]:
    size = config.size  # a tuple once validated
    return (size,) * config.spatial_dims if isinstance(size, int) else tuple(size)


def data_nbytes(config: TrainingConfig) -> int:
    """Bytes of host memory generating the data of ``config`` takes at least.

    ``n_samples * prod(size) * 16``: the float32 dataset (4 bytes an element), the generator's
    float64 work array (8) and the float32 train/validation split (4). Generators with several
    components per sample take more; the model and its activations are not counted.

    Examples
    --------
    >>> data_nbytes(TrainingConfig(spatial_dims=2, size=32, n_samples=10))
    163840
    """
    return int(config.n_samples) * math.prod(_sizes(config)) * _DATA_BYTES_PER_ELEMENT


def check_data_memory(config: TrainingConfig) -> None:
    """Refuse, before anything is allocated, a config whose data cannot fit in memory.

    Raises
    ------
    dsl_explore._validation.InsufficientMemoryError
        A ``ValueError`` naming ``n_samples`` and ``size`` and what is available.

    Examples
    --------
    >>> check_data_memory(TrainingConfig(spatial_dims=1, size=64, n_samples=10**11))
    Traceback (most recent call last):
    ...
    dsl_explore._validation.InsufficientMemoryError: generating the data of config fields \
'n_samples' (100000000000) and 'size' ((64,)) needs 93.1 TiB, but only ... is available; \
lower n_samples or size
    """
    what = (f"generating the data of config fields 'n_samples' ({config.n_samples}) and 'size' "
            f"({_sizes(config)})")
    try:
        check_allocation(data_nbytes(config), what)
    except MemoryError as exc:
        raise type(exc)(f"{exc}; lower n_samples or size") from None


def _read_toml(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML document of a path or of TOML text, as a dict."""
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
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid TOML config: {exc}") from None


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
