#!/usr/bin/env python3
"""Measure the C path's float32 tanh (and the surrogates built on it) over every float32 input.

Enumerates the float32 bit patterns of ``[0, 9.5]`` (1.09e9 values; ``|t| >= 9`` returns +-1
exactly, and the odd symmetry comes from ``copysign``, so this covers every input) in chunks of
2^24, evaluates ``s(t)`` and ``s'(t)`` with the compiled library
(:func:`dsl_explore.kernels.cpu.surrogate_f32`) and compares them with float64 math. Prints JSON:
the maximum absolute error of ``s`` and ``s'``, the maximum error in units in the last place of
the correctly rounded float32 value (over ``|t| >= 1/2``; nearer 0 the error is absolute, about
an ulp of 1/2: ``1 - q`` cancels there), where each maximum occurs, and ``saturates_from``: the
input from which ``s`` is 1 and ``s'`` is 0 exactly (every input of the range above it; with
``--step`` > 1 only the sampled ones).

    python scripts/tanh_error.py                 # tanh, every input (~1 min on one core)
    python scripts/tanh_error.py --step 4099     # a sample (what the test does)
    python scripts/tanh_error.py --surrogate sigmoid --hi 19
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REFERENCE = {
    "tanh": (np.tanh, lambda t, s: 1.0 - s * s),
    "sigmoid": (lambda t: np.tanh(t / 2), lambda t, s: 0.5 * (1.0 - s * s)),
}


def measure(surrogate: str = "tanh", hi: float = 9.5, step: int = 1,
            chunk: int = 1 << 24) -> dict:
    """Max errors of the C float32 ``surrogate`` over float32 inputs ``0 <= t <= hi`` (every
    ``step``-th bit pattern)."""
    from dsl_explore.kernels import cpu

    fn, dfn = REFERENCE[surrogate]
    top = int(np.array(hi, dtype=np.float32).view(np.uint32))
    worst = {"abs": 0.0, "abs_at": 0.0, "ulp": 0.0, "ulp_at": 0.0, "d_abs": 0.0, "d_abs_at": 0.0}
    count = 0
    last_unsaturated = -1.0  # the largest input with s != 1 or s' != 0
    for start in range(0, top + 1, chunk * step):
        bits = np.arange(start, min(top + 1, start + chunk * step), step, dtype=np.uint32)
        t32 = bits.view(np.float32)
        s, ds = cpu.surrogate_f32(torch.from_numpy(t32), surrogate)
        s64, ds64 = s.numpy().astype(np.float64), ds.numpy().astype(np.float64)
        t64 = t32.astype(np.float64)
        ref = fn(t64)
        err = np.abs(s64 - ref)
        i = int(err.argmax())
        if err[i] > worst["abs"]:
            worst["abs"], worst["abs_at"] = float(err[i]), float(t32[i])
        ref32 = ref.astype(np.float32)
        ulp = np.spacing(np.abs(ref32)).astype(np.float64)
        big = t32 >= 0.5
        if big.any():
            u = np.where(big, err / ulp, 0.0)
            j = int(u.argmax())
            if u[j] > worst["ulp"]:
                worst["ulp"], worst["ulp_at"] = float(u[j]), float(t32[j])
        derr = np.abs(ds64 - dfn(t64, ref))
        j = int(derr.argmax())
        if derr[j] > worst["d_abs"]:
            worst["d_abs"], worst["d_abs_at"] = float(derr[j]), float(t32[j])
        unsat = np.flatnonzero((s64 != 1.0) | (ds64 != 0.0))
        if unsat.size:
            last_unsaturated = float(t32[unsat[-1]])
        count += bits.size
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e30, -1e30])
    s, ds = cpu.surrogate_f32(special, surrogate)
    saturates_from = float(np.nextafter(np.float32(last_unsaturated), np.float32(np.inf)))
    return {"surrogate": surrogate, "range": [0.0, hi], "step": step, "inputs": count,
            **worst, "saturates_from": saturates_from,
            "special": {"t": special.tolist(), "s": s.tolist(), "ds": ds.tolist()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--surrogate", default="tanh", choices=sorted(REFERENCE))
    p.add_argument("--hi", type=float, default=9.5, help="upper end of the range (9.5)")
    p.add_argument("--step", type=int, default=1, help="every STEP-th bit pattern (1: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps(measure(args.surrogate, args.hi, args.step), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
