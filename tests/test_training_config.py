"""Tests of TrainingConfig (dsl_explore.training.config): validation, dict and TOML."""

from __future__ import annotations

import numpy as np
import pytest
from _training import tiny

from dsl_explore.training import (
    TrainingConfig,
    TrainingRun,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lam", -0.1),
        ("lam", float("nan")),
        ("k", 0.0),
        ("loss", "l1"),
        ("surrogate", "relu"),
        ("lr", 0),
        ("steps", -1),
        ("batch_size", 0),
        ("eval_every", 0),
        ("device", "tpu"),
        ("amp", "yes"),
        ("spatial_dims", 4),
        ("size", 1),
        ("size", [8, 8]),
        ("weights", [1.0, 1.0]),
        ("weights", [-1.0]),
        ("val_fraction", 1.0),
        ("data", "noise"),
        ("compression", True),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=repr(field)):
        tiny(**{field: value})


def test_config_dict_and_toml_round_trip(tmp_path):
    cfg = tiny(loss="mse+dsl", weights=[0.5], lam=0.25, data_options={"n_extrema": 5})
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainingConfig.from_toml(cfg.to_toml()) == cfg
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert TrainingConfig.from_toml(path) == cfg
    assert TrainingConfig.from_toml("[training]\nlam = 0.0\n").lam == 0.0
    with pytest.raises(ValueError, match="unknown config field"):
        TrainingConfig.from_dict({"lamda": 1.0})
    with pytest.raises(ValueError, match="invalid TOML"):
        TrainingConfig.from_toml("lam = = 1\n")


def test_bad_shapes_and_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="not valid for this model"):
        TrainingRun(tiny(size=40))  # 1D, compression 16 -> depth 4 -> multiple of 16
    with pytest.raises(ValueError, match="batch_size"):
        TrainingRun(tiny(batch_size=64))
    with pytest.raises(ValueError, match="spatial_dims"):
        TrainingRun(tiny(data="array"), data=np.random.default_rng(0).random((8, 1, 16, 16)))
