"""What a run trains on: its device, the ``(train, val)`` arrays and the seeded data order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from dsl_explore._validation import check_choice
from dsl_explore.data import load_array, make_dataset, split
from dsl_explore.training.config import ARRAY_DATA, DEVICES, TrainingConfig
from dsl_explore.training.errors import CheckpointError

__all__ = ["DataOrder", "make_training_data", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is a ValueError.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    check_choice(device, "device", DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return torch.device(device)


def _source_array(config: TrainingConfig, data: Any) -> np.ndarray:
    if data is not None:
        return load_array(data)
    if config.data_path is not None:
        return load_array(config.data_path, key=config.data_key)
    if config.data == ARRAY_DATA:
        raise ValueError(
            "config field 'data' is 'array' but no data was given: pass data= (an array)"
        )
    try:
        return make_dataset(
            config.data, config.n_samples, config.size, seed=config.data_seed,
            **config.data_options,
        )
    except TypeError as exc:
        raise ValueError(f"config field 'data_options' ({config.data_options}): {exc}") from None


def make_training_data(
    config: TrainingConfig, data: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(train, val)`` float32 ``(N, C, *spatial)`` arrays a config describes.

    ``data`` (an array or tensor) is used instead of the config's source when given; it goes
    through :func:`~dsl_explore.data.load_array` (validated, normalised per sample to [0, 1]).
    The split is :func:`~dsl_explore.data.split` with ``val_fraction`` and ``data_seed``;
    real data (``data="real"``) is split by region instead: training and validation windows
    come from disjoint parts of every source.

    Raises
    ------
    ValueError
        No data for ``data="array"``, bad generator options, a dimensionality other than
        ``spatial_dims``, or fewer than 2 samples.

    Examples
    --------
    >>> tr, va = make_training_data(TrainingConfig(spatial_dims=1, size=32, n_samples=10))
    >>> tr.shape, va.shape
    ((8, 1, 32), (2, 1, 32))
    """
    if _split_by_region(config, data):
        return _real_regions(config)
    arr = _source_array(config, data)
    if arr.ndim - 2 != config.spatial_dims:
        raise ValueError(
            f"config field 'spatial_dims' is {config.spatial_dims} but the data has "
            f"{arr.ndim - 2} spatial axes (shape {tuple(arr.shape)})"
        )
    if arr.shape[0] < 2:
        raise ValueError(f"the data needs at least 2 samples to hold some out, got {arr.shape[0]}")
    train_arr, val_arr = split(arr, val_fraction=config.val_fraction, seed=config.data_seed)
    return np.ascontiguousarray(train_arr), np.ascontiguousarray(val_arr)


def _split_by_region(config: TrainingConfig, data: Any) -> bool:
    return (
        data is None and config.data_path is None and config.data == "real"
        and "region" not in config.data_options
    )


def _real_regions(config: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Real data: training windows from the first 75 % of every source, validation windows
    from the rest (:func:`~dsl_explore.real_data.real_dataset`'s ``region``), so that no
    held-out window overlaps a training window; the counts are those of
    :func:`~dsl_explore.data.split`."""
    n = config.n_samples
    if n < 2:
        raise ValueError(f"the data needs at least 2 samples to hold some out, got {n}")
    n_val = min(max(1, round(n * config.val_fraction)), n - 1)
    arrays = []
    for region, count, offset in (("train", n - n_val, 0), ("val", n_val, 1)):
        try:
            arrays.append(make_dataset(
                "real", count, config.size, seed=config.data_seed * 2 + offset, region=region,
                **config.data_options,
            ))
        except TypeError as exc:
            raise ValueError(f"config field 'data_options' ({config.data_options}): {exc}") \
                from None
    return np.ascontiguousarray(arrays[0]), np.ascontiguousarray(arrays[1])


class DataOrder:
    """Batches of the training tensor in a seeded random order, epoch after epoch.

    The permutation comes from a ``torch.Generator`` seeded with ``seed``; a new one is drawn
    when the next batch would run past the end. It is copied to the device once per epoch, so a
    step costs no host-to-device copy. :meth:`state_dict` / :meth:`load_state_dict` carry the
    generator, permutation and cursor through a checkpoint.

    Examples
    --------
    >>> order = DataOrder(torch.arange(5.0)[:, None], seed=0)
    >>> order.next_batch(2).shape, order.n_train
    (torch.Size([2, 1]), 5)
    """

    def __init__(self, train: torch.Tensor, *, seed: int) -> None:
        self.train = train
        self.n_train = int(train.shape[0])
        self._gen = torch.Generator().manual_seed(seed)
        self._perm = torch.randperm(self.n_train, generator=self._gen)
        self._perm_dev: torch.Tensor | None = None
        self._cursor = 0

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """The next ``batch_size`` samples (on the training tensor's device)."""
        if self._cursor + batch_size > self.n_train:
            self._perm = torch.randperm(self.n_train, generator=self._gen)
            self._perm_dev = None
            self._cursor = 0
        if self._perm_dev is None:  # one host-to-device copy per epoch, none per step
            self._perm_dev = self._perm.to(self.train.device)
        idx = self._perm_dev[self._cursor : self._cursor + batch_size]
        self._cursor += batch_size
        return self.train[idx]

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint entries ``data_generator_state``, ``data_perm``, ``data_cursor``."""
        return {
            "data_generator_state": self._gen.get_state(),
            "data_perm": self._perm.clone(),
            "data_cursor": self._cursor,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s entries (a no-op when the checkpoint has none).

        Raises
        ------
        CheckpointError
            The saved order covers another number of samples.
        """
        if "data_generator_state" not in state:
            return
        self._gen.set_state(state["data_generator_state"])
        perm = state["data_perm"]
        if perm.numel() != self.n_train:
            raise CheckpointError(
                f"checkpoint's data order covers {perm.numel()} samples, this data has "
                f"{self.n_train}: the checkpoint is from other data"
            )
        self._perm = perm.clone()
        self._perm_dev = None
        self._cursor = int(state["data_cursor"])
