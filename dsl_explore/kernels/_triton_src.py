"""Triton kernels of the fused DSL and the exact count (launched by ``triton_dsl``).

Compiled kernels for CUDA tensors, or interpreted ones (CPU or CUDA tensors) when
``TRITON_INTERPRET=1`` was set before triton was imported.

Layout: ``(B, N0, N1, N2)`` with arbitrary element strides; a *row* is one ``(b, i0, i1)``, there
are ``R = B * N0 * N1`` rows. A program handles a ``BR x BC`` tile: ``BR`` consecutive rows,
``BC`` consecutive columns of the last axis. The neighbour loads (``+-1`` along each kernel axis)
hit the L1/L2 caches, so DRAM traffic is one read of ``x`` and ``y`` (and one write of the
gradient). Program ids are flattened (``pid = row_tile * CT + col_tile``), so the grid has no 65535
limit on any axis.

Partial sums: one per program and kernel axis (``part[a * P + pid]``), or one per row and column
tile when ``PER_ROW`` (per-sample reductions whose sample boundaries fall inside a row tile); the
finish kernels reduce them in a fixed order. No atomics anywhere.

Math: ``tanh`` is the C path's ``tanh_kd`` (``sign(t) (1 - 2e / (1 + e))`` with ``e = exp(-2|t|)``
from a Pade form and the exponent bits), ``atan`` Cephes' float32 polynomial, ``erf``
``tl.math.erf``; only ``tl.exp``, divisions, polynomials and bit casts, since libdevice's
functions are not available in the interpreter.
"""

from __future__ import annotations

import triton
import triton.language as tl

from dsl_explore.kernels._csrc import PADE_EXP2
from dsl_explore.registry import SURROGATE_IDS

# Surrogate ids from the registry, as compile-time constants (the kernels' SURR is compared with
# them; an id without a branch below fails at trace time, see _surrogate).
S_TANH = tl.constexpr(SURROGATE_IDS["tanh"])
S_SOFTSIGN = tl.constexpr(SURROGATE_IDS["softsign"])
S_ARCTAN = tl.constexpr(SURROGATE_IDS["arctan"])
S_ERF = tl.constexpr(SURROGATE_IDS["erf"])
S_SIGMOID = tl.constexpr(SURROGATE_IDS["sigmoid"])
# the C tanh's Pade coefficients (one source for both kernels)
PADE_C1 = tl.constexpr(PADE_EXP2[0])
PADE_C2 = tl.constexpr(PADE_EXP2[1])
PADE_C3 = tl.constexpr(PADE_EXP2[2])


@triton.jit
def _tanh(t):
    """The C path's ``tanh_kd`` in the same steps: ``sign(t) (1 - 2q)``, ``q = e / (1 + e)``,
    ``e = exp(-2|t|) = 2^n 2^f`` (``|t|`` clamped to 9.5, ``n`` rounded by the 1.5 * 2^23 trick,
    ``2^f = num / den`` by the Pade [3/3] form, ``2^n`` from the exponent bits, one division for
    ``q``), +-1 exactly from ``|t| = 9.0109``. Absolute error <= 1.2e-7 over every float32 input
    in C (``scripts/tanh_error.py``; here ``t = k d`` is rounded once more before the exponent)."""
    a = tl.abs(t)
    a = tl.where(a > 9.5, 9.5, a)  # keeps NaN
    y = a * -2.88539008177792681
    n = (y + 12582912.0) - 12582912.0
    f = y - n
    f2 = f * f
    e0 = f2 * PADE_C2 + 1.0
    o = f * (f2 * PADE_C3 + PADE_C1)
    bits = (n.to(tl.int32) + 127) << 23
    m = (e0 + o) * bits.to(tl.float32, bitcast=True)
    q = 1.0 - 2.0 * (m / ((e0 - o) + m))
    return tl.where(t < 0.0, -q, q)


@triton.jit
def _atan(t):
    a = tl.abs(t)
    big = a > 2.414213562373095
    mid = a > 0.4142135623730950
    xb = -1.0 / tl.where(big, a, 1.0)
    xm = (a - 1.0) / (a + 1.0)
    xr = tl.where(big, xb, tl.where(mid, xm, a))
    y0 = tl.where(big, 1.5707963267948966, tl.where(mid, 0.7853981633974483, 0.0))
    z = xr * xr
    r = y0 + ((((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
               - 3.33329491539e-1) * z * xr + xr)
    return tl.where(t < 0.0, -r, r)


@triton.jit
def _surrogate(t, SURR: tl.constexpr):
    """``(s(t), s'(t))`` for the surrogate with registry id SURR; any other id fails when the
    kernel is traced (compiled: a CompilationError, interpreted: an AssertionError)."""
    tl.static_assert(
        (SURR == S_TANH) | (SURR == S_SOFTSIGN) | (SURR == S_ARCTAN) | (SURR == S_ERF)
        | (SURR == S_SIGMOID),
        "unknown surrogate id: the Triton kernels implement the ids of "
        "dsl_explore.kernels.FUSED_SURROGATES only",
    )
    if SURR == S_TANH:
        s = _tanh(t)
        ds = 1.0 - s * s
    elif SURR == S_SOFTSIGN:
        den = 1.0 + tl.abs(t)
        s = tl.where(tl.abs(t) > 3.4028234663852886e38, tl.where(t < 0.0, -1.0, 1.0), t / den)
        ds = 1.0 / (den * den)
    elif SURR == S_ARCTAN:
        s = _atan(t) * 0.6366197723675814
        ds = 0.6366197723675814 / (1.0 + t * t)
    elif SURR == S_ERF:
        s = tl.math.erf(t)
        t2 = t * t
        ds = tl.where(t2 >= 100.0, 0.0, 1.1283791670955126 * tl.exp(-t2))  # 0 where saturated
    else:  # S_SIGMOID (the static_assert above excludes every other id)
        tc = tl.where(t > 80.0, 80.0, tl.where(t < -80.0, -80.0, t))
        sg = 1.0 / (1.0 + tl.exp(-tc))
        s = 2.0 * sg - 1.0
        ds = tl.where(tl.abs(t) > 80.0, 0.0, 2.0 * sg * (1.0 - sg))  # not the clamp's 4e-35
    return s, ds


@triton.jit
def _diff_term(x0, x1, y0, y1, k, SURR: tl.constexpr):
    """``|s(k dx) - s(k dy)|`` and ``s'(k dx) * sign(k dx - k dy)``."""
    t = k * (x1 - x0)
    ty = k * (y1 - y0)
    sx, dsx = _surrogate(t, SURR)
    sy, _ = _surrogate(ty, SURR)
    # s is increasing: sign(s(tx) - s(ty)) = sign(tx - ty), exact (as in the C path)
    sgn = tl.where(t > ty, 1.0, tl.where(t < ty, -1.0, 0.0))
    return tl.abs(sx - sy), dsx * sgn


@triton.jit
def _store_partial(part_ptr, a, P, pid, rows, rmask, pid_c, CT, term, own, PER_ROW: tl.constexpr):
    s = tl.sum(tl.where(own, term, 0.0), axis=1)
    if PER_ROW:
        tl.store(part_ptr + a * P + rows * CT + pid_c, s, mask=rmask)
    else:
        tl.store(part_ptr + a * P + pid, tl.sum(s, axis=0))


@triton.jit
def _axis(x_ptr, y_ptr, xo, yo, xc, yc, sx, sy, own, prv, k, fac,
          part_ptr, a, P, pid, rows, rmask, pid_c, CT, acc,
          SURR: tl.constexpr, WANT_LOSS: tl.constexpr, WANT_GRAD: tl.constexpr,
          PER_ROW: tl.constexpr):
    """One kernel axis: the differences that start at the tile (loss and gradient) and, for the
    gradient, those that end there."""
    x1 = tl.load(x_ptr + xo + sx, mask=own, other=0.0).to(tl.float32)
    y1 = tl.load(y_ptr + yo + sy, mask=own, other=0.0).to(tl.float32)
    term, gd = _diff_term(xc, x1, yc, y1, k, SURR)
    if WANT_LOSS:
        _store_partial(part_ptr, a, P, pid, rows, rmask, pid_c, CT, term, own, PER_ROW)
    if WANT_GRAD:
        xm = tl.load(x_ptr + xo - sx, mask=prv, other=0.0).to(tl.float32)
        ym = tl.load(y_ptr + yo - sy, mask=prv, other=0.0).to(tl.float32)
        _, gp = _diff_term(xm, xc, ym, yc, k, SURR)
        acc = acc + (tl.where(prv, gp, 0.0) - tl.where(own, gd, 0.0)) * fac
    return acc


@triton.jit
def dsl_kernel(x_ptr, y_ptr, g_ptr, part_ptr, go_ptr,
               R, N0, N1, N2, CT, P,
               sxb, sx0, sx1, sx2, syb, sy0, sy1, sy2,
               k, c0, c1, c2,
               NDIM: tl.constexpr, SURR: tl.constexpr, WANT_LOSS: tl.constexpr,
               WANT_GRAD: tl.constexpr, PER_ROW: tl.constexpr, GO_MODE: tl.constexpr,
               BR: tl.constexpr, BC: tl.constexpr):
    """Loss partials and/or the gradient ``dL/dx`` (contiguous, in g_ptr's dtype).

    ``c0, c1, c2``: gradient factors per kernel axis (``k * 0.5 * w_a * scale``); GO_MODE 0: no
    upstream factor, 1: times ``go[0]``, 2: times ``go[b]`` per sample (read on the device).
    """
    pid = tl.program_id(0)
    pid_r = pid // CT
    pid_c = pid - pid_r * CT
    rows = pid_r.to(tl.int64) * BR + tl.arange(0, BR)
    cols = pid_c * BC + tl.arange(0, BC)
    rmask = rows < R
    cmask = cols < N2
    i1 = rows % N1
    q = rows // N1
    i0 = q % N0
    b = q // N0
    cols64 = cols.to(tl.int64)
    xo = (b * sxb + i0 * sx0 + i1 * sx1)[:, None] + (cols64 * sx2)[None, :]
    yo = (b * syb + i0 * sy0 + i1 * sy1)[:, None] + (cols64 * sy2)[None, :]
    m = rmask[:, None] & cmask[None, :]
    xc = tl.load(x_ptr + xo, mask=m, other=0.0).to(tl.float32)
    yc = tl.load(y_ptr + yo, mask=m, other=0.0).to(tl.float32)
    if GO_MODE == 1:
        gof = tl.load(go_ptr).to(tl.float32)
    elif GO_MODE == 2:
        gof = tl.load(go_ptr + b, mask=rmask, other=0.0).to(tl.float32)[:, None]
    else:
        gof = 1.0
    acc = tl.zeros([BR, BC], dtype=tl.float32)
    # kernel axis 2: along the row
    own = m & (cols < N2 - 1)[None, :]
    prv = m & (cols >= 1)[None, :]
    acc = _axis(x_ptr, y_ptr, xo, yo, xc, yc, sx2, sy2, own, prv, k, c2 * gof,
                part_ptr, 2, P, pid, rows, rmask, pid_c, CT, acc,
                SURR, WANT_LOSS, WANT_GRAD, PER_ROW)
    if NDIM >= 2:
        own = m & (i1 < N1 - 1)[:, None]
        prv = m & (i1 >= 1)[:, None]
        acc = _axis(x_ptr, y_ptr, xo, yo, xc, yc, sx1, sy1, own, prv, k, c1 * gof,
                    part_ptr, 1, P, pid, rows, rmask, pid_c, CT, acc,
                    SURR, WANT_LOSS, WANT_GRAD, PER_ROW)
    if NDIM >= 3:
        own = m & (i0 < N0 - 1)[:, None]
        prv = m & (i0 >= 1)[:, None]
        acc = _axis(x_ptr, y_ptr, xo, yo, xc, yc, sx0, sy0, own, prv, k, c0 * gof,
                    part_ptr, 0, P, pid, rows, rmask, pid_c, CT, acc,
                    SURR, WANT_LOSS, WANT_GRAD, PER_ROW)
    if WANT_GRAD:
        go_off = rows[:, None] * N2 + cols64[None, :]
        tl.store(g_ptr + go_off, acc, mask=m)


@triton.jit
def count_kernel(x_ptr, y_ptr, part_ptr, R, N0, N1, N2, CT, P,
                 sxb, sx0, sx1, sx2, syb, sy0, sy1, sy2,
                 NDIM: tl.constexpr, PER_ROW: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr):
    """Per-program (or per-row) int64 mismatch counts per kernel axis, from comparisons."""
    pid = tl.program_id(0)
    pid_r = pid // CT
    pid_c = pid - pid_r * CT
    rows = pid_r.to(tl.int64) * BR + tl.arange(0, BR)
    cols = pid_c * BC + tl.arange(0, BC)
    rmask = rows < R
    cmask = cols < N2
    i1 = rows % N1
    q = rows // N1
    i0 = q % N0
    b = q // N0
    cols64 = cols.to(tl.int64)
    xo = (b * sxb + i0 * sx0 + i1 * sx1)[:, None] + (cols64 * sx2)[None, :]
    yo = (b * syb + i0 * sy0 + i1 * sy1)[:, None] + (cols64 * sy2)[None, :]
    m = rmask[:, None] & cmask[None, :]
    xc = tl.load(x_ptr + xo, mask=m, other=0)
    yc = tl.load(y_ptr + yo, mask=m, other=0)
    own = m & (cols < N2 - 1)[None, :]
    _count_axis(x_ptr, y_ptr, xo, yo, xc, yc, sx2, sy2, own, part_ptr, 2, P, pid, rows, rmask,
                pid_c, CT, PER_ROW)
    if NDIM >= 2:
        own = m & (i1 < N1 - 1)[:, None]
        _count_axis(x_ptr, y_ptr, xo, yo, xc, yc, sx1, sy1, own, part_ptr, 1, P, pid, rows,
                    rmask, pid_c, CT, PER_ROW)
    if NDIM >= 3:
        own = m & (i0 < N0 - 1)[:, None]
        _count_axis(x_ptr, y_ptr, xo, yo, xc, yc, sx0, sy0, own, part_ptr, 0, P, pid, rows,
                    rmask, pid_c, CT, PER_ROW)


@triton.jit
def _count_axis(x_ptr, y_ptr, xo, yo, xc, yc, sx, sy, own, part_ptr, a, P, pid, rows, rmask,
                pid_c, CT, PER_ROW: tl.constexpr):
    x1 = tl.load(x_ptr + xo + sx, mask=own, other=0)
    y1 = tl.load(y_ptr + yo + sy, mask=own, other=0)
    mm = ((x1 > xc) ^ (y1 > yc)) | ((x1 < xc) ^ (y1 < yc))
    c = tl.sum(tl.where(own & mm, 1, 0).to(tl.int32), axis=1).to(tl.int64)
    if PER_ROW:
        tl.store(part_ptr + a * P + rows * CT + pid_c, c, mask=rmask)
    else:
        tl.store(part_ptr + a * P + pid, tl.sum(c, axis=0))


@triton.jit
def finish_loss_kernel(part_ptr, out_ptr, P, PS, f0, f1, f2,
                       A0: tl.constexpr, A1: tl.constexpr, BLOCK: tl.constexpr):
    """``out[b] = sum_a f_a * sum_i part[a, b * PS + i]`` over the ``PS`` partials of sample
    ``b`` (one program per sample; ``PS = P`` and one program for a total). Fixed order."""
    b = tl.program_id(0).to(tl.int64)
    base = b * PS
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(0, PS, BLOCK):
        idx = i + tl.arange(0, BLOCK)
        msk = idx < PS
        v = tl.load(part_ptr + 2 * P + base + idx, mask=msk, other=0.0) * f2
        if A1:
            v += tl.load(part_ptr + P + base + idx, mask=msk, other=0.0) * f1
        if A0:
            v += tl.load(part_ptr + base + idx, mask=msk, other=0.0) * f0
        acc += v
    tl.store(out_ptr + b, tl.sum(acc, axis=0))


@triton.jit
def finish_count_kernel(part_ptr, out_ptr, P, PS, NA: tl.constexpr,
                        J0: tl.constexpr, J1: tl.constexpr, J2: tl.constexpr,
                        BLOCK: tl.constexpr):
    """``out[b, J_a] = sum_i part[a, b * PS + i]`` in int64 for the kernel axes with
    ``J_a >= 0`` (the position of that axis in ``dims``)."""
    b = tl.program_id(0).to(tl.int64)
    base = b * PS
    a0 = tl.zeros([BLOCK], dtype=tl.int64)
    a1 = tl.zeros([BLOCK], dtype=tl.int64)
    a2 = tl.zeros([BLOCK], dtype=tl.int64)
    for i in range(0, PS, BLOCK):
        idx = i + tl.arange(0, BLOCK)
        msk = idx < PS
        a2 += tl.load(part_ptr + 2 * P + base + idx, mask=msk, other=0)
        if J1 >= 0:
            a1 += tl.load(part_ptr + P + base + idx, mask=msk, other=0)
        if J0 >= 0:
            a0 += tl.load(part_ptr + base + idx, mask=msk, other=0)
    tl.store(out_ptr + b * NA + J2, tl.sum(a2, axis=0))
    if J1 >= 0:
        tl.store(out_ptr + b * NA + J1, tl.sum(a1, axis=0))
    if J0 >= 0:
        tl.store(out_ptr + b * NA + J0, tl.sum(a0, axis=0))


@triton.jit
def scale_kernel(g_ptr, go_ptr, n, S, PER_SAMPLE: tl.constexpr, BLOCK: tl.constexpr):
    """``g *= go`` (``go[0]``, or ``go[i // S]`` per sample) in place, skipped on the device
    where the factor is 1 (then only ``go`` is read)."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    msk = offs < n
    if PER_SAMPLE:
        gof = tl.load(go_ptr + offs // S, mask=msk, other=1.0).to(tl.float32)
        need = tl.max(tl.where(gof != 1.0, 1, 0), axis=0)
    else:
        gof = tl.load(go_ptr).to(tl.float32)
        need = tl.where(gof != 1.0, 1, 0)
    if need > 0:
        g = tl.load(g_ptr + offs, mask=msk, other=0.0).to(tl.float32)
        tl.store(g_ptr + offs, g * gof, mask=msk)
