"""Tests of the fast paths in ``dsl_explore.kernels`` against the torch reference.

- The fused CPU path (a C library built on first use) runs in this process.
- The Triton kernels run in Triton's interpreter, which must be switched on before triton is
  first imported; so one worker subprocess (this file, run as a script with
  ``TRITON_INTERPRET=1``) computes every interpreter case and reports errors as JSON, and the tests
  below check them. That works whatever this process imported first and under pytest-xdist.
- GPU tests run only where CUDA is present.

The truth is ``dsl_explore._reference.dsl_torch`` (plain torch, gradients by autograd) run in
float64 on the rounded inputs, and the per-axis count of ``dsl_explore.counting``. A float32 (or
float16/bfloat16) result may differ from it by what rounding allows on that case's data:
``tests/_tolerance.py`` derives the bound, so no tolerance depends on the CPU's float32 functions.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch

from dsl_explore.registry import SURROGATE_IDS as _IDS
from dsl_explore.registry import SURROGATES as _REGISTRY

SURROGATES = tuple(_REGISTRY)  # every registry entry
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers


def _reference(x, y, *, k, weights, dims, surrogate, reduction):
    from dsl_explore._reference import dsl_torch
    from dsl_explore._validation import resolve_dims
    from dsl_explore.registry import SURROGATES as FNS

    d = resolve_dims(x.ndim, dims, default="spatial")
    w = None if weights is None else tuple(float(v) for v in weights)
    return dsl_torch(x, y, k=k, weights=w, dims=d, surrogate=FNS[surrogate], reduction=reduction)


def _count_reference(x, y, dims):
    from dsl_explore.counting import sign_mismatch_count

    return sign_mismatch_count(x, y, dims=dims, reduction="none", per_axis=True)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (2-norm; the absolute error when b is 0).

    Norm-wise rather than element-wise for the gradients: the gradient holds
    sign(s(k dx) - s(k dy)), and where two float32 values of s are an ulp apart two correct
    float32 implementations may order them differently; norm-wise, such a flip weighs what it
    should."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    den = b.norm().item() if b.numel() else 0.0
    num = (a - b).norm().item() if b.numel() else 0.0
    return num / den if den > 0 else num


def compare_case(fn, case: dict, dtype=torch.float32, seed: int = 0, device: str = "cpu") -> dict:
    """Run ``fn`` (a ``dsl_loss`` with the backend bound) on ``device`` in ``dtype`` and the float64
    truth on the CPU on the same rounded inputs; return the loss and gradient errors (relative,
    norm-wise, see ``_rel``) and their bounds from ``_tolerance.dsl_error_bounds``."""
    from _tolerance import dsl_error_bounds

    from dsl_explore._validation import resolve_dims
    from dsl_explore.registry import SURROGATES as FNS

    g = torch.Generator().manual_seed(seed)
    shape = case["shape"]
    base_x = torch.rand(case.get("alloc", shape), generator=g, dtype=torch.float64)
    base_y = torch.rand(case.get("alloc", shape), generator=g, dtype=torch.float64)
    view = case.get("view")
    if view == "transpose":  # a non-contiguous view of the same values
        base_x, base_y = base_x.transpose(-1, -2), base_y.transpose(-1, -2)
    elif view == "slice":
        base_x, base_y = base_x[..., ::2], base_y[..., ::2]
    elif view == "permute":
        base_x, base_y = base_x.permute(2, 0, 1), base_y.permute(2, 0, 1)
    opts = {
        "k": case.get("k", 7.0),
        "weights": case.get("weights"),
        "dims": case.get("dims"),
        "surrogate": case.get("surrogate", "tanh"),
        "reduction": case.get("reduction", "mean"),
    }
    grad_y = case.get("grad_y", False)
    out, grads, ups = {}, [], {}
    for impl in ("truth", "ours"):
        dev, dt = ("cpu", torch.float64) if impl == "truth" else (device, dtype)
        # the truth sees the values ours sees: rounded to dtype, then widened exactly
        x = base_x.to(dtype).to(dev, dt).detach().requires_grad_(True)
        y = base_y.to(dtype).to(dev, dt).detach().requires_grad_(grad_y)
        if impl == "truth":
            loss = _reference(x, y, **opts)
        else:
            loss = fn(x, y, fused_backward=case.get("fused", True), **opts)
        go = case.get("go")
        if go == "random":
            upstream = torch.rand(loss.shape, generator=torch.Generator().manual_seed(1),
                                  dtype=torch.float64).to(dtype) + 0.5
        else:
            upstream = torch.full(loss.shape, 1.0 if go is None else float(go), dtype=dtype)
        upstream = upstream.to(loss.device, loss.dtype)
        ups[impl] = upstream
        if loss.requires_grad:
            loss.backward(upstream)
        else:  # the reference returns a constant when no axis has a difference
            x.grad, y.grad = torch.zeros_like(x), torch.zeros_like(y)
        out[impl] = loss.detach().cpu()
        grads.append((x.grad.cpu(), y.grad.cpu() if grad_y else None))
    d = resolve_dims(len(shape), opts["dims"], default="spatial")
    tol = dsl_error_bounds(
        base_x.to(dtype).double(), base_y.to(dtype).double(), k=opts["k"],
        weights=opts["weights"], dims=d, surrogate=FNS[opts["surrogate"]],
        reduction=opts["reduction"], go=ups["truth"], out_dtype=dtype,
    )
    res = {
        "loss_err": _rel(out["ours"], out["truth"]),
        "grad_err": _rel(grads[1][0], grads[0][0]),
        "loss_tol": tol["loss"],
        "grad_tol": tol["grad_x"],
        "shape_ok": tuple(out["ours"].shape) == tuple(out["truth"].shape)
        and out["ours"].dtype == dtype
        and tuple(grads[1][0].shape) == tuple(grads[0][0].shape),
    }
    if grad_y:
        res["grad_y_err"] = _rel(grads[1][1], grads[0][1])
        res["grad_y_tol"] = tol["grad_y"]
    return res


def assert_within_bounds(res: dict) -> None:
    """Every error of a ``compare_case`` result within its derived bound."""
    assert res["loss_err"] <= res["loss_tol"], res
    assert res["grad_err"] <= res["grad_tol"], res
    if "grad_y_err" in res:
        assert res["grad_y_err"] <= res["grad_y_tol"], res


@contextlib.contextmanager
def _fake_surrogate():
    """The registry with one more surrogate, ``"fake"``, whose id no kernel implements; yields a
    function ``x -> (layout, spec)`` for a 2D ``x`` with that surrogate."""
    from dsl_explore import registry
    from dsl_explore.kernels._common import Layout, Spec

    table = dict(registry.SIGN_SURROGATES)
    fake_id = max(e.id for e in table.values()) + 1
    table["fake"] = registry.Surrogate("fake", fake_id, torch.tanh, "tanh(t), under a new id")
    saved = registry.SIGN_SURROGATES
    registry.SIGN_SURROGATES = MappingProxyType(table)

    def spec_for(x):
        lay = Layout.make(tuple(x.shape), (2, 3))
        return lay, Spec.make(lay, 5.0, None, "fake", "mean")

    try:
        yield spec_for
    finally:
        registry.SIGN_SURROGATES = saved


def count_case(fn, case: dict, seed: int = 0) -> bool:
    g = torch.Generator().manual_seed(seed)
    shape = case["shape"]
    kind = case.get("kind", "ties")
    if kind == "ties":  # small integers: many zero differences on both sides
        x = torch.randint(0, 3, shape, generator=g).to(case.get("dtype", torch.float32))
        y = torch.randint(0, 3, shape, generator=g).to(case.get("dtype", torch.float32))
    elif kind == "bool":
        x = torch.randint(0, 2, shape, generator=g).bool()
        y = torch.randint(0, 2, shape, generator=g).bool()
    else:
        x = torch.randn(shape, generator=g)
        y = torch.randn(shape, generator=g)
    if case.get("view") == "transpose":
        x, y = x.transpose(-1, -2), y.transpose(-1, -2)
    dims = case.get("dims")
    got = fn(x, y, dims=dims)
    want = _count_reference(x, y, dims)
    return bool(got.dtype == torch.int64 and torch.equal(got, want))


# Cases shared by the CPU path and the Triton interpreter. Odd sizes, length-1 axes, strided views,
# explicit and permuted dims, weights, every surrogate and reduction, both gradient modes.
LOSS_CASES = {
    "1d_odd_mean": {"shape": (3, 2, 37)},
    "2d_odd_sum_twopass": {"shape": (2, 3, 7, 9), "reduction": "sum", "fused": False},
    "3d_none_weights": {"shape": (2, 1, 5, 4, 7), "reduction": "none", "weights": (1.0, 0.5, 2.0)},
    "len1_axis": {"shape": (2, 1, 1, 6), "surrogate": "softsign"},
    "len1_all": {"shape": (3, 1, 1, 1), "reduction": "none"},
    "transpose_view": {"shape": (2, 1, 9, 6), "alloc": (2, 1, 6, 9), "view": "transpose",
                       "surrogate": "arctan"},
    "slice_view_twopass": {"shape": (2, 1, 5, 5), "alloc": (2, 1, 5, 10), "view": "slice",
                           "fused": False, "reduction": "none"},
    "dims_permuted": {"shape": (6, 5, 4), "alloc": (5, 4, 6), "view": "permute", "dims": (2, 0),
                      "weights": (0.3, 1.7), "surrogate": "erf"},
    "dims_last_2d": {"shape": (4, 33), "dims": (-1,), "surrogate": "sigmoid", "reduction": "sum"},
    "bare_field": {"shape": (7, 5), "dims": (1, 0), "weights": (2.0, 0.0)},
    "upstream_scalar": {"shape": (2, 1, 6, 7), "go": 2.5},
    "upstream_scalar_twopass": {"shape": (2, 1, 6, 7), "go": 2.5, "fused": False},
    "upstream_per_sample": {"shape": (3, 2, 6, 5), "reduction": "none", "go": "random"},
    "upstream_per_sample_twopass": {"shape": (3, 2, 6, 5), "reduction": "none", "go": "random",
                                    "fused": False, "surrogate": "erf"},
    "grad_y": {"shape": (2, 1, 6, 5), "grad_y": True, "surrogate": "sigmoid"},
    "grad_y_twopass": {"shape": (2, 1, 4, 3, 5), "grad_y": True, "fused": False},
    "sharp_k": {"shape": (2, 1, 8, 8), "k": 300.0},
    "none_3d_len1": {"shape": (2, 2, 3, 1, 4), "reduction": "none", "surrogate": "arctan",
                     "fused": False},
}

COUNT_CASES = {
    "count_1d": {"shape": (3, 2, 41)},
    "count_2d_ties": {"shape": (2, 3, 7, 9)},
    "count_3d": {"shape": (2, 1, 5, 6, 7), "kind": "randn"},
    "count_bool": {"shape": (2, 1, 6, 5), "kind": "bool"},
    "count_int64": {"shape": (2, 1, 6, 5), "dtype": torch.int64},
    "count_float64_transpose": {"shape": (2, 1, 9, 6), "dtype": torch.float64,
                                "view": "transpose"},
    "count_dims": {"shape": (5, 4, 6), "dims": (2, 0)},
}


# ----------------------------------------------------------------------------- the CPU path


def _cpu_available() -> bool:
    from dsl_explore.kernels import cpu

    return cpu.available()


needs_cpu_kernels = pytest.mark.skipif(
    not _cpu_available(), reason="the C library of the CPU path could not be built"
)


def _cpu_loss(x, y, **kw):
    from dsl_explore.kernels import dsl_loss

    return dsl_loss(x, y, backend="cpu", **kw)


def _cpu_count(x, y, dims=None):
    from dsl_explore.kernels import mismatch_count

    return mismatch_count(x, y, dims=dims, backend="cpu")


@needs_cpu_kernels
class TestCpuPath:
    @pytest.mark.parametrize("name", sorted(LOSS_CASES))
    def test_float32_against_reference(self, name):
        res = compare_case(_cpu_loss, LOSS_CASES[name], torch.float32)
        assert res["shape_ok"]
        assert_within_bounds(res)

    @pytest.mark.parametrize("name", ["1d_odd_mean", "3d_none_weights", "dims_permuted",
                                      "grad_y_twopass", "upstream_per_sample"])
    def test_float64_against_reference(self, name):
        res = compare_case(_cpu_loss, LOSS_CASES[name], torch.float64)
        assert res["loss_err"] <= 1e-12
        assert res["grad_err"] <= 1e-10

    @pytest.mark.parametrize("surrogate", SURROGATES)
    def test_every_surrogate(self, surrogate):
        """Every registry entry: the C path within the float32 bound of the float64 truth (or,
        for an entry without fused code, refused)."""
        from dsl_explore.kernels import FUSED_SURROGATES

        for reduction in ("mean", "none"):
            case = {"shape": (2, 1, 9, 8), "surrogate": surrogate, "reduction": reduction}
            if surrogate not in FUSED_SURROGATES:
                with pytest.raises(ValueError, match="no fused code"):
                    compare_case(_cpu_loss, case, torch.float32, seed=3)
                continue
            res = compare_case(_cpu_loss, case, torch.float32, seed=3)
            assert_within_bounds(res)

    def test_gradcheck_float64(self):
        from dsl_explore.kernels import dsl_loss

        g = torch.Generator().manual_seed(5)
        x = torch.rand(2, 1, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
        y = torch.rand(2, 1, 4, 5, dtype=torch.float64, generator=g)
        assert torch.autograd.gradcheck(
            lambda t: dsl_loss(t, y, k=3.0, backend="cpu", reduction="none",
                               fused_backward=False),
            (x,), eps=1e-6, atol=1e-7, rtol=1e-5,
        )

    @pytest.mark.parametrize("reduction", ["mean", "none"])
    def test_single_pass_allows_many_backwards(self, reduction):
        """The custom op lifted the old one-backward-per-forward limit: the first backward hands
        the single-pass buffer over, later ones (retain_graph=True) recompute from x and y."""
        from dsl_explore.kernels import dsl_loss

        g = torch.Generator().manual_seed(4)
        x = torch.rand(2, 1, 5, 6, generator=g, requires_grad=True)
        y = torch.rand(2, 1, 5, 6, generator=g, requires_grad=True)
        loss = dsl_loss(x, y, backend="cpu", reduction=reduction).sum()
        loss.backward(retain_graph=True)
        gx1, gy1 = x.grad.clone(), y.grad.clone()
        assert gx1.abs().max() > 0 and gy1.abs().max() > 0
        loss.backward(retain_graph=True)
        loss.backward()
        torch.testing.assert_close(x.grad, 3 * gx1)
        torch.testing.assert_close(y.grad, 3 * gy1)

    @pytest.mark.parametrize("surrogate", SURROGATES)
    def test_float32_surrogates_are_accurate(self, surrogate):
        from dsl_explore.kernels import FUSED_SURROGATES, cpu
        from dsl_explore.loss import SURROGATES as REF

        t = torch.linspace(-40, 40, 40001, dtype=torch.float64)
        if surrogate not in FUSED_SURROGATES:
            with pytest.raises(ValueError, match="no code for surrogate id"):
                cpu.surrogate_f32(t, surrogate)
            return
        s, ds = cpu.surrogate_f32(t, surrogate)
        tr = t.clone().requires_grad_(True)
        REF[surrogate](tr).sum().backward()
        assert (s.double() - REF[surrogate](t)).abs().max() < 3e-7
        assert (ds.double() - tr.grad).abs().max() < 5e-7

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_smoke(self, dtype):
        res = compare_case(_cpu_loss, {"shape": (2, 1, 8, 9)}, dtype)
        assert res["shape_ok"]
        assert res["loss_err"] <= 1e-2 and res["grad_err"] <= 5e-2
        assert_within_bounds(res)  # float32 arithmetic, rounded to the half dtype at the end

    def test_deterministic_across_thread_counts(self):
        from dsl_explore.kernels import cpu, dsl_loss

        old = torch.get_num_threads()
        shape = (2, 1, 40, 30, 31)  # above cpu.PARALLEL_MIN_ELEMENTS: really split
        assert math.prod(shape) >= cpu.PARALLEL_MIN_ELEMENTS
        g = torch.Generator().manual_seed(0)
        x0, y = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
        results = []
        try:
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                x = x0.clone().requires_grad_(True)
                loss = dsl_loss(x, y, backend="cpu", reduction="none")
                loss.sum().backward()
                results.append((loss.detach(), x.grad))
        finally:
            torch.set_num_threads(old)
        for loss, grad in results[1:]:
            assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1])

    @pytest.mark.parametrize("shape", [(3, 1, 7, 33, 48), (2, 1, 5, 9, 371), (1, 1, 2, 41, 400),
                                       (4, 1, 41, 1, 205)])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_3d_single_pass_split_anywhere(self, shape, dtype):
        """The 3D single pass keeps the previous row's and the previous plane's derivatives in
        buffers that each thread rebuilds from the rows before its range; wherever the split falls
        (mid-plane, a plane of two, length-1 rows, tails of 3 and whole vectors), 1, 2 and 3
        threads give the same loss and gradient bit for bit, for every fused surrogate and a
        different upstream gradient per sample; with 3 threads float32 stays within the float64
        reference's bounds."""
        from dsl_explore.kernels import FUSED_SURROGATES, cpu, dsl_loss

        assert math.prod(shape) >= cpu.PARALLEL_MIN_ELEMENTS
        g = torch.Generator().manual_seed(7)
        x0 = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
        y = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
        up = torch.rand(shape[:2], generator=g, dtype=torch.float64).to(dtype) + 0.5
        old = torch.get_num_threads()
        try:
            for surrogate in FUSED_SURROGATES:
                results = []
                for n in (1, 2, 3):
                    torch.set_num_threads(n)
                    x = x0.clone().requires_grad_(True)
                    loss = dsl_loss(x, y, backend="cpu", reduction="none", surrogate=surrogate)
                    loss.backward(up)
                    results.append((loss.detach(), x.grad))
                for loss, grad in results[1:]:
                    assert torch.equal(loss, results[0][0]), surrogate
                    assert torch.equal(grad, results[0][1]), surrogate
            if dtype == torch.float32:
                torch.set_num_threads(3)
                case = {"shape": shape, "reduction": "none", "go": "random"}
                assert_within_bounds(compare_case(_cpu_loss, case, torch.float32, seed=2))
        finally:
            torch.set_num_threads(old)

    def test_3d_gradient_lands_on_the_right_voxels(self):
        """A NaN voxel makes exactly its own gradient and its six neighbours' NaN (each
        difference's derivative reaches its two end points and nothing else), also at the rows
        where 2 and 3 threads split the volume (rows 120, 80 and 160 of 240)."""
        from dsl_explore.kernels import cpu

        shape = (1, 1, 12, 20, 160)
        assert math.prod(shape) >= cpu.PARALLEL_MIN_ELEMENTS
        g = torch.Generator().manual_seed(1)
        x0, y = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
        want = torch.zeros(shape, dtype=torch.bool)
        for i0, i1, i2 in ((5, 19, 159), (8, 0, 0), (3, 19, 100)):
            x0[0, 0, i0, i1, i2] = float("nan")
            for a, b, c in ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1),
                            (0, 0, -1)):
                if 0 <= i0 + a < 12 and 0 <= i1 + b < 20 and 0 <= i2 + c < 160:
                    want[0, 0, i0 + a, i1 + b, i2 + c] = True
        old = torch.get_num_threads()
        try:
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                x = x0.clone().requires_grad_(True)
                _cpu_loss(x, y, reduction="sum").backward()
                assert torch.equal(torch.isnan(x.grad), want), n
        finally:
            torch.set_num_threads(old)

    def test_nan_propagates(self):
        x, y = torch.rand(1, 1, 6, 6), torch.rand(1, 1, 6, 6)
        x[0, 0, 2, 3] = float("nan")
        assert torch.isnan(_cpu_loss(x, y, k=5.0))

    @pytest.mark.parametrize("width", [16, 32, 17])
    def test_row_tails_do_not_leak_the_next_row(self, width):
        """A row's last vector is read in place when the row length is a multiple of the vector
        (16 floats), its lanes past the row masked: a NaN at the start of the next row must not
        reach this row's loss or gradient, which equal those of the row computed alone (the
        copied-tail path) bit for bit. Width 17 takes the copied path everywhere. The loss of a
        finite input is the sum of its rows' losses (to float32 rounding of each row's sum)."""
        gen = torch.Generator().manual_seed(3)
        x0, y = torch.rand(2, 1, 3, width, generator=gen), torch.rand(2, 1, 3, width, generator=gen)
        x0[0, 0, 1, 0] = float("nan")
        x = x0.clone().requires_grad_(True)
        loss = _cpu_loss(x, y, dims=(-1,), reduction="sum", k=7.0)
        loss.backward()
        assert torch.isnan(loss)
        for b, row in ((0, 0), (0, 2), (1, 0), (1, 1), (1, 2)):
            xr = x0[b : b + 1, :, row : row + 1].clone().requires_grad_(True)
            yr = y[b : b + 1, :, row : row + 1]
            lr = _cpu_loss(xr, yr, dims=(-1,), reduction="sum", k=7.0)
            lr.backward()
            assert torch.isfinite(x.grad[b, 0, row]).all()
            assert torch.equal(x.grad[b, 0, row], xr.grad[0, 0, 0])
        # without the NaN, the loss is the rows' sum (float64 partials: equal up to the order)
        x1 = x0.clone()
        x1[0, 0, 1, 0] = 0.5
        rows = [_cpu_loss(x1[b : b + 1, :, r : r + 1], y[b : b + 1, :, r : r + 1], dims=(-1,),
                          reduction="sum", k=7.0).double() for b in range(2) for r in range(3)]
        total = _cpu_loss(x1, y, dims=(-1,), reduction="sum", k=7.0).double()
        assert abs(float(total - sum(rows))) <= 1e-6 * float(total)

    def test_backward_fills_no_gradient_sized_buffer(self):
        """The custom op's gradient outputs are never differentiated: autograd must not
        materialise zero gradients of x's size for them before the backward (it did: two
        full-size fills per step)."""
        from torch.utils._python_dispatch import TorchDispatchMode

        numel = 2 * 48 * 48
        seen: list[str] = []

        class Record(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(t, torch.Tensor) and t.numel() == numel:
                        seen.append(str(func))
                return out

        x = torch.rand(2, 1, 48, 48, requires_grad=True)
        y = torch.rand(2, 1, 48, 48)
        loss = _cpu_loss(x, y)
        with Record():
            loss.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert not [f for f in seen if "zero" in f or "fill" in f or "full" in f], seen

    def test_identical_inputs_give_zero(self):
        x = torch.rand(2, 1, 7, 7, requires_grad=True)
        loss = _cpu_loss(x, x.detach().clone())
        loss.backward()
        assert float(loss.detach()) == 0.0 and float(x.grad.abs().max()) == 0.0

    def test_empty_and_numpy(self):
        from dsl_explore.kernels import dsl_loss

        empty = torch.rand(0, 1, 5, 5)
        assert dsl_loss(empty, empty, backend="cpu", reduction="none").shape == (0, 1)
        a, b = np.random.default_rng(0).random((2, 2, 1, 6, 7))
        got = dsl_loss(a, b, backend="cpu")
        assert isinstance(got, np.ndarray)
        want = _reference(torch.from_numpy(a), torch.from_numpy(b), k=10.0, weights=None,
                          dims=None, surrogate="tanh", reduction="mean")
        assert abs(float(got) - float(want)) <= 1e-12

    @pytest.mark.parametrize("name", sorted(COUNT_CASES))
    def test_count_exact(self, name):
        assert count_case(_cpu_count, COUNT_CASES[name])

    def test_count_large_exact(self):
        g = torch.Generator().manual_seed(2)
        x = torch.randint(0, 4, (3, 1, 70, 80, 9), generator=g).float()
        y = torch.randint(0, 4, (3, 1, 70, 80, 9), generator=g).float()
        assert torch.equal(_cpu_count(x, y), _count_reference(x, y, None))


@needs_cpu_kernels
def test_c_kernels_refuse_an_unknown_surrogate_id():
    """A registry entry without C code: the C library returns an error code that becomes a
    ValueError (no fall-through to another surrogate); dsl_loss refuses backend='cpu' up front
    and runs backend='auto' on the torch reference."""
    from dsl_explore.kernels import cpu, dsl_loss

    x, y = torch.rand(2, 1, 6, 5), torch.rand(2, 1, 6, 5)
    with _fake_surrogate() as spec_for:
        lay, spec = spec_for(x)
        for want_grad in (False, True):
            with pytest.raises(ValueError, match="no code for surrogate id"):
                cpu.CpuBackend().run(lay.view4(x), lay.view4(y), spec, want_loss=True,
                                     want_grad=want_grad)
            with pytest.raises(ValueError, match="no code for surrogate id"):
                cpu.CpuBackend().run(lay.view4(x.double()), lay.view4(y.double()), spec,
                                     want_loss=True, want_grad=want_grad)
        with pytest.raises(ValueError, match="no code for surrogate id"):
            cpu.surrogate_f32(torch.zeros(3), "fake")
        with pytest.raises(ValueError, match="no fused code"):
            dsl_loss(x, y, surrogate="fake", backend="cpu")
        assert torch.equal(dsl_loss(x, y, surrogate="fake", backend="auto"),
                           dsl_loss(x, y, surrogate="tanh", backend="torch"))


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_torch_reference_every_surrogate(surrogate):
    """The float32 torch reference itself within the float32 bound of the float64 truth."""
    from dsl_explore.kernels import dsl_loss

    def fn(x, y, **kw):
        return dsl_loss(x, y, backend="torch", **kw)

    for name in ("1d_odd_mean", "3d_none_weights", "upstream_per_sample_twopass", "sharp_k"):
        res = compare_case(fn, {**LOSS_CASES[name], "surrogate": surrogate}, torch.float32)
        assert res["shape_ok"]
        assert_within_bounds(res)


def test_c_source_takes_its_ids_from_the_registry():
    from dsl_explore.kernels._csrc import C_SOURCE

    for name, sid in _IDS.items():
        assert f"#define S_{name.upper()} {sid}\n" in C_SOURCE
    assert "@" not in C_SOURCE  # every placeholder filled


def test_backend_selection_and_errors():
    from dsl_explore.kernels import dsl_loss, mismatch_count, select_backend

    x, y = torch.rand(2, 1, 5, 6), torch.rand(2, 1, 5, 6)
    expected = "cpu" if _cpu_available() else "torch"
    assert select_backend(x) == expected
    assert select_backend(x.to(torch.int64), op="count") == expected
    assert select_backend(x, "torch") == "torch"
    # backend="torch" is the reference itself
    want = _reference(x, y, k=10.0, weights=None, dims=None, surrogate="tanh", reduction="mean")
    assert torch.equal(dsl_loss(x, y, backend="torch"), want)
    assert torch.equal(mismatch_count(x, y, backend="torch"), _count_reference(x, y, None))
    with pytest.raises(ValueError):
        dsl_loss(x, y, backend="gpu")
    with pytest.raises(ValueError):
        dsl_loss(x, y, surrogate="relu")
    with pytest.raises(TypeError):
        dsl_loss(x.long(), y.long())


# ----------------------------------------------------------------------------- Triton interpreter


def _triton_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None


def _interpreter_cases() -> dict:
    """name -> (kind, case, options) for the worker."""
    cases = {}
    for name, case in LOSS_CASES.items():
        cases[name] = ("loss", case, {})
    # the same on tiny tiles: many programs per row and per sample, per-row partials
    for name in ("2d_odd_sum_twopass", "3d_none_weights", "slice_view_twopass",
                 "upstream_per_sample", "1d_odd_mean"):
        cases[name + "@tiles"] = ("loss", LOSS_CASES[name], {"blocks": (2, 4)})
    for surrogate in SURROGATES:  # every registry entry
        cases[f"surrogate_{surrogate}"] = (
            "loss", {"shape": (2, 1, 6, 5), "surrogate": surrogate, "reduction": "none"}, {})
    cases["float16"] = ("loss", {"shape": (2, 1, 6, 7)}, {"dtype": "float16"})
    cases["bfloat16"] = ("loss", {"shape": (2, 1, 6, 7), "fused": False}, {"dtype": "bfloat16"})
    for name, case in COUNT_CASES.items():
        cases[name] = ("count", case, {})
        cases[name + "@tiles"] = ("count", case, {"blocks": (2, 4)})
    return cases


def _worker() -> None:
    """Entry point of the interpreter subprocess: run every case, print one JSON line."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    from dsl_explore.kernels import dsl_loss, mismatch_count, triton_dsl

    def loss_fn(x, y, **kw):
        return dsl_loss(x, y, backend="triton", **kw)

    def count_fn(x, y, dims=None):
        return mismatch_count(x, y, dims=dims, backend="triton")

    results = {}
    for name, (kind, case, opts) in _interpreter_cases().items():
        triton_dsl.BLOCK_OVERRIDE = opts.get("blocks")
        try:
            if kind == "loss":
                dtype = getattr(torch, opts.get("dtype", "float32"))
                results[name] = compare_case(loss_fn, case, dtype)
            else:
                results[name] = {"equal": count_case(count_fn, case)}
        except Exception as exc:  # reported per case by the tests
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            triton_dsl.BLOCK_OVERRIDE = None
    # an id the kernels have no code for fails when the kernel is traced
    with _fake_surrogate() as spec_for:
        x = torch.rand(2, 1, 6, 5)
        lay, spec = spec_for(x)
        try:
            triton_dsl.TritonBackend().run(lay.view4(x), lay.view4(x), spec, want_loss=True,
                                           want_grad=True)
            results["unknown_surrogate"] = {"error": None}
        except Exception as exc:
            results["unknown_surrogate"] = {"error": f"{type(exc).__name__}: {exc}"}
    # a CPU tensor when the module was *not* interpreted is refused with a clear error: checked
    # in the parent process (test_triton_refuses_cpu_without_interpreter)
    print("RESULTS " + json.dumps(results))


@pytest.fixture(scope="module")
def interpreter_results():
    if not _triton_importable():
        pytest.skip("triton is not installed")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--interpreter-worker"],
        capture_output=True, text=True, env=env, cwd=str(REPO), timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULTS "):])


_LOOSE = {"float16": (1e-2, 5e-2), "bfloat16": (2e-2, 1e-1)}  # plus the derived bound


def test_triton_interpreter_refuses_unknown_surrogate(interpreter_results):
    err = interpreter_results["unknown_surrogate"]["error"]
    assert err is not None and "unknown surrogate id" in err


@pytest.mark.parametrize("name", sorted(_interpreter_cases()))
def test_triton_interpreter(interpreter_results, name):
    from dsl_explore.kernels import FUSED_SURROGATES

    res = interpreter_results[name]
    kind, case, opts = _interpreter_cases()[name]
    if case.get("surrogate", "tanh") not in FUSED_SURROGATES:
        assert "no fused code" in res.get("error", ""), res
        return
    assert "error" not in res, res.get("error")
    if kind == "count":
        assert res["equal"]
        return
    assert res["shape_ok"]
    assert_within_bounds(res)
    if opts.get("dtype") in _LOOSE:
        loss_tol, grad_tol = _LOOSE[opts["dtype"]]
        assert res["loss_err"] <= loss_tol and res["grad_err"] <= grad_tol


@pytest.mark.skipif(not _triton_importable(), reason="triton is not installed")
def test_triton_refuses_cpu_without_interpreter():
    from dsl_explore.kernels import _triton_src, dsl_loss
    from dsl_explore.kernels.triton_dsl import _is_interpreted

    if _is_interpreted(_triton_src):
        pytest.skip("this process runs Triton in interpreter mode")
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        dsl_loss(x, x, backend="triton")


def _compile_for_sm90(fn, constexprs: dict, types: dict, num_warps: int = 8):
    """Compile a kernel of ``_triton_src`` for sm_90 without a GPU (Triton's own ptxas)."""
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(inspect.signature(fn.fn).parameters)
    sig = {n: types.get(n, "i32") for n in names}
    sig.update({n: "constexpr" for n in constexprs})
    src = ASTSource(fn=fn, signature=sig, constexprs=constexprs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


@pytest.mark.skipif(not _triton_importable(), reason="triton is not installed")
def test_triton_kernels_compile_for_sm90():
    """The compiled (not interpreted) path: every kernel lowers to a cubin for Hopper."""
    from dsl_explore.kernels import _triton_src as K
    from dsl_explore.kernels.triton_dsl import _is_interpreted

    if _is_interpreted(K):
        pytest.skip("this process runs Triton in interpreter mode")
    ptr = {n: "*fp32" for n in ("x_ptr", "y_ptr", "g_ptr", "part_ptr", "go_ptr", "out_ptr")}
    flt = {n: "fp32" for n in ("k", "c0", "c1", "c2", "f0", "f1", "f2")}
    try:
        for cx in ({"NDIM": 3, "SURR": _IDS["erf"], "WANT_LOSS": True, "WANT_GRAD": True,
                    "PER_ROW": False, "GO_MODE": 2, "BR": 4, "BC": 256},
                   {"NDIM": 2, "SURR": _IDS["arctan"], "WANT_LOSS": True, "WANT_GRAD": False,
                    "PER_ROW": True, "GO_MODE": 0, "BR": 8, "BC": 256}):
            k = _compile_for_sm90(K.dsl_kernel, cx, {**ptr, **flt, "x_ptr": "*bf16"})
            assert "cubin" in k.asm
        _compile_for_sm90(K.count_kernel, {"NDIM": 3, "PER_ROW": False, "BR": 16, "BC": 256},
                          {"x_ptr": "*fp16", "y_ptr": "*fp16", "part_ptr": "*i64"})
        _compile_for_sm90(K.finish_loss_kernel, {"A0": True, "A1": True, "BLOCK": 1024},
                          {**ptr, **flt, "out_ptr": "*fp16"}, num_warps=4)
        _compile_for_sm90(K.finish_count_kernel,
                          {"NA": 2, "J0": -1, "J1": 0, "J2": 1, "BLOCK": 1024},
                          {"part_ptr": "*i64", "out_ptr": "*i64"}, num_warps=4)
        _compile_for_sm90(K.scale_kernel, {"PER_SAMPLE": True, "BLOCK": 4096},
                          {**ptr, "n": "i64", "S": "i64"})
    except FileNotFoundError as exc:  # no ptxas shipped with this triton: a toolchain gap
        pytest.skip(f"no ptxas: {exc}")


@pytest.mark.skipif(not _triton_importable(), reason="triton is not installed")
def test_triton_compiler_refuses_unknown_surrogate_id():
    """Compiled (not interpreted): an id without a branch fails when the kernel is traced (the
    static_assert fires before any PTX exists, so no GPU or ptxas is needed)."""
    from dsl_explore.kernels import _triton_src as K
    from dsl_explore.kernels.triton_dsl import _is_interpreted

    if _is_interpreted(K):
        pytest.skip("this process runs Triton in interpreter mode")
    ptr = {n: "*fp32" for n in ("x_ptr", "y_ptr", "g_ptr", "part_ptr", "go_ptr")}
    flt = {n: "fp32" for n in ("k", "c0", "c1", "c2")}
    cx = {"NDIM": 2, "SURR": max(_IDS.values()) + 1, "WANT_LOSS": True, "WANT_GRAD": False,
          "PER_ROW": False, "GO_MODE": 0, "BR": 8, "BC": 256}
    with pytest.raises(Exception) as info:  # triton.CompilationError, at the call site
        _compile_for_sm90(K.dsl_kernel, cx, {**ptr, **flt})
    messages, exc = [], info.value
    while exc is not None:  # the static_assert's message is on the chained cause
        messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any("unknown surrogate id" in m for m in messages), messages


# ----------------------------------------------------------------------------- CUDA


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@requires_cuda
@pytest.mark.parametrize("name", ["1d_odd_mean", "3d_none_weights", "transpose_view",
                                  "upstream_per_sample_twopass", "grad_y", "dims_permuted"])
def test_cuda_matches_reference(name):
    from dsl_explore.kernels import dsl_loss

    def fn(x, y, **kw):
        return dsl_loss(x, y, backend="triton", **kw)

    res = compare_case(fn, LOSS_CASES[name], torch.float32, device="cuda")
    assert res["shape_ok"]
    assert_within_bounds(res)


@requires_cuda
def test_cuda_deterministic_and_counts_exact():
    from dsl_explore.kernels import dsl_loss, mismatch_count

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 64, 65, 66, generator=g).cuda()
    y = torch.rand(4, 1, 64, 65, 66, generator=g).cuda()
    grads, losses = [], []
    for _ in range(2):
        xr = x.clone().requires_grad_(True)
        loss = dsl_loss(xr, y, reduction="none")
        loss.sum().backward()
        losses.append(loss.detach())
        grads.append(xr.grad)
    assert torch.equal(losses[0], losses[1]) and torch.equal(grads[0], grads[1])
    xi = torch.randint(0, 3, (3, 2, 50, 70), generator=g).float()
    yi = torch.randint(0, 3, (3, 2, 50, 70), generator=g).float()
    got = mismatch_count(xi.cuda(), yi.cuda(), backend="triton").cpu()
    assert torch.equal(got, _count_reference(xi, yi, None))


if __name__ == "__main__" and "--interpreter-worker" in sys.argv:
    _worker()


# ----------------------------------------------------------------------------- the float32 tanh


@needs_cpu_kernels
@pytest.mark.parametrize("surrogate,scale", [("tanh", 1.0), ("sigmoid", 0.5)])
def test_float32_tanh_error_bound_on_sampled_bit_patterns(surrogate, scale):
    """Every 4099th float32 bit pattern of [0, 9.5 / scale] and its negative, against float64:
    within the bound that scripts/tanh_error.py measured over every input (TANH_F32_MAX_ABS_ERR,
    stated in the C source's docstring); odd exactly; +-1 and s' = 0 exactly from
    TANH_F32_SATURATES on, and below 1 short of it (as the correctly rounded tanh)."""
    from dsl_explore.kernels import cpu
    from dsl_explore.kernels._csrc import (
        TANH_F32_MAX_ABS_ERR,
        TANH_F32_MAX_D_ERR,
        TANH_F32_SATURATES,
    )

    top = int(np.array(9.5 / scale, dtype=np.float32).view(np.uint32))
    bits = np.arange(0, top, 4099, dtype=np.uint32)
    t = torch.from_numpy(bits.view(np.float32).copy())
    s, ds = cpu.surrogate_f32(t, surrogate)
    sn, dsn = cpu.surrogate_f32(-t, surrogate)
    ref = torch.tanh(scale * t.double())
    dref = scale * (1 - ref**2)
    assert (s.double() - ref).abs().max() <= TANH_F32_MAX_ABS_ERR
    assert (ds.double() - dref).abs().max() <= TANH_F32_MAX_D_ERR
    assert torch.equal(sn, -s) and torch.equal(dsn, ds)
    sat = scale * t >= TANH_F32_SATURATES
    assert sat.any() and bool((s[sat] == 1).all()) and bool((ds[sat] == 0).all())
    below = scale * t < TANH_F32_SATURATES - 0.05
    assert bool((s[below] < 1).all()) and bool((ds[below] > 0).all())
