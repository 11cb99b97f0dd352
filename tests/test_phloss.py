"""Tests of the persistent-homology loss baseline (dsl_explore.phloss)."""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
import torch
from gudhi.wasserstein import wasserstein_distance

from dsl_explore.phloss import (
    PersistentHomologyLoss,
    critical_vertex_pairs,
    persistent_homology_loss,
)
from dsl_explore.topology import persistence_diagrams


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    return a[np.lexsort((a[:, 1], a[:, 0]))]


@pytest.mark.parametrize("shape", [(9,), (3, 5), (6, 4), (3, 4, 5), (5, 3, 2)])
def test_vertex_indices_are_c_order_on_non_square_arrays(shape):
    """gudhi returns Fortran-order indices; critical_vertex_pairs must give C-order ones."""
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    field = rng.random(shape)
    reg, ess = critical_vertex_pairs(field)
    flat = field.reshape(-1)  # C order
    diagrams = persistence_diagrams(field)
    for q, dgm in enumerate(diagrams):
        finite = dgm[np.isfinite(dgm[:, 1])]
        ours = np.stack([flat[reg[q][:, 0]], flat[reg[q][:, 1]]], axis=1)
        np.testing.assert_array_equal(_sorted_rows(ours), _sorted_rows(finite))
        infinite = np.sort(dgm[~np.isfinite(dgm[:, 1]), 0])
        np.testing.assert_array_equal(np.sort(flat[ess[q]]), infinite)
    # the essential H0 class is born at the global minimum
    assert flat[ess[0]].tolist() == [field.min()]


def test_raw_gudhi_indices_are_fortran_order():
    """Pins the gudhi behaviour the conversion relies on (gudhi 3.13)."""
    field = np.random.default_rng(0).random((3, 5))
    cplx = gudhi.CubicalComplex(vertices=field)
    cplx.compute_persistence()
    (ess0, *_) = cplx.vertices_of_persistence_pairs()[1]
    assert field.ravel(order="F")[ess0[0]] == field.min()


def test_zero_for_identical_inputs():
    y = torch.rand(2, 1, 7, 6, dtype=torch.float64)
    assert persistent_homology_loss(y, y.clone()).item() == 0.0
    assert persistent_homology_loss(y[..., 0], y[..., 0].clone()).item() == 0.0


def test_equals_wasserstein_power():
    rng = np.random.default_rng(3)
    x, y = rng.random((6, 7)), rng.random((6, 7))
    loss = persistent_homology_loss(torch.tensor(x), torch.tensor(y), dims=(0, 1), order=2)
    expected = 0.0
    for dx, dy in zip(persistence_diagrams(x), persistence_diagrams(y), strict=True):
        fx, fy = dx[np.isfinite(dx[:, 1])], dy[np.isfinite(dy[:, 1])]
        expected += wasserstein_distance(fx, fy, order=2, internal_p=2) ** 2
        ex, ey = np.sort(dx[~np.isfinite(dx[:, 1]), 0]), np.sort(dy[~np.isfinite(dy[:, 1]), 0])
        expected += float(((ex - ey) ** 2).sum())
    assert loss.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_gradient_only_at_critical_vertices():
    rng = np.random.default_rng(1)
    x_np, y_np = rng.random((5, 6)), rng.random((5, 6))
    x = torch.tensor(x_np, requires_grad=True)
    persistent_homology_loss(x, torch.tensor(y_np), dims=(0, 1)).backward()
    reg, ess = critical_vertex_pairs(x_np)
    critical = set()
    for q in range(2):
        critical |= set(reg[q].reshape(-1).tolist()) | set(ess[q].tolist())
    nonzero = set(np.flatnonzero(x.grad.numpy().reshape(-1) != 0).tolist())
    assert nonzero, "the gradient should not vanish on random inputs"
    assert nonzero <= critical


def test_gradcheck_float64_tie_free():
    rng = np.random.default_rng(7)
    y = torch.tensor(rng.permutation(20).reshape(1, 1, 4, 5) / 20.0)
    x = torch.tensor(rng.permutation(20).reshape(1, 1, 4, 5) / 20.0 + 0.013, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: persistent_homology_loss(t, y), (x,), eps=1e-6, atol=1e-5
    )
    x1 = torch.tensor(rng.permutation(9).reshape(1, 1, 9) / 9.0, requires_grad=True)
    y1 = torch.tensor(rng.permutation(9).reshape(1, 1, 9) / 9.0 + 0.021)
    assert torch.autograd.gradcheck(
        lambda t: persistent_homology_loss(t, y1, order=1.5), (x1,), eps=1e-6, atol=1e-5
    )


def test_decreases_under_gradient_steps():
    rng = np.random.default_rng(2)
    y = torch.tensor(rng.random((1, 1, 32)))
    x = (y + 0.3 * torch.tensor(rng.standard_normal((1, 1, 32)))).requires_grad_(True)
    losses = []
    opt = torch.optim.SGD([x], lr=0.2)
    for _ in range(15):
        opt.zero_grad()
        loss = persistent_homology_loss(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_reductions_and_module():
    x = torch.rand(3, 2, 8, requires_grad=True)
    y = torch.rand(3, 2, 8)
    per = persistent_homology_loss(x, y, reduction="none")
    assert per.shape == (3, 2)
    torch.testing.assert_close(persistent_homology_loss(x, y, reduction="sum"), per.sum())
    torch.testing.assert_close(PersistentHomologyLoss()(x, y), per.mean())
    h1 = persistent_homology_loss(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5), homology_dims=[1])
    assert h1.item() >= 0
    assert "order=2.0" in repr(PersistentHomologyLoss())


def test_bad_input():
    x = torch.rand(1, 1, 8)
    with pytest.raises(TypeError, match="torch tensors"):
        persistent_homology_loss(x.numpy(), x.numpy())
    with pytest.raises(ValueError, match="order"):
        persistent_homology_loss(x, x, order=0.5)
    with pytest.raises(ValueError, match="homology_dims"):
        persistent_homology_loss(x, x, homology_dims=[1])
    with pytest.raises(ValueError, match="reduction"):
        persistent_homology_loss(x, x, reduction="max")
    with pytest.raises(ValueError, match="finite"):
        persistent_homology_loss(x * float("nan"), x)
    with pytest.raises(ValueError):
        persistent_homology_loss(x, torch.rand(1, 1, 9))
