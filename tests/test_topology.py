"""Tests of dsl_explore.topology: Betti curves, Betti error, persistence diagrams, distances."""

from __future__ import annotations

import dataclasses
import math

import gudhi
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from dsl_explore.topology import (
    BettiError,
    betti_curve,
    betti_error,
    diagram_distance,
    persistence_diagrams,
)

pytestmark = [
    pytest.mark.filterwarnings("error::RuntimeWarning"),
    pytest.mark.filterwarnings("error::UserWarning"),
]

CONSTRUCTIONS = ("vertices", "top_dimensional_cells")
FOUR = ndimage.generate_binary_structure(2, 1)  # axis neighbours
EIGHT = ndimage.generate_binary_structure(2, 2)  # axis + diagonal neighbours


# ---------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------


def n_components(mask: np.ndarray, construction: str) -> int:
    """H0 of a 2D sublevel mask: 4-connectivity (vertices) or 8-connectivity (top cells)."""
    structure = FOUR if construction == "vertices" else EIGHT
    return int(ndimage.label(mask, structure=structure)[1])


def euler_characteristic(mask: np.ndarray, construction: str) -> int:
    """chi = V - E + F of the 2D cubical sublevel complex, counted cell by cell."""
    m = mask.astype(bool)
    if construction == "vertices":
        v = int(m.sum())
        e = int((m[:, 1:] & m[:, :-1]).sum() + (m[1:, :] & m[:-1, :]).sum())
        f = int((m[1:, 1:] & m[1:, :-1] & m[:-1, 1:] & m[:-1, :-1]).sum())
        return v - e + f
    p = np.pad(m, 1)  # top cells; a lower cell is present if any cell around it is
    v = int((p[:-1, :-1] | p[:-1, 1:] | p[1:, :-1] | p[1:, 1:]).sum())
    e = int((p[:-1, 1:-1] | p[1:, 1:-1]).sum() + (p[1:-1, :-1] | p[1:-1, 1:]).sum())
    return v - e + int(m.sum())


def radial(shape: tuple[int, ...], radius: float) -> np.ndarray:
    """|distance to the centre - radius|: low on a ring (2D) or a spherical shell (3D)."""
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    return np.abs(r - radius)


# ---------------------------------------------------------------------------------------------
# smoke
# ---------------------------------------------------------------------------------------------


def test_smoke_shapes_and_types():
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 7)), rng.random((6, 7))
    curve = betti_curve(x, thresholds=[0.2, 0.5, 0.8])
    assert curve.shape == (3, 2) and curve.dtype == np.int64
    err = betti_error(x, y, thresholds=5)
    assert isinstance(err, BettiError)
    assert err.per_dim.shape == (2,) and err.thresholds.shape == (5,)
    assert isinstance(err.total, float) and isinstance(err.relative, float)
    assert err.total == pytest.approx(err.per_dim.sum())
    diagrams = persistence_diagrams(x)
    assert len(diagrams) == 2 and all(dg.shape[1] == 2 for dg in diagrams)
    assert np.isinf(diagrams[0][:, 1]).sum() == 1  # one essential H0 class
    for metric in ("bottleneck", "wasserstein"):
        dist = diagram_distance(x, y, metric=metric)
        assert isinstance(dist, float) and dist > 0


def test_betti_error_is_frozen():
    err = betti_error(np.zeros(3), np.zeros(3), thresholds=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        err.total = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# hand-checkable topology
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_1d_three_minima(construction):
    # minima 0, 0.5, 1 separated by saddles at 3; threshold 2 lies between them
    x = np.array([3.0, 0.0, 3.0, 0.5, 3.0, 1.0, 3.0])
    curve = betti_curve(x, thresholds=[-1.0, 0.0, 0.5, 2.0, 3.0], construction=construction)
    assert curve.shape == (5, 1)
    assert curve[:, 0].tolist() == [0, 1, 2, 3, 1]


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_2d_ring_has_one_loop(construction):
    ring = radial((15, 15), 4.0)  # low annulus, high centre, high outside
    curve = betti_curve(ring, thresholds=[-0.5, 1.0, 20.0], construction=construction)
    assert curve.tolist() == [[0, 0], [1, 1], [1, 0]]


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_3d_hollow_shell_has_one_cavity(construction):
    shell = radial((11, 11, 11), 3.5)  # low spherical shell, high interior and exterior
    curve = betti_curve(shell, thresholds=[1.0, 20.0], construction=construction)
    assert curve.tolist() == [[1, 0, 1], [1, 0, 0]]


def test_3d_cube_shell_cavity():
    a = np.ones((7, 7, 7))
    a[1:6, 1:6, 1:6] = 0.0
    a[2:5, 2:5, 2:5] = 1.0
    assert betti_curve(a, thresholds=[0.5]).tolist() == [[1, 0, 1]]


def test_constructions_differ_on_diagonal_contact():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert betti_curve(a, thresholds=[0.5], construction="vertices").tolist() == [[2, 0]]
    assert betti_curve(a, thresholds=[0.5], construction="top_dimensional_cells").tolist() == [
        [1, 0]
    ]


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_fortran_order_trap(construction):
    # three vertical low stripes in a non-square array: 3 components
    a = np.ones((5, 8))
    a[:, [1, 3, 5]] = 0.0
    fortran_read = a.ravel().reshape(a.shape, order="F")  # what a flat buffer + dimensions= gives
    t = 0.5
    truth = n_components(a <= t, construction)
    wrong = n_components(fortran_read <= t, construction)
    assert truth == 3 and wrong != truth
    ours = betti_curve(a, thresholds=[t], construction=construction)[0, 0]
    assert ours == truth
    # the trap itself: gudhi given the flat row-major buffer computes the Fortran-read array
    kw = "vertices" if construction == "vertices" else "top_dimensional_cells"
    trap = gudhi.CubicalComplex(**{kw: a.ravel(), "dimensions": list(a.shape)})
    trap.compute_persistence()
    assert trap.persistent_betti_numbers(t, t)[0] == wrong
    # a non-contiguous (Fortran-strided) input is still read by its logical shape
    f_input = np.asfortranarray(a)
    assert betti_curve(f_input, thresholds=[t], construction=construction)[0, 0] == truth


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_transposition_invariance(construction):
    a = np.random.default_rng(3).random((4, 9))
    t = [0.3, 0.5, 0.7]
    np.testing.assert_array_equal(
        betti_curve(a, thresholds=t, construction=construction),
        betti_curve(a.T, thresholds=t, construction=construction),
    )
    np.testing.assert_array_equal(
        betti_curve(a, thresholds=t, construction=construction),
        betti_curve(a, thresholds=t, dims=(1, 0), construction=construction),
    )


# ---------------------------------------------------------------------------------------------
# Betti error and distances: values
# ---------------------------------------------------------------------------------------------


def test_betti_error_hand_values():
    y = np.array([0.0, 2.0, 0.0, 2.0, 0.0])  # 3 basins below 1
    x = np.array([0.0, 0.0, 0.0, 2.0, 0.0])  # 2 basins below 1
    err = betti_error(x, y, thresholds=[1.0, 3.0])
    # t=1: |2-3| = 1; t=3: |1-1| = 0 -> mean 0.5; target mean total Betti (3+1)/2 = 2
    np.testing.assert_allclose(err.per_dim, [0.5])
    assert err.total == pytest.approx(0.5)
    assert err.relative == pytest.approx(0.25)
    np.testing.assert_array_equal(err.thresholds, [1.0, 3.0])


def test_betti_error_quantile_thresholds_come_from_target():
    rng = np.random.default_rng(1)
    x, y = rng.random((6, 6)), rng.random((6, 6)) + 5.0
    n = 7
    err = betti_error(x, y, thresholds=n)
    expected = np.quantile(y.ravel(), (np.arange(n) + 0.5) / n)
    np.testing.assert_allclose(err.thresholds, expected)
    np.testing.assert_allclose(betti_error(x * 3, y, thresholds=n).thresholds, expected)
    # the error is the mean over those thresholds of the curve difference
    bx = betti_curve(x, thresholds=expected)
    by = betti_curve(y, thresholds=expected)
    np.testing.assert_allclose(err.per_dim, np.abs(bx - by).mean(axis=0))
    assert err.relative == pytest.approx(err.total / by.sum(axis=1).mean())


def test_betti_error_relative_zero_denominator():
    y = np.full((3, 3), 5.0)
    x = np.zeros((3, 3))
    below = [1.0, 2.0]  # below min(y): the target has no Betti numbers there
    err = betti_error(x, y, thresholds=below)
    assert err.total == pytest.approx(1.0) and err.relative == math.inf
    same = betti_error(y + 1.0, y, thresholds=below)
    assert same.total == 0.0 and same.relative == 0.0


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_identical_inputs_give_zero(construction):
    a = np.random.default_rng(2).random((2, 5, 6))
    err = betti_error(a, a.copy(), dims=(1, 2), construction=construction)
    np.testing.assert_array_equal(err.per_dim, 0.0)
    np.testing.assert_array_equal(err.total, 0.0)
    np.testing.assert_array_equal(err.relative, 0.0)
    for metric in ("bottleneck", "wasserstein"):
        d = diagram_distance(a, a.copy(), metric=metric, dims=(1, 2), construction=construction)
        np.testing.assert_array_equal(d, 0.0)


def test_diagram_distance_hand_values_and_combination():
    y = np.array([0.0, 5.0, 1.0, 3.0, 2.0])  # H0: (0, inf), (1, 5), (2, 3)
    x = np.array([0.5, 5.0, 1.0, 3.0, 3.0])  # H0: (0.5, inf), (1, 5)
    assert diagram_distance(x, y) == pytest.approx(0.5)  # max(|0 - 0.5|, (3 - 2) / 2)
    w2 = diagram_distance(x, y, metric="wasserstein", order=2.0)
    assert w2 == pytest.approx(math.sqrt(0.5**2 + 0.5**2))
    w1 = diagram_distance(x, y, metric="wasserstein", order=1.0)
    assert w1 == pytest.approx(1.0)


def test_diagram_distance_dimension_combination_2d():
    rng = np.random.default_rng(4)
    x, y = rng.random((6, 7)), rng.random((6, 7))
    b = [diagram_distance(x, y, dimension=q) for q in (0, 1)]
    assert diagram_distance(x, y) == pytest.approx(max(b))
    r = 2.5
    w = [diagram_distance(x, y, metric="wasserstein", order=r, dimension=q) for q in (0, 1)]
    combined = diagram_distance(x, y, metric="wasserstein", order=r)
    assert combined == pytest.approx((w[0] ** r + w[1] ** r) ** (1 / r))
    dx, dy = persistence_diagrams(x), persistence_diagrams(y)
    assert b[1] == pytest.approx(gudhi.bottleneck_distance(dx[1], dy[1]))


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_wasserstein_matches_gudhi(construction):
    from gudhi.wasserstein import wasserstein_distance

    rng = np.random.default_rng(9)
    x, y = rng.random((5, 7)), rng.random((5, 7))
    dx = persistence_diagrams(x, construction=construction)
    dy = persistence_diagrams(y, construction=construction)
    for q in (0, 1):
        want = wasserstein_distance(
            dx[q], dy[q], order=1.5, internal_p=np.inf, keep_essential_parts=True
        )
        got = diagram_distance(
            x, y, metric="wasserstein", order=1.5, dimension=q, construction=construction
        )
        assert got == pytest.approx(want)


def test_wasserstein_essential_points_only():
    # monotone signals: H0 holds just the essential class born at the minimum
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.0])
    assert persistence_diagrams(x)[0].tolist() == [[0.0, math.inf]]
    for r in (1.0, 3.0):
        assert diagram_distance(x, y, metric="wasserstein", order=r) == pytest.approx(0.5)
    assert diagram_distance(x, y) == pytest.approx(0.5)
    empty = np.zeros(0)
    assert diagram_distance(empty, empty, metric="wasserstein") == 0.0


def test_persistence_diagrams_match_betti_curve():
    a = np.random.default_rng(5).random((6, 6))
    diagrams = persistence_diagrams(a)
    thresholds = np.linspace(0.05, 0.95, 7)
    curve = betti_curve(a, thresholds=thresholds)
    for q, dg in enumerate(diagrams):
        alive = [int(((dg[:, 0] <= t) & (t < dg[:, 1])).sum()) for t in thresholds]
        assert alive == curve[:, q].tolist()


def test_zero_persistence_pairs_are_dropped():
    # Two SoS minima (indices 1 and 3), but the basin at index 1 is born and merged at the
    # value 1: gudhi leaves that zero-length pair out. Separate the tie and it is kept.
    (h0,) = persistence_diagrams(np.array([2.0, 1.0, 1.0, 0.0]))
    assert h0.tolist() == [[0.0, np.inf]]
    (h0,) = persistence_diagrams(np.array([2.0, 1.0, 1.5, 0.0]))
    assert sorted(h0.tolist()) == [[0.0, np.inf], [1.0, 1.5]]
    assert betti_curve(np.array([2.0, 1.0, 1.0, 0.0]), thresholds=[1.0])[:, 0].tolist() == [1]


# ---------------------------------------------------------------------------------------------
# degenerate inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0, 2)])
def test_empty_field(shape):
    a = np.zeros(shape)
    d = len(shape)
    assert betti_curve(a, thresholds=[0.0, 1.0]).tolist() == [[0] * d] * 2
    err = betti_error(a, a, thresholds=3)
    assert err.total == 0.0 and err.relative == 0.0 and err.thresholds.shape == (3,)
    assert np.isfinite(err.thresholds).all()
    diagrams = persistence_diagrams(a)
    assert len(diagrams) == d and all(dg.shape == (0, 2) for dg in diagrams)
    assert diagram_distance(a, a) == 0.0
    assert diagram_distance(a, a, metric="wasserstein") == 0.0


def test_length_one_and_constant_fields():
    one = np.array([2.0])
    assert betti_curve(one, thresholds=[1.0, 2.0, 3.0])[:, 0].tolist() == [0, 1, 1]
    err = betti_error(one, one + 1.0, thresholds=4)
    assert err.thresholds.tolist() == [3.0] * 4
    assert err.total == pytest.approx(0.0)
    assert diagram_distance(one, one + 1.0) == pytest.approx(1.0)
    c = np.full((4, 5), 7.0)
    assert betti_curve(c, thresholds=[6.0, 7.0]).tolist() == [[0, 0], [1, 0]]
    err = betti_error(c, c, thresholds=3)
    assert err.total == 0.0 and err.relative == 0.0
    np.testing.assert_array_equal(err.thresholds, 7.0)
    assert diagram_distance(c, c + 1.0, metric="wasserstein") == pytest.approx(1.0)


def test_zero_length_batch():
    a = np.zeros((0, 4, 4))
    assert betti_curve(a, thresholds=[0.0], dims=(1, 2)).shape == (0, 1, 2)
    err = betti_error(a, a, dims=(1, 2), thresholds=3)
    assert err.per_dim.shape == (0, 2) and err.total.shape == (0,)
    assert err.thresholds.shape == (0, 3)
    assert persistence_diagrams(a, dims=(1, 2)) == []
    assert diagram_distance(a, a, dims=(1, 2)).shape == (0,)


# ---------------------------------------------------------------------------------------------
# numpy == torch, batched == per sample
# ---------------------------------------------------------------------------------------------


def test_numpy_equals_torch():
    rng = np.random.default_rng(6)
    x = rng.random((5, 6)).astype(np.float32)
    y = rng.random((5, 6)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch.from_numpy(y)
    np.testing.assert_array_equal(
        betti_curve(x, thresholds=[0.3, 0.6]), betti_curve(xt, thresholds=torch.tensor([0.3, 0.6]))
    )
    en, et = betti_error(x, y, thresholds=6), betti_error(xt, yt, thresholds=6)
    np.testing.assert_array_equal(en.per_dim, et.per_dim)
    np.testing.assert_array_equal(en.thresholds, et.thresholds)
    assert en.relative == et.relative
    for dn, dt in zip(persistence_diagrams(x), persistence_diagrams(xt), strict=True):
        np.testing.assert_array_equal(dn, dt)
    for metric in ("bottleneck", "wasserstein"):
        assert diagram_distance(x, y, metric=metric) == diagram_distance(xt, yt, metric=metric)


def test_integer_bool_and_half_inputs():
    a = np.array([[0, 3, 0], [3, 3, 3], [0, 3, 0]])
    assert betti_curve(a, thresholds=[1]).tolist() == [[4, 0]]
    assert betti_curve(a.astype(bool), thresholds=[0]).tolist() == [[4, 0]]
    half = torch.tensor(a, dtype=torch.bfloat16)
    assert betti_curve(half, thresholds=[1.0]).tolist() == [[4, 0]]


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_batched_equals_per_sample(construction):
    rng = np.random.default_rng(7)
    # layout (H, B1, W, B2): spatial axes 0 and 2, batch (3, 2)
    x = rng.random((5, 3, 6, 2))
    y = rng.random((5, 3, 6, 2))
    dims = (0, 2)
    thr = [0.25, 0.5, 0.75]
    kw = {"dims": dims, "construction": construction}
    curve = betti_curve(x, thresholds=thr, **kw)
    err = betti_error(x, y, thresholds=4, **kw)
    diagrams = persistence_diagrams(x, **kw)
    dist = diagram_distance(x, y, metric="wasserstein", order=2.0, **kw)
    assert curve.shape == (3, 2, 3, 2) and err.per_dim.shape == (3, 2, 2)
    assert err.thresholds.shape == (3, 2, 4) and dist.shape == (3, 2)
    assert len(diagrams) == 3 and all(len(row) == 2 for row in diagrams)
    for i in range(3):
        for j in range(2):
            xs, ys = x[:, i, :, j], y[:, i, :, j]
            np.testing.assert_array_equal(
                curve[i, j], betti_curve(xs, thresholds=thr, construction=construction)
            )
            single = betti_error(xs, ys, thresholds=4, construction=construction)
            np.testing.assert_array_equal(err.per_dim[i, j], single.per_dim)
            np.testing.assert_array_equal(err.thresholds[i, j], single.thresholds)
            assert err.total[i, j] == single.total and err.relative[i, j] == single.relative
            want_diagrams = persistence_diagrams(xs, construction=construction)
            for got, want in zip(diagrams[i][j], want_diagrams, strict=True):
                np.testing.assert_array_equal(got, want)
            assert dist[i, j] == diagram_distance(
                xs, ys, metric="wasserstein", order=2.0, construction=construction
            )


def test_batched_explicit_thresholds_are_broadcast():
    x = np.random.default_rng(8).random((2, 8))
    err = betti_error(x, x[::-1].copy(), thresholds=[0.2, 0.8], dims=-1)
    np.testing.assert_array_equal(err.thresholds, [[0.2, 0.8], [0.2, 0.8]])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

A = np.zeros((3, 4))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: betti_curve([[0.0, 1.0]], thresholds=[0.5]), TypeError, "x must be"),
        (lambda: betti_curve(A.astype(complex), thresholds=[0.5]), TypeError, "real"),
        (lambda: betti_curve(np.array([0.0, np.nan]), thresholds=[0.5]), ValueError, "finite"),
        (lambda: betti_curve(np.array([0.0, np.inf]), thresholds=[0.5]), ValueError, "finite"),
        (lambda: betti_curve(torch.tensor([0.0, float("nan")]), thresholds=[0.5]), ValueError, "x"),
        (lambda: betti_curve(np.array(1.0), thresholds=[0.5]), ValueError, "1-3 axes"),
        (lambda: betti_curve(np.zeros((2, 2, 2, 2)), thresholds=[0.5]), ValueError, "dims"),
        (lambda: betti_curve(A, thresholds=[0.5], dims="a"), TypeError, "dims"),
        (lambda: betti_curve(A, thresholds=[0.5], dims=(0, 5)), ValueError, "dims"),
        (lambda: betti_curve(A, thresholds=[0.5], dims=(0, 0)), ValueError, "dims"),
        (lambda: betti_curve(A, thresholds=[0.5], construction="cells"), ValueError,
         "construction"),
        (lambda: betti_curve(A, thresholds=0.5), TypeError, "thresholds"),
        (lambda: betti_curve(A, thresholds=3), TypeError, "thresholds"),
        (lambda: betti_curve(A, thresholds="abc"), TypeError, "thresholds"),
        (lambda: betti_curve(A, thresholds=["a", "b"]), TypeError, "thresholds"),
        (lambda: betti_curve(A, thresholds=[[0.1, 0.2]]), ValueError, "thresholds"),
        (lambda: betti_curve(A, thresholds=[]), ValueError, "thresholds"),
        (lambda: betti_curve(A, thresholds=[0.1, np.nan]), ValueError, "thresholds"),
        (lambda: betti_curve(A, thresholds=[np.inf]), ValueError, "thresholds"),
        (lambda: betti_curve(A, thresholds=[0.1, [0.2, 0.3]]), TypeError, "thresholds"),
        (lambda: betti_error(A, A, thresholds=0), ValueError, "thresholds"),
        (lambda: betti_error(A, A, thresholds=-2), ValueError, "thresholds"),
        (lambda: betti_error(A, A, thresholds=True), TypeError, "thresholds"),
        (lambda: betti_error(A, A, thresholds=2.0), TypeError, "thresholds"),
        (lambda: betti_error(A, A, thresholds=[np.nan]), ValueError, "thresholds"),
        (lambda: betti_error(A, np.zeros((4, 3))), ValueError, "same shape"),
        (lambda: betti_error(A, torch.zeros(3, 4)), TypeError, "both"),
        (lambda: betti_error(A, [[0.0]]), TypeError, "y must be"),
        (lambda: betti_error(A, A, construction="V"), ValueError, "construction"),
        (lambda: betti_error(A, A.copy() * np.nan), ValueError, "y must be finite"),
        (lambda: persistence_diagrams(A, construction=None), ValueError, "construction"),
        (lambda: persistence_diagrams(A.astype(complex)), TypeError, "real"),
        (lambda: persistence_diagrams(A, dims=[1.5]), TypeError, "dims"),
        (lambda: diagram_distance(A, A, metric="l2"), ValueError, "metric"),
        (lambda: diagram_distance(A, A, order=0.5), ValueError, "order"),
        (lambda: diagram_distance(A, A, order=math.inf), ValueError, "order"),
        (lambda: diagram_distance(A, A, order="2"), TypeError, "order"),
        (lambda: diagram_distance(A, A, order=True), TypeError, "order"),
        (lambda: diagram_distance(A, A, dimension=2), ValueError, "dimension"),
        (lambda: diagram_distance(A, A, dimension=-1), ValueError, "dimension"),
        (lambda: diagram_distance(A, A, dimension=1.0), TypeError, "dimension"),
        (lambda: diagram_distance(A, A, dimension=True), TypeError, "dimension"),
        (lambda: diagram_distance(A, A, construction="x"), ValueError, "construction"),
        (lambda: diagram_distance(A, A[:2]), ValueError, "same shape"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

small_int_fields = arrays(
    np.int64,
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    elements=st.integers(0, 4),
)


@settings(max_examples=40, deadline=None)
@given(a=small_int_fields, construction=st.sampled_from(CONSTRUCTIONS))
def test_betti_numbers_match_independent_counts(a, construction):
    thresholds = [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]
    curve = betti_curve(a, thresholds=thresholds, construction=construction)
    for i, t in enumerate(thresholds):
        mask = a <= t
        assert curve[i, 0] == n_components(mask, construction)
        assert curve[i, 0] - curve[i, 1] == euler_characteristic(mask, construction)


@settings(max_examples=25, deadline=None)
@given(
    a=small_int_fields,
    shift=st.integers(-10, 10),
    construction=st.sampled_from(CONSTRUCTIONS),
)
def test_invariance_under_increasing_maps(a, shift, construction):
    thresholds = np.array([0.0, 1.0, 2.0, 3.0, 4.0])

    def f(v):  # strictly increasing and exact on small integers
        return np.asarray(v, dtype=np.float64) ** 3 + 2.0 * np.asarray(v, dtype=np.float64)

    base = betti_curve(a, thresholds=thresholds, construction=construction)
    np.testing.assert_array_equal(
        base, betti_curve(f(a), thresholds=f(thresholds), construction=construction)
    )
    np.testing.assert_array_equal(
        base, betti_curve(a + shift, thresholds=thresholds + shift, construction=construction)
    )
    b = np.flip(a, axis=0).copy()
    e1 = betti_error(a, b, thresholds=thresholds, construction=construction)
    e2 = betti_error(f(a), f(b), thresholds=f(thresholds), construction=construction)
    np.testing.assert_array_equal(e1.per_dim, e2.per_dim)
    d1 = diagram_distance(a, b, construction=construction)
    d2 = diagram_distance(a + shift, b + shift, construction=construction)
    assert d1 == pytest.approx(d2)
