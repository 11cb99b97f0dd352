"""Shared helpers of the training tests: ``from _training import tiny, wait_for``."""

from __future__ import annotations

import time

from dsl_explore.training import TrainingConfig

TINY_1D = dict(
    spatial_dims=1, size=64, n_samples=40, batch_size=8, base_channels=4, data="bumps",
    data_options={"n_extrema": 6}, eval_every=4, eval_samples=2, device="cpu", lr=3e-3,
)


def tiny(**kw) -> TrainingConfig:
    return TrainingConfig(**{**TINY_1D, **kw})


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)
