"""Tests of dsl_explore.registry: one table, every other view derived from it."""

from __future__ import annotations

import math

import pytest
import torch

import dsl_explore
from dsl_explore import loss, registry
from dsl_explore.kernels import FUSED_SURROGATES


def test_entries_are_unique_and_consistent():
    table = registry.SIGN_SURROGATES
    assert len({e.id for e in table.values()}) == len(table)
    for name, entry in table.items():
        assert entry.name == name and isinstance(entry.id, int) and entry.formula
        assert registry.SURROGATES[name] is entry.fn
        assert registry.SURROGATE_IDS[name] == entry.id == registry.surrogate_id(name)
        assert registry.get_surrogate(name) is entry
    assert list(registry.SURROGATES) == list(table) == list(registry.SURROGATE_IDS)


def test_duplicate_ids_are_refused():
    s = registry.Surrogate
    with pytest.raises(ValueError, match="unique"):
        registry._table(s("a", 0, torch.tanh, "a"), s("b", 0, torch.tanh, "b"))


@pytest.mark.parametrize("name", list(registry.SURROGATES))
def test_every_surrogate_is_a_smooth_sign(name):
    """Odd, increasing, in (-1, 1), tending to sign(t); s(0) = 0."""
    fn = registry.SURROGATES[name]
    t = torch.linspace(-50, 50, 2001, dtype=torch.float64)
    s = fn(t)
    assert torch.allclose(fn(-t), -s, atol=1e-15)
    assert bool((s.diff() >= 0).all()) and bool((s.abs() <= 1).all())
    assert float(fn(torch.tensor(0.0, dtype=torch.float64))) == 0.0
    assert float(fn(torch.tensor(1e8, dtype=torch.float64))) == pytest.approx(1.0, abs=1e-7)


def test_public_mappings_are_the_registry():
    assert loss.SURROGATES is registry.SURROGATES
    assert dsl_explore.SURROGATES is registry.SURROGATES
    assert type(loss.SURROGATES) is dict
    assert loss.REDUCTIONS is registry.REDUCTIONS
    assert set(FUSED_SURROGATES) <= set(registry.SURROGATES)
    assert loss.surrogate_fn("arctan")(torch.tensor(1.0)).item() == pytest.approx(0.5)


def test_reductions_and_loss_kinds():
    assert registry.REDUCTIONS == ("mean", "sum", "none")
    assert registry.COUNT_REDUCTIONS[0] == "sum"
    assert sorted(registry.COUNT_REDUCTIONS) == sorted(registry.REDUCTIONS)
    assert registry.LOSS_KINDS == ("mse", "mse+dsl", "mse+ph")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="surrogate must be one of 'tanh'"):
        registry.get_surrogate("relu")
    with pytest.raises(ValueError, match="surrogate"):
        registry.surrogate_id(3)


def test_a_new_entry_runs_on_the_torch_path(monkeypatch):
    """Adding a surrogate is one entry: the loss takes it at once (the torch reference)."""
    table = dict(registry.SIGN_SURROGATES)
    new = registry.Surrogate("halftanh", 99, lambda t: torch.tanh(0.5 * t), "tanh(t/2)")
    table[new.name] = new
    monkeypatch.setattr(registry, "SIGN_SURROGATES", table)
    x, y = torch.rand(2, 1, 7, 6), torch.rand(2, 1, 7, 6)
    got = loss.directional_sign_loss(x, y, k=4.0, surrogate="halftanh")
    want = loss.directional_sign_loss(x, y, k=4.0, surrogate="sigmoid")  # the same function
    torch.testing.assert_close(got, want)
    assert math.isfinite(float(loss.DirectionalSignLoss(surrogate="halftanh")(x, y)))
