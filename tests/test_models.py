"""Tests of dsl_explore.models: shapes, exact compression, errors, configs, a tiny overfit."""

from __future__ import annotations

import json

import pytest
import torch

from dsl_explore.data import bumps_1d
from dsl_explore.models import (
    MAX_DEPTH,
    ConvAutoencoder,
    build_model,
    model_config,
    model_from_config,
    valid_compressions,
)


def _model(spatial_dims: int, compression: int, **kw) -> ConvAutoencoder:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ConvAutoencoder(spatial_dims, compression=compression, base_channels=4, **kw)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("compression", [4, 8, 16, 32, 64])
def test_round_trip_shape_and_exact_ratio(spatial_dims, compression):
    model = _model(spatial_dims, compression)
    m = model.size_multiple
    assert model.min_size == m == 2**model.depth
    assert model.spatial_dims == spatial_dims and model.compression == compression
    # a non-cubic valid size: multiples m, 2m, 3m along the axes
    spatial = tuple(m * (i + 1) for i in range(spatial_dims))
    x = torch.rand(2, 1, *spatial)
    with torch.no_grad():
        z = model.encode(x)
        y = model(x)
        y2 = model.decode(z)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y2)
    assert tuple(z.shape[1:]) == model.latent_shape(spatial)
    assert x.numel() == compression * z.numel()  # exact ratio, no rounding
    assert model.latent_channels * compression == 2 ** (spatial_dims * model.depth)


def test_default_depths_and_sizes():
    # the documented defaults: smallest depth >= 2 that realises the ratio
    assert [ConvAutoencoder(1, compression=r).depth for r in (4, 8, 16, 32, 64)] == [2, 3, 4, 5, 6]
    assert [ConvAutoencoder(2, compression=r).depth for r in (4, 8, 16, 32, 64)] == [2, 2, 2, 3, 3]
    assert [ConvAutoencoder(3, compression=r).depth for r in (4, 8, 16, 32, 64)] == [2] * 5
    # the small sizes named in the docs are valid
    assert ConvAutoencoder(1, compression=64).latent_shape(256) == (1, 4)
    assert ConvAutoencoder(2, compression=64).latent_shape((32, 32)) == (1, 4, 4)
    assert ConvAutoencoder(3, compression=64).latent_shape(16) == (1, 4, 4, 4)


def test_explicit_depth_and_channels():
    model = _model(2, 8, depth=3, in_channels=3)
    assert model.latent_channels == 3 * 64 // 8
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        z = model.encode(x)
    assert x.numel() == 8 * z.numel()
    assert model(x).shape == x.shape
    assert (
        _model(1, 6, in_channels=3).latent_channels * 6
        == 3 * 2 ** _model(1, 6, in_channels=3).depth
    )


def test_output_is_not_squashed():
    model = _model(1, 8)
    with torch.no_grad():
        for p in model.decoder[-1].parameters():
            p.fill_(0.0)
        model.decoder[-1].bias.fill_(3.0)
    assert torch.allclose(model(torch.rand(1, 1, 32)), torch.tensor(3.0))  # no sigmoid / clamp


@pytest.mark.parametrize(
    "spatial_dims, shape, match",
    [
        (1, (2, 1, 60), r"input spatial size \(60,\) is not valid.*multiple of 2\*\*depth = 8"),
        (1, (2, 1, 4), r"input spatial size \(4,\) is not valid"),
        (2, (2, 1, 30, 32), r"input spatial size \(30, 32\) is not valid.*multiple"),
        (3, (1, 1, 8, 8, 6), r"input spatial size \(8, 8, 6\) is not valid"),
        (2, (1, 32, 32), r"input must have shape \(N, C, H, W\)"),
        (1, (1, 2, 64), "in_channels=1"),
    ],
)
def test_bad_input_shape_raises_clear_error(spatial_dims, shape, match):
    model = _model(spatial_dims, 8)
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(shape))
    with pytest.raises(ValueError, match=match):
        model.check_input_shape(shape)


def test_other_input_errors():
    model = _model(1, 8)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        model([[0.0] * 64])
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="not valid"):
        model.latent_shape(60)
    with pytest.raises(ValueError, match="not valid"):
        model.latent_shape((64, 64))
    with pytest.raises(TypeError, match="input_spatial_size"):
        model.latent_shape("64")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"spatial_dims": 1, "compression": 3}, ValueError, "Valid ratios up to 4096: 1, 2, 4, 8"),
        ({"spatial_dims": 2, "compression": 12}, ValueError, "compression=12 cannot be realised"),
        ({"spatial_dims": 2, "compression": 8, "depth": 1}, ValueError, "Valid ratios.*: 1, 2, 4$"),
        ({"spatial_dims": 1, "compression": 0}, ValueError, "compression must be"),
        ({"spatial_dims": 1, "compression": 8.0}, TypeError, "compression must be"),
        ({"spatial_dims": 1, "compression": True}, TypeError, "compression must be"),
        ({"spatial_dims": 4, "compression": 8}, ValueError, "spatial_dims must be 1, 2 or 3"),
        ({"spatial_dims": "2", "compression": 8}, TypeError, "spatial_dims"),
        ({"spatial_dims": 1, "compression": 8, "depth": 0}, ValueError, "depth"),
        ({"spatial_dims": 1, "compression": 8, "depth": MAX_DEPTH + 1}, ValueError, "depth"),
        ({"spatial_dims": 1, "compression": 8, "base_channels": 0}, ValueError, "base_channels"),
        ({"spatial_dims": 1, "compression": 8, "in_channels": 0}, ValueError, "in_channels"),
    ],
)
def test_invalid_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ConvAutoencoder(kwargs.pop("spatial_dims"), **kwargs)


def test_valid_compressions():
    assert valid_compressions(1, limit=64) == [1, 2, 4, 8, 16, 32, 64]
    assert valid_compressions(3, depth=1) == [1, 2, 4, 8]
    assert valid_compressions(2, in_channels=3, limit=12) == [1, 2, 3, 4, 6, 8, 12]
    for r in valid_compressions(2, in_channels=3, limit=96):
        assert ConvAutoencoder(2, in_channels=3, compression=r, base_channels=2).compression == r


def test_config_round_trip_through_json():
    model = _model(3, 16, in_channels=2, depth=3)
    cfg = model_config(model)
    cfg2 = json.loads(json.dumps(cfg))
    clone = model_from_config(cfg2)
    assert model_config(clone) == cfg
    clone.load_state_dict(model.state_dict())  # same architecture, so weights transfer
    x = torch.rand(1, 2, 8, 8, 16)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))
    # without "name" and with depth left to the default
    assert model_from_config({"spatial_dims": 1, "compression": 8}).depth == 3
    built = build_model(2, compression=32, base_channels=4)
    assert model_config(built) == {
        "name": "ConvAutoencoder",
        "spatial_dims": 2,
        "in_channels": 1,
        "compression": 32,
        "base_channels": 4,
        "depth": 3,
    }


@pytest.mark.parametrize(
    "cfg, exc, match",
    [
        ({"spatial_dims": 1, "compression": 8, "width": 3}, ValueError, "unknown keys"),
        ({"name": "UNet", "spatial_dims": 1}, ValueError, "ConvAutoencoder"),
        ({"compression": 8}, ValueError, "spatial_dims"),
        ([("spatial_dims", 1)], TypeError, "mapping"),
    ],
)
def test_model_from_config_errors(cfg, exc, match):
    with pytest.raises(exc, match=match):
        model_from_config(cfg)


def test_model_config_rejects_other_modules():
    with pytest.raises(TypeError, match="ConvAutoencoder"):
        model_config(torch.nn.Linear(2, 2))


def test_tiny_overfit():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ConvAutoencoder(1, compression=8, base_channels=8)
        x = torch.from_numpy(bumps_1d(4, 64, n_extrema=4, seed=0))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        with torch.no_grad():
            start = torch.mean((model(x) - x) ** 2).item()
        for _ in range(300):
            opt.zero_grad()
            loss = torch.mean((model(x) - x) ** 2)
            loss.backward()
            opt.step()
        with torch.no_grad():
            end = torch.mean((model(x) - x) ** 2).item()
    assert end < start / 5, (start, end)
