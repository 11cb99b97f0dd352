"""Tests for dsl_explore.counting: exact counts against a numpy reference, invariances, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _reference import count_reference
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl_explore.counting as counting
from dsl_explore import sign_mismatch_count, sign_mismatch_map


@st.composite
def tied_pairs(draw, min_spatial=1, max_spatial=3):
    """(x, y, dims): small integer-valued float arrays, so zero differences (ties) are common."""
    n_spatial = draw(st.integers(min_spatial, max_spatial))
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(n_spatial))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), *spatial)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64)
    y = rng.integers(0, 3, shape).astype(np.float64)
    return x, y, tuple(range(2, len(shape)))


class TestExactness:
    @settings(max_examples=60, deadline=None)
    @given(pair=tied_pairs())
    def test_matches_reference_per_axis(self, pair):
        x, y, dims = pair
        got = sign_mismatch_count(x, y, per_axis=True)
        assert got.dtype == np.int64 and got.shape == (len(dims),)
        assert got.tolist() == count_reference(x, y, dims=dims)
        assert int(sign_mismatch_count(x, y)) == sum(count_reference(x, y, dims=dims))

    @settings(max_examples=40, deadline=None)
    @given(pair=tied_pairs())
    def test_numpy_equals_torch(self, pair):
        x, y, _ = pair
        for reduction in ("sum", "none", "mean"):
            a = sign_mismatch_count(x, y, reduction=reduction, per_axis=True)
            b = sign_mismatch_count(
                torch.from_numpy(x), torch.from_numpy(y), reduction=reduction, per_axis=True
            )
            assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
            np.testing.assert_array_equal(a, b.numpy())

    @settings(max_examples=40, deadline=None)
    @given(pair=tied_pairs())
    def test_invariant_under_increasing_maps(self, pair):
        """The count depends on signs only: any strictly increasing map of the values keeps it."""
        x, y, _ = pair
        base = sign_mismatch_count(x, y, per_axis=True)
        for f in (np.exp, lambda v: v**3 - 7.0, lambda v: 1e6 * v, lambda v: v + 1e3):
            np.testing.assert_array_equal(sign_mismatch_count(f(x), f(y), per_axis=True), base)

    @settings(max_examples=30, deadline=None)
    @given(pair=tied_pairs())
    def test_batched_equals_per_sample(self, pair):
        x, y, _ = pair
        per = sign_mismatch_count(x, y, reduction="none")
        assert per.shape == x.shape[:2]
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                assert per[n, c] == sign_mismatch_count(
                    x[n : n + 1, c : c + 1], y[n : n + 1, c : c + 1]
                )
        assert per.sum() == sign_mismatch_count(x, y)

    def test_mean_is_the_rate(self):
        rng = np.random.default_rng(1)
        x, y = rng.random((3, 1, 5, 8)), rng.random((3, 1, 5, 8))
        counts = sign_mismatch_count(x, y, per_axis=True)
        rate = sign_mismatch_count(x, y, reduction="mean", per_axis=True)
        np.testing.assert_allclose(rate, counts / np.array([3 * 4 * 8, 3 * 5 * 7]))
        assert sign_mismatch_count(x, y, reduction="mean") == pytest.approx(rate.sum())

    def test_weights_give_float(self):
        rng = np.random.default_rng(2)
        x, y = rng.random((2, 1, 6, 6)), rng.random((2, 1, 6, 6))
        counts = sign_mismatch_count(x, y, per_axis=True)
        weighted = sign_mismatch_count(x, y, weights=(0.5, 2.0))
        assert weighted.dtype == np.float64
        assert weighted == pytest.approx(0.5 * counts[0] + 2.0 * counts[1])

    def test_exact_at_integer_extremes(self):
        """Signs come from comparisons, so no overflow: int8 -128 -> 127 is an increase."""
        x = np.array([[[-128, 127, -128]]], dtype=np.int8)
        y = np.array([[[0, 1, 0]]], dtype=np.int8)
        assert int(sign_mismatch_count(x, y)) == 0
        big = np.array([[[-6e4, 6e4]]], dtype=np.float16)  # the float16 difference overflows to inf
        assert int(sign_mismatch_count(big, -big)) == 1

    @pytest.mark.parametrize("dtype", [torch.bool, torch.int32, torch.float16, torch.bfloat16])
    def test_other_dtypes(self, dtype):
        x = torch.tensor([[[0, 1, 1, 0]]]).to(dtype)
        y = torch.tensor([[[1, 1, 0, 0]]]).to(dtype)
        # x signs: +, 0, -   y signs: 0, -, 0
        assert int(sign_mismatch_count(x, y)) == 3

    def test_length_one_axes_and_empty(self):
        x = np.random.default_rng(0).random((2, 1, 1, 5))
        assert sign_mismatch_count(x, x[::-1].copy(), per_axis=True)[0] == 0
        empty = np.zeros((0, 1, 4))
        assert int(sign_mismatch_count(empty, empty)) == 0
        assert float(sign_mismatch_count(empty, empty, reduction="mean")) == 0.0
        assert sign_mismatch_count(empty, empty, reduction="none").shape == (0, 1)


class TestChunking:
    """Inputs above CHUNK_ELEMENTS are counted in slabs; the result must not change."""

    @pytest.mark.parametrize(
        "shape,dims",
        [
            ((3, 1, 40), None),
            ((1, 1, 40), None),
            ((2, 1, 9, 11), None),
            ((1, 1, 5, 6, 7), None),
            ((50,), (0,)),
            ((2, 3, 9, 8), (1, 3)),
        ],
    )
    def test_slabs_equal_whole(self, monkeypatch, shape, dims):
        rng = np.random.default_rng(3)
        x = rng.integers(0, 4, shape).astype(np.float32)
        y = rng.integers(0, 4, shape).astype(np.float32)
        whole = {
            r: sign_mismatch_count(x, y, dims=dims, reduction=r, per_axis=True)
            for r in ("sum", "none")
        }
        for chunk in (1, 7, 16, 33):
            monkeypatch.setattr(counting, "CHUNK_ELEMENTS", chunk)
            for r, expected in whole.items():
                np.testing.assert_array_equal(
                    sign_mismatch_count(x, y, dims=dims, reduction=r, per_axis=True), expected
                )


class TestMismatchMap:
    @settings(max_examples=30, deadline=None)
    @given(pair=tied_pairs())
    def test_maps_agree_with_count(self, pair):
        x, y, dims = pair
        m = sign_mismatch_map(x, y)
        assert m.dims == dims
        for a, per in zip(dims, m.per_axis, strict=False):
            expected_shape = list(x.shape)
            expected_shape[a] = max(x.shape[a] - 1, 0)
            assert per.shape == tuple(expected_shape) and per.dtype == bool
        np.testing.assert_array_equal(
            [int(p.sum()) for p in m.per_axis], sign_mismatch_count(x, y, per_axis=True)
        )
        assert int(m.incidence.sum()) == 2 * int(sign_mismatch_count(x, y))
        np.testing.assert_array_equal(m.vertex, m.incidence > 0)

    def test_torch_in_torch_out(self):
        x, y = torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5)
        m = sign_mismatch_map(x, y)
        assert isinstance(m.vertex, torch.Tensor) and m.vertex.shape == x.shape
        assert all(isinstance(p, torch.Tensor) for p in m.per_axis)


class TestExceptions:
    def test_nan_and_inf_rejected(self):
        x = np.zeros((1, 1, 4))
        bad = x.copy()
        bad[0, 0, 1] = np.nan
        with pytest.raises(ValueError, match="x must be finite"):
            sign_mismatch_count(bad, x)
        bad[0, 0, 1] = np.inf
        with pytest.raises(ValueError, match="y must be finite"):
            sign_mismatch_count(x, bad)
        with pytest.raises(ValueError, match="finite"):
            sign_mismatch_map(bad, x)

    def test_complex_rejected(self):
        z = np.zeros((1, 1, 4), dtype=complex)
        with pytest.raises(TypeError, match="real"):
            sign_mismatch_count(z, z)

    def test_bad_arguments(self):
        x = np.zeros((1, 1, 4))
        with pytest.raises(ValueError, match="reduction"):
            sign_mismatch_count(x, x, reduction="max")
        with pytest.raises(ValueError, match="weights"):
            sign_mismatch_count(x, x, weights=(1.0, 2.0))
        with pytest.raises(ValueError, match="dims"):
            sign_mismatch_count(x, x, dims=(5,))
        with pytest.raises(ValueError, match="same shape"):
            sign_mismatch_count(x, np.zeros((1, 1, 5)))
        with pytest.raises(TypeError, match="both"):
            sign_mismatch_count(x, torch.zeros(1, 1, 4))

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_equals_cpu(self):
        x = torch.randint(0, 3, (2, 1, 9, 10, 11)).float()
        y = torch.randint(0, 3, (2, 1, 9, 10, 11)).float()
        cpu = sign_mismatch_count(x, y, reduction="none", per_axis=True)
        gpu = sign_mismatch_count(x.cuda(), y.cuda(), reduction="none", per_axis=True)
        assert gpu.is_cuda
        torch.testing.assert_close(gpu.cpu(), cpu)
