r"""Error bounds for a low-precision DSL against its float64 truth, derived from the arithmetic.

A float32 (or float16/bfloat16-output) implementation of DSL is compared with the float64 value on
*the same rounded inputs*; the allowed error comes from the rounding model below, evaluated on the
case's own data, so it holds on every CPU and GPU (no constant tuned on one machine).

Model (unit roundoff ``u = 2**-24`` for float32; every operation rounds with relative error <= u):

* ``t = k (x1 - x0)`` is computed with relative error <= 3u (the difference, the product, and ``k``
  rounded to float32), so ``s(t)`` moves by <= ``|t s'(t)| 3u``, plus ``GAMMA_S``, the absolute
  error of the float32 surrogate itself (the C polynomials are pinned at 3e-7 =~ 2.5 eps by
  ``test_float32_surrogates_are_accurate``; torch's and Triton's float32 functions are within an
  ulp or two). So ``ds = s(tx) - s(ty)`` has error
  ``delta = (|tx s'(tx)| + |ty s'(ty)|) 3u + 2 GAMMA_S + u |ds|``; the term ``0.5 |ds|`` half that.
* The gradient factor ``s'(t)`` moves by ``|t s''(t)| 3u`` (the conditioning of ``s'``: for erf it
  is ``2 t^2 s'(t)``, which is what made a fixed 1e-5 fail for ``k=7``) plus ``GAMMA_D`` (the
  derivative's own error, pinned at 5e-7 =~ 4.2 eps), and the products by the factors and the
  upstream gradient add a few u of the value.
* Where ``|ds| <= delta`` the computed sign of ``ds`` may differ from the true one: that gradient
  contribution may be off by twice its size; these (rare) flips are added in full.
* Independent rounding errors are summed as in Higham & Mary's probabilistic analysis (SIAM J. Sci.
  Comput. 41(5), 2019): a sum of independent zero-mean errors bounded by ``b_i`` exceeds
  ``LAMBDA sqrt(sum b_i^2)`` with probability <= ``2 exp(-LAMBDA^2 / 2)`` (Hoeffding), 3e-8 for
  ``LAMBDA = 6``. Accumulating ``n`` non-negative terms to ``L`` thus adds ``LAMBDA sqrt(n) u L``
  (each partial sum is <= L). This ``sqrt(n)`` is the size of the case entering the bound.
* A result stored in a narrower dtype (float16, bfloat16) adds that dtype's ``u_out`` relative.

:func:`dsl_error_bounds` returns these bounds as norms (per-sample loss vector, gradient tensor),
relative to the truth's norm like the errors the tests measure.
"""

from __future__ import annotations

import math

import torch

U32 = 2.0**-24  # unit roundoff of float32 (half of float32's machine epsilon)
EPS32 = 2.0 * U32
GAMMA_S = 3.0 * EPS32  # absolute error of a float32 surrogate s(t)
GAMMA_D = 5.0 * EPS32  # absolute error of its derivative s'(t)
LAMBDA = 6.0  # Hoeffding: a bound exceeded with probability <= 2 exp(-18) = 3e-8

UNIT_ROUNDOFF = {
    torch.float32: U32,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
    torch.float64: 2.0**-53,
}


def _derivatives(fn, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``s(t), s'(t), s''(t)`` in float64 by autograd."""
    t = t.detach().clone().requires_grad_(True)
    s = fn(t)
    (d1,) = torch.autograd.grad(s.sum(), t, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), t)
    return s.detach(), d1.detach(), d2.detach()


def _rel(bound: torch.Tensor, truth: torch.Tensor) -> float:
    den = truth.norm().item() if truth.numel() else 0.0
    num = bound.norm().item() if bound.numel() else 0.0
    return num / den if den > 0 else num


def dsl_error_bounds(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: float,
    weights,
    dims: tuple[int, ...],
    surrogate,
    reduction: str,
    go: torch.Tensor,
    out_dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Relative (norm-wise) error bounds of a float32 DSL on the float64 values ``x``, ``y``.

    ``go`` is the upstream gradient (shape of the loss). Returns ``loss``, ``grad_x`` and
    ``grad_y``: bounds on ``||err|| / ||truth||`` (the absolute norm where the truth is 0).
    """
    x, y, go = x.double(), y.double(), go.double()
    u = U32
    u_out = UNIT_ROUNDOFF[out_dtype] if out_dtype != torch.float32 else 0.0
    ndim = len(dims)
    w = [1.0] * ndim if weights is None else [float(v) for v in weights]

    def per_sample(v: torch.Tensor) -> torch.Tensor:
        return v.sum(dim=dims) if reduction == "none" else v.sum()

    loss_b2 = torch.zeros(())
    gx_b2, gy_b2 = torch.zeros_like(x), torch.zeros_like(x)  # sums of squared random bounds
    gx_lin, gy_lin = torch.zeros_like(x), torch.zeros_like(x)  # flips + a few u of the value
    gx_true, gy_true = torch.zeros_like(x), torch.zeros_like(x)
    loss_true = torch.zeros(())
    n_terms = 0
    for j, a in enumerate(dims):
        if x.shape[a] < 2 or x.numel() == 0:
            continue
        tx, ty = k * torch.diff(x, dim=a), k * torch.diff(y, dim=a)
        sx, dx1, dx2 = _derivatives(surrogate, tx)
        sy, dy1, dy2 = _derivatives(surrogate, ty)
        ds = sx - sy
        delta = (tx * dx1).abs() * 3 * u + (ty * dy1).abs() * 3 * u + 2 * GAMMA_S + u * ds.abs()
        flip = ds.abs() <= delta
        # W_i = dL/dterm_i for the reduction and weights (no upstream factor), and with it
        tau = torch.zeros_like(tx, requires_grad=True)
        if reduction == "sum":
            r = tau.sum()
        elif reduction == "mean":
            r = tau.mean()
        else:
            r = tau.mean(dim=dims)
        (W,) = torch.autograd.grad((w[j] * r * torch.ones_like(go)).sum(), tau)
        (Wg,) = torch.autograd.grad((w[j] * r * go).sum(), tau)
        term = 0.5 * ds.abs()
        loss_true = loss_true + per_sample(W * term)
        loss_b2 = loss_b2 + per_sample((W * 0.5 * delta) ** 2)
        n_terms += int(per_sample(torch.ones_like(tx)).max().item())
        for d1, d2, tt, sign, b2, lin, true in (
            (dx1, dx2, tx, 1.0, gx_b2, gx_lin, gx_true),
            (dy1, dy2, ty, -1.0, gy_b2, gy_lin, gy_true),
        ):
            c = Wg.abs() * 0.5 * k
            contrib = Wg * 0.5 * k * d1 * torch.sign(ds) * sign
            b = c * ((tt * d2).abs() * 3 * u + GAMMA_D)
            flips = torch.where(flip, 2 * c * d1.abs(), torch.zeros_like(c))
            n = x.shape[a]
            # difference i feeds element i + 1 with +, element i with -
            for sl in (slice(1, n), slice(0, n - 1)):
                idx = [slice(None)] * x.ndim
                idx[a] = sl
                b2[tuple(idx)] += b**2
                lin[tuple(idx)] += flips + (2 * ndim + 3) * u * contrib.abs()
            true.narrow(a, 1, n - 1).add_(contrib)
            true.narrow(a, 0, n - 1).sub_(contrib)
    loss_bound = (
        LAMBDA * loss_b2.sqrt()
        + (LAMBDA * math.sqrt(max(n_terms, 1)) * u + u + u_out) * loss_true.abs()
    )
    out = {"loss": _rel(loss_bound, loss_true)}
    for name, b2, lin, true in (("grad_x", gx_b2, gx_lin, gx_true),
                                ("grad_y", gy_b2, gy_lin, gy_true)):
        bound = LAMBDA * b2.sqrt() + lin + u_out * true.abs()
        out[name] = _rel(bound, true)
    return out
