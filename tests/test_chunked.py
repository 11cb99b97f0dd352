"""The chunked path (dsl_explore.chunked) equals the in-memory functions, on any chunking."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dsl_explore import chunked  # noqa: E402
from dsl_explore.counting import sign_mismatch_count, sign_mismatch_map  # noqa: E402
from dsl_explore.critical import critical_points, mismatched_critical_points  # noqa: E402
from dsl_explore.loss import directional_sign_loss  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MISMATCH_FIELDS = ("spurious", "spurious_types", "lost", "lost_types", "changed", "changed_from",
                   "changed_to", "matched", "matched_types")


@st.composite
def chunkings(draw, n: int) -> tuple[int, ...]:
    """A random partition of ``n`` into chunks (sizes 1..n, uneven last chunks included)."""
    if n == 0:
        return (0,)
    out, left = [], n
    while left:
        c = draw(st.integers(1, left))
        out.append(c)
        left -= c
    return tuple(out)


@st.composite
def cases(draw):
    """``(x, y, dims, chunks)``: 1-3 spatial axes, with or without (N, C) axes, tied values."""
    k = draw(st.integers(1, 3))
    batch = draw(st.booleans())
    spatial = [draw(st.integers(1, 7 if k < 3 else 5)) for _ in range(k)]
    lead = [draw(st.integers(1, 2)), draw(st.integers(1, 2))] if batch else []
    shape = tuple(lead + spatial)
    dims = tuple(range(len(lead), len(shape)))
    levels = draw(st.integers(1, 4))  # few levels: many ties (integer-valued floats)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels + 1, shape).astype(np.float64)
    y = rng.integers(0, levels + 1, shape).astype(np.float64)
    chunks = tuple(draw(chunkings(n)) for n in shape)
    return x, y, dims, chunks


def _dask(a, chunks):
    return da.from_array(a, chunks=chunks)


@SETTINGS
@given(cases(), st.sampled_from(["sum", "mean", "none"]), st.booleans(), st.booleans())
def test_count_equals_in_memory(case, reduction, per_axis, weighted):
    x, y, dims, chunks = case
    w = [0.5 + j for j in range(len(dims))] if weighted else None
    want = sign_mismatch_count(x, y, dims=dims, reduction=reduction, per_axis=per_axis, weights=w)
    got = chunked.sign_mismatch_count(_dask(x, chunks), _dask(y, chunks), dims=dims,
                                      reduction=reduction, per_axis=per_axis, weights=w)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # exact, floats included


@SETTINGS
@given(cases(), st.sampled_from(["sum", "mean", "none"]),
       st.sampled_from(["tanh", "softsign", "arctan", "erf", "sigmoid"]), st.booleans())
def test_dsl_equals_in_memory(case, reduction, surrogate, weighted):
    x, y, dims, chunks = case
    w = [0.5 + j for j in range(len(dims))] if weighted else None
    kw = dict(k=3.0, dims=dims, reduction=reduction, surrogate=surrogate, weights=w)
    want = directional_sign_loss(x, y, **kw)
    got = chunked.directional_sign_loss(_dask(x, chunks), _dask(y, chunks), **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    # float64 partial sums in another order: equal to the last bits only
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(cases())
def test_mismatch_map_equals_in_memory(case):
    x, y, dims, chunks = case
    want = sign_mismatch_map(x, y, dims=dims)
    got = chunked.sign_mismatch_map(_dask(x, chunks), _dask(y, chunks), dims=dims)
    assert got.dims == want.dims
    for g, w in zip(got.per_axis, want.per_axis, strict=True):
        np.testing.assert_array_equal(g.compute(), w)
    np.testing.assert_array_equal(got.incidence.compute(), want.incidence)
    np.testing.assert_array_equal(got.vertex.compute(), want.vertex)


@SETTINGS
@given(cases(), st.sampled_from(["axis", "pl"]))
def test_critical_points_equal_in_memory_with_ties(case, method):
    x, _, dims, chunks = case
    want, want_m = critical_points(x, dims=dims, method=method, return_multiplicity=True)
    got, got_m = chunked.critical_points(_dask(x, chunks), dims=dims, method=method,
                                         return_multiplicity=True)
    np.testing.assert_array_equal(got.compute(), want)
    np.testing.assert_array_equal(got_m.compute(), want_m)
    if method == "axis":
        want_pa = critical_points(x, dims=dims, per_axis=True)
        got_pa = chunked.critical_points(_dask(x, chunks), dims=dims, per_axis=True)
        np.testing.assert_array_equal(got_pa.compute(), want_pa)


@SETTINGS
@given(cases(), st.sampled_from(["axis", "pl"]))
def test_mismatched_critical_points_equal_in_memory(case, method):
    x, y, dims, chunks = case
    want = mismatched_critical_points(x, y, dims=dims, method=method)
    got = chunked.mismatched_critical_points(_dask(x, chunks), _dask(y, chunks), dims=dims,
                                             method=method)
    for f in MISMATCH_FIELDS:
        g, w = getattr(got, f), getattr(want, f)
        assert g.dtype == w.dtype, f
        np.testing.assert_array_equal(g, w, err_msg=f)
    lx = chunked.critical_points(_dask(x, chunks), dims=dims, method=method)
    ly = chunked.critical_points(_dask(y, chunks), dims=dims, method=method)
    counts = chunked.compare_labels(lx, ly)
    assert [counts[g] for g in chunked.GROUPS] == [want.n_spurious, want.n_lost, want.n_changed,
                                                   want.n_matched]


@pytest.mark.parametrize("method", ["axis", "pl"])
def test_plateau_across_unit_chunks_keeps_the_global_tie_break(method):
    # every value tied: only the (global) flat index orders the samples
    x = np.zeros((3, 4, 5))
    got = chunked.critical_points(da.from_array(x, chunks=1), method=method).compute()
    want = critical_points(x, method=method)
    assert (want == 1).sum() == 1 and want.flat[0] == 1  # one minimum: the first sample
    assert (want == 2).sum() == 1 and want.flat[-1] == 2  # one maximum: the last
    np.testing.assert_array_equal(got, want)


def test_float32_dsl_and_float16_dtype():
    rng = np.random.default_rng(0)
    for dtype, rtol in ((np.float32, 1e-5), (np.float16, 2e-3)):
        x, y = rng.random((1, 1, 9, 10)).astype(dtype), rng.random((1, 1, 9, 10)).astype(dtype)
        want = directional_sign_loss(x, y)
        got = chunked.directional_sign_loss(da.from_array(x, chunks=4), da.from_array(y, chunks=3))
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol)


def test_zarr_store_and_npy_memmap_inputs(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(1)
    x, y = rng.random((12, 10, 9)), rng.random((12, 10, 9))
    zx = zarr.create_array(tmp_path / "x.zarr", shape=x.shape, chunks=(5, 4, 9), dtype=x.dtype)
    zx[:] = x
    np.save(tmp_path / "y.npy", y)
    my = np.load(tmp_path / "y.npy", mmap_mode="r")
    want = sign_mismatch_count(x, y, dims=(0, 1, 2), per_axis=True)
    got = chunked.sign_mismatch_count(da.from_zarr(zx), my, dims=(0, 1, 2), per_axis=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(chunked.critical_points(zx).compute(), critical_points(x))


def test_errors_name_the_argument():
    x = da.zeros((4, 4), chunks=2)
    with pytest.raises(ValueError, match="one shape"):
        chunked.sign_mismatch_count(x, da.zeros((4, 5)), dims=(0, 1))
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        chunked.directional_sign_loss(x.astype(int), x.astype(int), dims=(0, 1))
    with pytest.raises(TypeError, match="y must have a real"):
        chunked.sign_mismatch_count(x, x.astype(complex), dims=(0, 1))
    with pytest.raises(TypeError, match="x must be a dask array"):
        chunked.critical_points([1, 2, 3])
    with pytest.raises(ValueError, match="per_axis=True needs method='axis'"):
        chunked.critical_points(x, method="pl", per_axis=True)
    bad = da.from_array(np.array([[0.0, np.nan], [1.0, 2.0]]), chunks=1)
    with pytest.raises(ValueError, match=r"finite|NaN"):
        chunked.sign_mismatch_count(bad, bad, dims=(0, 1))


def test_lazy_results_compute_together():
    import dask

    rng = np.random.default_rng(2)
    x, y = rng.random((1, 1, 16, 16)), rng.random((1, 1, 16, 16))
    dx, dy = da.from_array(x, chunks=(1, 1, 5, 7)), da.from_array(y, chunks=(1, 1, 5, 7))
    count, dsl = dask.compute(chunked.sign_mismatch_count(dx, dy, compute=False),
                              chunked.directional_sign_loss(dx, dy, compute=False))
    np.testing.assert_array_equal(count, sign_mismatch_count(x, y))
    np.testing.assert_allclose(dsl, directional_sign_loss(x, y), rtol=1e-12)
