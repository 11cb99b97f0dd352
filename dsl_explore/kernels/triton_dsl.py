"""Launchers of the Triton kernels in :mod:`dsl_explore.kernels._triton_src`.

CUDA tensors run the compiled kernels. CPU tensors run the *same source* in Triton's interpreter,
which needs ``TRITON_INTERPRET=1`` in the environment before triton is first imported (triton
decides at ``@triton.jit`` time, its own ``tl.sum``/``tl.zeros`` included, so a process that
imported triton without it cannot switch). That is how the test suite checks the GPU code path
without a GPU: in a subprocess, on tiny shapes (the interpreter runs the tile code in numpy).

Passes and bytes (N elements, fp32):

* loss only: read ``x``, ``y`` once (``2 N``), plus per-program partials (``3 P`` floats, P about
  ``N / 4096``), then one finish kernel (a program per sample for ``"none"``, one program
  otherwise);
* single pass (loss + gradient): read ``x``, ``y``, write the gradient (``3 N``); the gradient at an
  element needs the differences that end there, which are recomputed from the neighbours (cache
  hits) rather than exchanged, so the arithmetic is about twice the loss-only kernel's;
* backward of the single pass: ``scale_kernel`` reads the upstream gradient and returns at once when
  it is 1 (``loss.backward()``), else one read-modify-write of the gradient;
* two pass: loss only, then a gradient-only kernel (``2 N + 3 N``).

The tile sizes below were chosen from ptxas' register counts for sm_90 (all kernels compile to
cubin for ``GPUTarget("cuda", 90, 32)`` without a GPU); no GPU was available to time them, so
``dsl-explore bench kernels --device cuda`` is where to tune them. Loads of the tile and of its
row/plane neighbours are 16-byte vectors when strides allow (Triton specialises unit strides and
16-divisible sizes); the +-1 column neighbours are unaligned scalar loads that hit L1.
"""

from __future__ import annotations

from types import ModuleType

import torch

from dsl_explore.kernels._common import Layout, Spec

__all__ = ["BLOCK_OVERRIDE", "TritonBackend", "kernels_module"]

#: ``(BR, BC)`` forced tile, for tests (exercises tile and program boundaries on tiny shapes).
BLOCK_OVERRIDE: tuple[int, int] | None = None

# Elements per program. With 8 warps: 4 per thread in the gradient kernel (75 registers on sm_90,
# 3 programs per SM; 8 per thread needs 146), 8 in the loss-only kernel (77 registers), 16 in the
# count (comparisons only). Checked with ptxas; the timings are still to be taken on a GPU.
_GPU_TILE_GRAD = 1024
_GPU_TILE = 2048
_GPU_TILE_COUNT = 4096
_INTERP_TILE = 16384
_FINISH_BLOCK = 1024
_SCALE_BLOCK = 4096

def _is_interpreted(mod: ModuleType) -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(mod.dsl_kernel, InterpretedFunction)


def kernels_module(interpret: bool) -> ModuleType:
    """The kernels module; ``interpret=True`` (CPU tensors) needs Triton's interpreter."""
    from dsl_explore.kernels import _triton_src

    if interpret and not _is_interpreted(_triton_src):
        raise RuntimeError(
            "the Triton kernels run on CPU tensors only in Triton's interpreter: set "
            "TRITON_INTERPRET=1 before triton is first imported (e.g. in a fresh process)"
        )
    return _triton_src


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _blocks(lay: Layout, interpret: bool, kind: str) -> tuple[int, int, int]:
    """``(BR, BC, num_warps)`` for a layout; ``kind`` is ``"grad"``, ``"loss"`` or ``"count"``."""
    if BLOCK_OVERRIDE is not None:
        return BLOCK_OVERRIDE[0], BLOCK_OVERRIDE[1], 4
    gpu = {"grad": _GPU_TILE_GRAD, "loss": _GPU_TILE, "count": _GPU_TILE_COUNT}[kind]
    tile = _INTERP_TILE if interpret else gpu
    n2 = lay.N[2]
    bc = min(_pow2(n2), 512 if not interpret else tile)
    br = max(1, min(tile // bc, _pow2(lay.rows)))
    warps = 8 if br * bc >= 1024 else 4
    return br, bc, warps


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class TritonBackend:
    """Backend object used by the custom ops of :mod:`dsl_explore.kernels._op`."""

    name = "triton"

    def run(self, xl, yl, spec: Spec, *, want_loss, want_grad, go=None, dtype=None):
        lay = spec.layout
        dev = xl.device
        interpret = dev.type != "cuda"
        mod = kernels_module(interpret)
        dtype = dtype or xl.dtype
        xl, yl = xl.detach(), yl.detach()
        B, (N0, N1, N2) = lay.B, lay.N
        R = lay.rows
        br, bc, warps = _blocks(lay, interpret, "grad" if want_grad else "loss")
        ct, rt = _cdiv(N2, bc), _cdiv(R, br)
        per_row = want_loss and spec.reduction == "none" and (N0 * N1) % br != 0
        P = R * ct if per_row else rt * ct
        dummy = torch.empty(1, dtype=torch.float32, device=dev)
        part = torch.empty(3 * P, dtype=torch.float32, device=dev) if want_loss else dummy
        g = torch.empty((B, N0, N1, N2), dtype=dtype, device=dev) if want_grad else dummy
        go_mode, go_t = 0, dummy
        if want_grad and go is not None:
            go_t = go.detach().reshape(-1).contiguous()
            go_mode = 2 if spec.reduction == "none" else 1
        c0, c1, c2 = spec.grad_factors()
        mod.dsl_kernel[(rt * ct,)](
            xl, yl, g, part, go_t,
            R, N0, N1, N2, ct, P,
            *xl.stride(), *yl.stride(),
            spec.k, c0, c1, c2,
            NDIM=lay.ndim, SURR=spec.surrogate_id, WANT_LOSS=bool(want_loss),
            WANT_GRAD=bool(want_grad), PER_ROW=per_row, GO_MODE=go_mode, BR=br, BC=bc,
            num_warps=warps,
        )
        out = None
        if want_loss:
            f0, f1, f2 = spec.loss_factors()
            per_sample = spec.reduction == "none"
            n_out = B if per_sample else 1
            res = torch.empty(n_out, dtype=dtype, device=dev)
            ps = P // B if per_sample else P
            mod.finish_loss_kernel[(n_out,)](
                part, res, P, ps, f0, f1, f2,
                A0=lay.ndim >= 3, A1=lay.ndim >= 2, BLOCK=_FINISH_BLOCK, num_warps=4,
            )
            out = res.reshape(lay.sample_shape if per_sample else ())
        return out, (g if want_grad else None)

    def scale_(self, g: torch.Tensor, go: torch.Tensor, spec: Spec) -> torch.Tensor:
        interpret = g.device.type != "cuda"
        mod = kernels_module(interpret)
        n = g.numel()
        if n == 0:
            return g
        go_t = go.detach().reshape(-1).contiguous()
        per_sample = spec.reduction == "none"
        block = 65536 if interpret else _SCALE_BLOCK
        mod.scale_kernel[(_cdiv(n, block),)](
            g, go_t, n, max(1, n // spec.layout.B), PER_SAMPLE=per_sample, BLOCK=block,
            num_warps=8,
        )
        return g

    def count(self, xl: torch.Tensor, yl: torch.Tensor, lay: Layout) -> torch.Tensor:
        dev = xl.device
        interpret = dev.type != "cuda"
        mod = kernels_module(interpret)
        if xl.dtype == torch.bool:
            xl, yl = xl.view(torch.uint8), yl.view(torch.uint8)
        B, (N0, N1, N2) = lay.B, lay.N
        R = lay.rows
        br, bc, warps = _blocks(lay, interpret, "count")
        ct, rt = _cdiv(N2, bc), _cdiv(R, br)
        per_row = (N0 * N1) % br != 0
        P = R * ct if per_row else rt * ct
        part = torch.empty(3 * P, dtype=torch.int64, device=dev)
        mod.count_kernel[(rt * ct,)](
            xl, yl, part, R, N0, N1, N2, ct, P, *xl.stride(), *yl.stride(),
            NDIM=lay.ndim, PER_ROW=per_row, BR=br, BC=bc, num_warps=warps,
        )
        na = len(lay.kaxis)
        j = [lay.kaxis.index(a) if a in lay.kaxis else -1 for a in range(3)]
        out = torch.empty((B, na), dtype=torch.int64, device=dev)
        mod.finish_count_kernel[(B,)](
            part, out, P, P // B, NA=na, J0=j[0], J1=j[1], J2=j[2], BLOCK=_FINISH_BLOCK,
            num_warps=4,
        )
        return out.reshape(*lay.sample_shape, na)
