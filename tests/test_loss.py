"""Tests for dsl_explore.loss, kornia-style: smoke, exceptions, cardinality, dtype/device,
gradcheck, torch.compile, function-vs-module, plus hypothesis properties against a numpy
reference."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from _reference import count_reference, dsl_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl_explore import DirectionalSignLoss, directional_sign_loss, sign_mismatch_count
from dsl_explore.loss import REDUCTIONS, SURROGATES

ALL_SURROGATES = tuple(SURROGATES)


def _assert_float32_within_bound(got, x, y, *, k=10.0, surrogate="tanh"):
    """A float32 "mean" DSL of (x, y) against the float64 truth, within the bound derived from
    float32 rounding on this data (tests/_tolerance.py)."""
    from _tolerance import dsl_error_bounds

    x64, y64 = x.double(), y.double()
    truth = directional_sign_loss(x64, y64, k=k, surrogate=surrogate)
    dims = tuple(range(2, x.ndim))
    tol = dsl_error_bounds(x64, y64, k=k, weights=None, dims=dims, surrogate=SURROGATES[surrogate],
                           reduction="mean", go=torch.ones(()))["loss"]
    assert got.dtype == torch.float32
    assert abs(float(got) - float(truth)) <= tol * abs(float(truth)), (float(got), float(truth))


def _distinct_field(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array whose values are a permutation of 0..n-1: no zero differences anywhere."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)


@st.composite
def layouts(draw):
    """An (N, C, *spatial) shape with 1-3 spatial axes, small, lengths 1..6."""
    n_spatial = draw(st.integers(1, 3))
    batch = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    spatial = tuple(draw(st.integers(1, 6)) for _ in range(n_spatial))
    return batch + spatial


class TestSmoke:
    @pytest.mark.parametrize("shape", [(2, 1, 16), (2, 3, 8, 9), (1, 1, 4, 5, 6)])
    def test_layouts(self, shape):
        x, y = torch.rand(shape), torch.rand(shape)
        out = directional_sign_loss(x, y)
        assert out.shape == ()
        assert 0.0 <= float(out) <= len(shape) - 2

    def test_one_dimensional_formula(self):
        """The 1D case with weight 1 and "mean" is mean(|tanh(k Dx) - tanh(k Dy)|) / 2."""
        x, y = torch.rand(3, 1, 50, dtype=torch.float64), torch.rand(3, 1, 50, dtype=torch.float64)
        k = 7.5
        expected = (
            torch.tanh(k * x.diff(dim=-1)) - torch.tanh(k * y.diff(dim=-1))
        ).abs().mean() / 2
        torch.testing.assert_close(directional_sign_loss(x, y, k=k), expected)

    def test_identical_inputs_give_zero(self):
        x = torch.rand(2, 1, 7, 7)
        assert float(directional_sign_loss(x, x.clone())) == 0.0

    def test_explicit_dims_override_layout(self):
        sig = torch.rand(4, 32, dtype=torch.float64)
        tgt = torch.rand(4, 32, dtype=torch.float64)
        torch.testing.assert_close(
            directional_sign_loss(sig, tgt, dims=(-1,)),
            directional_sign_loss(sig[:, None], tgt[:, None]),
        )
        field, target = np.random.default_rng(0).random((2, 6, 9))
        out = directional_sign_loss(field, target, dims=(0, 1))
        assert isinstance(out, np.ndarray) and out.shape == ()
        assert out == pytest.approx(dsl_reference(field, target, k=10.0, dims=(0, 1)))


class TestAgainstReference:
    @settings(max_examples=40, deadline=None)
    @given(
        shape=layouts(),
        surrogate=st.sampled_from(ALL_SURROGATES),
        reduction=st.sampled_from(REDUCTIONS),
        k=st.floats(0.1, 100.0),
        seed=st.integers(0, 2**16),
        data=st.data(),
    )
    def test_matches_numpy_reference(self, shape, surrogate, reduction, k, seed, data):
        rng = np.random.default_rng(seed)
        x, y = rng.random(shape), rng.random(shape)
        dims = tuple(range(2, len(shape)))
        weights = data.draw(st.lists(st.floats(0.0, 3.0), min_size=len(dims), max_size=len(dims)))
        got = directional_sign_loss(
            x, y, k=k, weights=weights, surrogate=surrogate, reduction=reduction
        )
        ref = dsl_reference(
            x, y, k=k, dims=dims, weights=weights, surrogate=surrogate, reduction=reduction
        )
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)

    @settings(max_examples=30, deadline=None)
    @given(shape=layouts(), seed=st.integers(0, 2**16))
    def test_large_k_sum_equals_exact_count(self, shape, seed):
        """SPEC 3: with no zero differences, DSL_inf with R = sum equals the exact count."""
        rng = np.random.default_rng(seed)
        x, y = _distinct_field(rng, shape), _distinct_field(rng, shape)
        # differences are integers >= 1 in magnitude, so tanh(k d) == +-1 exactly in float64
        dsl = directional_sign_loss(
            torch.from_numpy(x), torch.from_numpy(y), k=50.0, reduction="sum"
        )
        count = sign_mismatch_count(x, y)
        assert (
            float(dsl) == int(count) == sum(count_reference(x, y, dims=tuple(range(2, len(shape)))))
        )

    @settings(max_examples=20, deadline=None)
    @given(surrogate=st.sampled_from(ALL_SURROGATES), seed=st.integers(0, 2**16))
    def test_converges_to_count_as_k_grows(self, surrogate, seed):
        rng = np.random.default_rng(seed)
        x = torch.from_numpy(rng.random((2, 1, 12, 10)))
        y = torch.from_numpy(rng.random((2, 1, 12, 10)))
        count = int(sign_mismatch_count(x, y))
        errors = [
            abs(
                float(directional_sign_loss(x, y, k=k, surrogate=surrogate, reduction="sum"))
                - count
            )
            for k in (1e2, 1e4, 1e8)
        ]
        assert errors[-1] < errors[0]
        # softsign and arctan converge like 1/k; the rest exponentially
        assert errors[-1] < 1e-3 * max(1, count)

    def test_one_zero_difference_gives_one_half(self):
        x = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
        y = torch.tensor([[[0.0, 0.0]]], dtype=torch.float64)
        assert float(directional_sign_loss(x, y, k=1e6, reduction="sum")) == pytest.approx(0.5)

    @settings(max_examples=25, deadline=None)
    @given(shape=layouts(), c=st.floats(-100, 100), seed=st.integers(0, 2**16))
    def test_invariant_to_a_shared_constant(self, shape, c, seed):
        rng = np.random.default_rng(seed)
        x, y = rng.random(shape), rng.random(shape)
        np.testing.assert_allclose(
            directional_sign_loss(x + c, y + c), directional_sign_loss(x, y), rtol=1e-6, atol=1e-9
        )

    @settings(max_examples=25, deadline=None)
    @given(shape=layouts(), reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
    def test_numpy_equals_torch(self, shape, reduction, seed):
        rng = np.random.default_rng(seed)
        x, y = rng.random(shape).astype(np.float32), rng.random(shape).astype(np.float32)
        got_np = directional_sign_loss(x, y, reduction=reduction)
        got_t = directional_sign_loss(torch.from_numpy(x), torch.from_numpy(y), reduction=reduction)
        assert isinstance(got_np, np.ndarray) and got_np.dtype == np.float32
        np.testing.assert_array_equal(got_np, got_t.numpy())

    @settings(max_examples=25, deadline=None)
    @given(shape=layouts(), seed=st.integers(0, 2**16))
    def test_batched_equals_per_sample(self, shape, seed):
        rng = np.random.default_rng(seed)
        x, y = torch.from_numpy(rng.random(shape)), torch.from_numpy(rng.random(shape))
        per_sample = directional_sign_loss(x, y, reduction="none")
        assert per_sample.shape == shape[:2]
        for n in range(shape[0]):
            for c in range(shape[1]):
                single = directional_sign_loss(x[n : n + 1, c : c + 1], y[n : n + 1, c : c + 1])
                torch.testing.assert_close(per_sample[n, c], single)
        torch.testing.assert_close(per_sample.mean(), directional_sign_loss(x, y))

    def test_weights_scale_each_axis(self):
        x, y = (
            torch.rand(2, 1, 6, 7, 8, dtype=torch.float64),
            torch.rand(2, 1, 6, 7, 8, dtype=torch.float64),
        )
        per_axis = [directional_sign_loss(x, y, dims=(a,)) for a in (2, 3, 4)]
        w = (0.5, 0.0, 2.0)
        torch.testing.assert_close(
            directional_sign_loss(x, y, weights=w),
            sum(wi * p for wi, p in zip(w, per_axis, strict=True)),
        )


class TestGradients:
    @pytest.mark.parametrize("surrogate", ALL_SURROGATES)
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_gradcheck(self, surrogate, reduction):
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(2, 1, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
        y = torch.rand(2, 1, 5, 4, dtype=torch.float64, generator=gen)

        def fn(inp):
            return directional_sign_loss(
                inp, y, k=3.0, weights=(1.0, 0.7), surrogate=surrogate, reduction=reduction
            )

        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)

    def test_gradient_matches_spec_formula(self):
        """SPEC 3: dDSL/dd = w k/2 s'(k d) sign(s(k d) - s(k dy)), +1 to x[i+1], -1 to x[i]."""
        k, w = 4.0, 0.8
        x = torch.rand(1, 1, 9, dtype=torch.float64, requires_grad=True)
        y = torch.rand(1, 1, 9, dtype=torch.float64)
        directional_sign_loss(x, y, k=k, weights=(w,), reduction="sum").backward()
        d, dy = x.detach().diff(dim=-1), y.diff(dim=-1)
        g = (
            w
            * k
            / 2
            * (1 - torch.tanh(k * d) ** 2)
            * torch.sign(torch.tanh(k * d) - torch.tanh(k * dy))
        )
        expected = torch.zeros_like(x)
        expected[..., 1:] += g
        expected[..., :-1] -= g
        torch.testing.assert_close(x.grad, expected)

    def test_no_gradient_to_fixed_target(self):
        x = torch.rand(1, 1, 8, requires_grad=True)
        y = torch.rand(1, 1, 8)
        directional_sign_loss(x, y).backward()
        assert y.grad is None and x.grad is not None

    def test_gradient_flows_to_target_that_requires_grad(self):
        x = torch.rand(1, 1, 8, dtype=torch.float64, requires_grad=True)
        y = torch.rand(1, 1, 8, dtype=torch.float64, requires_grad=True)
        directional_sign_loss(x, y, k=2.0).backward()
        assert y.grad is not None and torch.any(y.grad != 0)


class TestModule:
    def test_function_equals_module(self):
        x, y = torch.rand(2, 1, 10, 10), torch.rand(2, 1, 10, 10)
        opts = dict(k=5.0, weights=(1.0, 2.0), surrogate="erf", reduction="none")
        torch.testing.assert_close(
            DirectionalSignLoss(**opts)(x, y), directional_sign_loss(x, y, **opts)
        )

    def test_repr_and_validation(self):
        assert "k=5.0" in repr(DirectionalSignLoss(k=5.0))
        with pytest.raises(ValueError, match="k"):
            DirectionalSignLoss(k=0)
        with pytest.raises(ValueError, match="surrogate"):
            DirectionalSignLoss(surrogate="relu")
        with pytest.raises(ValueError, match="weights"):
            DirectionalSignLoss(weights=(1.0, -1.0))

    @pytest.mark.slow
    def test_torch_compile(self):
        x = torch.rand(2, 1, 12, 12, requires_grad=True)
        y = torch.rand(2, 1, 12, 12)
        compiled = torch.compile(DirectionalSignLoss(k=8.0))
        out = compiled(x, y)
        out.backward()
        ref_x = x.detach().clone().requires_grad_(True)
        ref = directional_sign_loss(ref_x, y, k=8.0)
        ref.backward()
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(x.grad, ref_x.grad)


class TestDtypesAndEdges:
    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
    def test_dtypes(self, dtype):
        x64, y64 = (
            torch.rand(2, 1, 16, 16, dtype=torch.float64),
            torch.rand(2, 1, 16, 16, dtype=torch.float64),
        )
        x, y = x64.to(dtype), y64.to(dtype)
        out = directional_sign_loss(x, y)
        assert out.dtype == dtype
        ref = directional_sign_loss(x.double(), y.double())
        torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-2)
        xg = x.clone().requires_grad_(True)
        directional_sign_loss(xg, y).backward()
        assert xg.grad.dtype == dtype and torch.isfinite(xg.grad.float()).all()

    def test_nan_propagates(self):
        x, y = torch.rand(1, 1, 8), torch.rand(1, 1, 8)
        x[0, 0, 3] = float("nan")
        assert torch.isnan(directional_sign_loss(x, y))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_length_one_axes_and_empty_inputs(self, reduction):
        x = torch.rand(2, 1, 1, 7)
        y = torch.rand(2, 1, 1, 7)
        both = directional_sign_loss(x, y, reduction=reduction)
        only_last = directional_sign_loss(x, y, dims=(3,), reduction=reduction)
        torch.testing.assert_close(both, only_last.reshape(both.shape))
        single = directional_sign_loss(
            torch.rand(1, 1, 1), torch.rand(1, 1, 1), reduction=reduction
        )
        assert torch.all(single == 0)
        empty = directional_sign_loss(torch.rand(0, 1, 5), torch.rand(0, 1, 5), reduction=reduction)
        assert not torch.isnan(empty).any()
        if reduction != "none":
            assert float(empty) == 0.0

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_equals_cpu(self):
        """CPU and GPU float32 each within the rounding bound of the float64 truth (comparing
        the two float32 results directly would depend on each device's float32 functions)."""
        x, y = torch.rand(2, 1, 9, 10, 11), torch.rand(2, 1, 9, 10, 11)
        for surrogate in ALL_SURROGATES:
            cpu = directional_sign_loss(x, y, surrogate=surrogate)
            gpu = directional_sign_loss(x.cuda(), y.cuda(), surrogate=surrogate)
            assert gpu.is_cuda
            _assert_float32_within_bound(gpu.cpu(), x, y, surrogate=surrogate)
            _assert_float32_within_bound(cpu, x, y, surrogate=surrogate)


class TestExceptions:
    def _xy(self, shape=(2, 1, 8)):
        return torch.rand(shape), torch.rand(shape)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="same shape"):
            directional_sign_loss(torch.rand(1, 1, 8), torch.rand(1, 1, 9))

    @pytest.mark.parametrize("shape", [(8,), (4, 8), (1, 1, 2, 2, 2, 2)])
    def test_default_layout_needs_three_to_five_axes(self, shape):
        with pytest.raises(ValueError, match="dims"):
            directional_sign_loss(torch.rand(shape), torch.rand(shape))

    @pytest.mark.parametrize("dims", [(3,), (-4,), (2, 2), (2, -1), (), "2", (1.5,)])
    def test_bad_dims(self, dims):
        x, y = self._xy()
        with pytest.raises((ValueError, TypeError), match="dims"):
            directional_sign_loss(x, y, dims=dims)

    @pytest.mark.parametrize(
        "weights", [(1.0, 1.0), (-1.0,), (float("nan"),), (float("inf"),), "a"]
    )
    def test_bad_weights(self, weights):
        x, y = self._xy()
        with pytest.raises((ValueError, TypeError), match="weights"):
            directional_sign_loss(x, y, weights=weights)

    @pytest.mark.parametrize("k", [0.0, -1.0, float("nan"), float("inf"), True, "10"])
    def test_bad_k(self, k):
        x, y = self._xy()
        with pytest.raises((ValueError, TypeError), match="k"):
            directional_sign_loss(x, y, k=k)

    def test_unknown_surrogate_and_reduction(self):
        x, y = self._xy()
        with pytest.raises(ValueError, match="surrogate"):
            directional_sign_loss(x, y, surrogate="relu")
        with pytest.raises(ValueError, match="reduction"):
            directional_sign_loss(x, y, reduction="max")

    @pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
    def test_non_float_data(self, dtype):
        x = torch.zeros(1, 1, 4, dtype=dtype)
        with pytest.raises(TypeError, match="floating"):
            directional_sign_loss(x, x.clone())

    def test_mixed_kinds_and_non_arrays(self):
        with pytest.raises(TypeError, match="both"):
            directional_sign_loss(torch.rand(1, 1, 4), np.zeros((1, 1, 4)))
        with pytest.raises(TypeError, match="x must be"):
            directional_sign_loss([0.0, 1.0], np.zeros(2), dims=0)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_mixed_devices(self):
        with pytest.raises(ValueError, match="device"):
            directional_sign_loss(torch.rand(1, 1, 4).cuda(), torch.rand(1, 1, 4))


@settings(max_examples=20, deadline=None)
@given(
    arr=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=2, max_side=6),
        elements=st.floats(-1e3, 1e3),
    ),
)
def test_bounded_by_number_of_axes(arr):
    """Each axis term is a rate in [0, 1], so the "mean" loss lies in [0, len(dims)]."""
    out = float(directional_sign_loss(arr, arr[::-1].copy(), k=3.0))
    assert 0.0 <= out <= 1.0 + 1e-12
    assert not math.isnan(out)


class TestBackends:
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_fused_cpu_backend_equals_reference(self, reduction):
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(2, 1, 9, 7, dtype=torch.float64, generator=gen, requires_grad=True)
        y = torch.rand(2, 1, 9, 7, dtype=torch.float64, generator=gen)
        xr = x.detach().clone().requires_grad_(True)
        fast = directional_sign_loss(
            x, y, k=6.0, weights=(1.0, 0.5), reduction=reduction, backend="cpu"
        )
        ref = directional_sign_loss(
            xr, y, k=6.0, weights=(1.0, 0.5), reduction=reduction, backend="torch"
        )
        torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
        fast.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-10, atol=1e-12)

    def test_module_passes_backend(self):
        x, y = torch.rand(1, 1, 16), torch.rand(1, 1, 16)
        # both float32 results within the rounding bound of the float64 truth
        _assert_float32_within_bound(DirectionalSignLoss(backend="cpu")(x, y), x, y)
        _assert_float32_within_bound(directional_sign_loss(x, y), x, y)
        with pytest.raises(ValueError, match="backend"):
            directional_sign_loss(x, y, backend="gpu")


# --------------------------------------------------------------------------- the default fast path


def _cpu_kernels() -> bool:
    from dsl_explore.kernels import cpu

    return cpu.available()


needs_cpu_kernels = pytest.mark.skipif(not _cpu_kernels(), reason="no C compiler for the kernels")


def _ops_called(fn) -> list[str]:
    """The aten / custom ops that ``fn()`` dispatched, in order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: list[str] = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Log():
        fn()
    return seen


class TestDefaultFastPath:
    @needs_cpu_kernels
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_default_cpu_call_goes_through_the_custom_op(self, dtype):
        x = torch.rand(2, 1, 6, 7, dtype=dtype, requires_grad=True)
        y = torch.rand(2, 1, 6, 7, dtype=dtype)
        seen = _ops_called(lambda: directional_sign_loss(x, y).backward())
        assert "dsl_explore.dsl_fused.default" in seen
        assert not any(op.startswith("aten.tanh") for op in seen)  # not the reference
        with torch.no_grad():
            assert "dsl_explore.dsl_fused.default" in _ops_called(
                lambda: directional_sign_loss(x, y, reduction="none"))
        # surrogates without fused code, and backend="torch", take the reference
        ref = _ops_called(lambda: directional_sign_loss(x, y, backend="torch"))
        assert "dsl_explore.dsl_fused.default" not in ref and "aten.tanh.default" in ref

    @needs_cpu_kernels
    @pytest.mark.parametrize("fused_backward", [True, False])
    def test_gradcheck_default_path(self, fused_backward):
        from dsl_explore.kernels import dsl_loss

        g = torch.Generator().manual_seed(3)
        x = torch.rand(2, 1, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
        y = torch.rand(2, 1, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda a, b: dsl_loss(a, b, k=3.0, reduction="none", fused_backward=fused_backward),
            (x, y), eps=1e-6, atol=1e-7, rtol=1e-5,
        )

    @needs_cpu_kernels
    def test_double_backward_names_the_torch_backend(self):
        """The fused gradient is not differentiable: gradgradcheck (create_graph=True) raises a
        RuntimeError that names backend='torch', and passes on that backend."""
        g = torch.Generator().manual_seed(4)
        x = torch.rand(1, 1, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
        y = torch.rand(1, 1, 5, 4, dtype=torch.float64, generator=g)
        with pytest.raises(RuntimeError, match="backend='torch'"):
            torch.autograd.gradgradcheck(lambda a: directional_sign_loss(a, y, k=3.0), (x,))
        assert torch.autograd.gradgradcheck(
            lambda a: directional_sign_loss(a, y, k=3.0, backend="torch"), (x,)
        )

    def test_compiled_training_step_fullgraph(self):
        """torch.compile(fullgraph=True) of a step with MSE + DSL traces through the custom op (a
        graph break would raise) and matches the eager reference."""
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh(),
                                    torch.nn.Conv2d(2, 1, 3, padding=1))
        inp = torch.rand(2, 1, 12, 12)

        def step(batch: torch.Tensor) -> torch.Tensor:
            out = model(batch)
            return torch.nn.functional.mse_loss(out, batch) + 0.5 * directional_sign_loss(
                out, batch, k=8.0, weights=(1.0, 0.5))

        compiled = torch.compile(step, fullgraph=True)
        loss = compiled(inp)
        loss.backward()
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        out = model(inp)
        want = torch.nn.functional.mse_loss(out, inp) + 0.5 * directional_sign_loss(
            out, inp, k=8.0, weights=(1.0, 0.5), backend="torch")
        want.backward()
        torch.testing.assert_close(loss.detach(), want.detach(), rtol=1e-5, atol=1e-6)
        for a, p in zip(got, model.parameters(), strict=True):
            torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)
