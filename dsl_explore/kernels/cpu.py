r"""The fused CPU path: a small C library (loss, gradient, exact count) built on first use.

What it does
------------
One pass over ``x`` and ``y`` per call: every axis' differences are evaluated once (the float32
sign surrogates are vectorised branch-free code, see :mod:`dsl_explore.kernels._csrc`), the loss is
accumulated per row and the gradient of each row is written by the same loop as its axis-1 and
axis-0 differences (the derivatives of the previous row and plane kept in rolling buffers), so the
single-pass mode (gradient computed in the forward pass) reads ``x``, ``y`` and writes the
gradient once. Rows are split between ``torch.get_num_threads()`` OpenMP threads --
torch's own pool: the library links ``libgomp.so.1``, which resolves to the copy torch loaded.
Per-row partial sums are reduced by torch in a fixed order and the rows at a split recompute their
neighbours' differences bit for bit, so results do not depend on the number of threads
(deterministic; a test pins 1, 2 and 3 threads). float16/bfloat16 are converted to float32 first
(one extra pass), float64 is computed in float64 (libm, scalar). The exact count compares values (no
subtraction) and sums in int64; integer, bool and half inputs are counted exactly too.

Build: ``cc -O3 -march=native -fopenmp -fopenmp-simd -ffp-contract=fast`` on the embedded C
source, about 1 s, cached in ``$DSL_EXPLORE_CACHE_DIR`` (default ``~/.cache/dsl_explore``, else
the temp directory) under a hash of the source, the flags, the compiler and the CPU's feature
flags; concurrent builds (pytest-xdist) write to a temporary file and rename it. Without OpenMP
or ``-march=native`` it retries with fewer flags. No compiler, or
``DSL_EXPLORE_NO_CPU_KERNELS=1``: :func:`available` is False and ``backend="auto"`` falls back to
the torch reference.

Why this path
-------------
Measured on the 2-core AMD EPYC (Zen 4, KVM) CI box, torch 2.13 CPU, gcc 12, float32, ``k=10``,
tanh, ``reduction="mean"``, fwd+bwd, one thread (CPU time of the calling thread, best of several:
the box is shared and its load made 2-thread wall-clock figures unreliable; the bench docstring
has both). Single-pass floor ``3 N * 4`` bytes at the 1-thread copy rate (18.5 GB/s): 1.36 ms for
2 Mi elements.

==================================================  ============  =============  ==============
fwd+bwd, one core                                   8x1x512^2     1x1x128^3      first call
==================================================  ============  =============  ==============
torch eager reference (autograd)                    86 ms (64x)   98 ms (72x)    --
torch.compile of the reference                      31 ms (23x)   45 ms (33x)    4-8 s per shape
(a) torch.compile of loss + analytic gradient       ~65 ms        ~68 ms         4-6 s per shape
    (2 threads, early, unloaded medians)
(b) ``cpp_extension.load_inline`` (OpenMP)          same C as (b')               30 s (headers)
(b') this module: plain C through ctypes, OpenMP    8.5 ms (6.2x) 11.0 ms (8.1x) ~1 s, once
==================================================  ============  =============  ==============

(a) recompiles per shape, dims, surrogate and reduction, and inductor evaluates each difference
twice (once per end point, through the pads that scatter the gradient) and reduces in a second
loop: 20x or more of the floor. (b) would run the same C but pays ~30 s to compile the torch headers
(``load_inline`` of an empty function with ninja present; more in a cold CI job) once per torch
version. (b') compiles in about a second and needs nothing beyond the C compiler that
torch.compile's CPU backend needs anyway; numba is not a dependency and is not needed.

Since issue 16 this path is the default on CPU (``backend="auto"``, through the custom op of
:mod:`dsl_explore.kernels._op`), tanh was a leaner exp2-polynomial form (1.1e-7 absolute error
over every float32 input) and the gradient's sign comes from ``k dx - k dy``. Re-measured per
core in one interleaved run at load 8-9 (``bench_cpu_cores``): 2D 7.84 ms (5.8x the 1.36 ms
floor), 3D 12.2 ms (9x); eager torch 8.1x / 12.8x slower in the same run. In isolation the new
tanh costs 0.35 ns per value (old 0.38; a rational minimax form, 0.31 ns, was 6 ulps off near
saturation and failed the 3e-7 pin). The 4x target is not reached: see below.

Where the time goes (``perf``, before issue 16): 97 % in the per-line difference loops
(``pair_f32_tanh``), which are compute-bound: two ``tanh`` per difference at ~0.6 ns per value and
core (an ``exp``, a division, ~25 vector operations; Zen 4 runs 512-bit operations on 256-bit
units). A 128^3 volume has 6.3 M differences, ~8 ms of core time, against a memory floor of ~1 ms.
The gradient gather and write add ~1 ns per element, and the Python/torch side (a fresh gradient
tensor written to cold memory, the partial sums, autograd) ~1-2 ms per call at these sizes. What
would close the gap to the floor: a cheaper tanh (a table plus a short polynomial, or
``vscalefps``/``vrcp14ps`` intrinsics instead of the integer exponent trick and the IEEE division),
or ``softsign``, which already runs near the floor (the loss accepts any of the five surrogates).
See the ``bench`` module for the full table.

Follow-up (FMA build, a tanh of about 19 vector operations instead of about 30, tree-summed lane
partials, in-place masked row tails; see :mod:`dsl_explore.kernels._csrc`): the C call for
fwd+grad takes 3.8 ms (2D 8x1x512^2) and 5.6 ms (3D 1x1x128^3) on one core, from 5.9 and 9.7 ms.
The custom op also stopped autograd from filling a zero gradient of ``x``'s size for each of its
two gradient outputs before every backward (``set_materialize_grads(False)``): 0.3-0.8 ms per step
at these sizes, measured on one core of the shared box.

Second round (the gradient gather fused into the axis-1/axis-0 loop, a cheaper derivative sign;
bit-identical results): interleaved with the previous kernels, one thread, best CPU time, load
3.8-3.9: the C call 0.94x (3D) and 0.96x (2D) of its previous time, the full fwd+bwd through
``directional_sign_loss`` 3D 6.53 -> 6.08 ms and 2D 5.02 -> 4.61 ms (three alternating
processes).

Per-call cost outside the C call: a fwd+bwd of a 64x1x256 signal took 0.33 ms, of which the C call
is about 0.02 ms; a 3D 128^3 one about 0.6 ms more than the C call alone (the Python and torch work
after the call runs on caches the call has just swept). ``Layout`` and ``Spec`` are now memoised,
the usual ``dims`` (the last axes) take one ``view`` instead of a permute, a view and unsqueezes,
the per-sample gradient factors are formed in C from three doubles and the upstream gradient
(no ``(B, 3)`` tensor), and the loss is finished from three host floats. Best of 300 (40 at the
large sizes) fwd+bwd, one thread, CPU time, three alternating processes at load 0.5:
64x1x256 0.33 -> 0.25 ms, 64x1x4096 0.56-0.62 -> 0.45-0.48 ms, 2D 8x1x512^2 3.78-3.98 ->
3.65-4.13 ms, 3D 1x1x128^3 5.23-5.36 -> 5.07-5.28 ms (the bench's ``cores`` section has the
per-core ratios against the floor). What is left at small sizes is mostly
``torch.library.custom_op``'s own dispatch and autograd wrapper (pytorch/pytorch#176592,
#177109: upstream is making it cheaper). """

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

from dsl_explore.kernels._common import FUSED_SURROGATES, Layout, Spec, go_is_one
from dsl_explore.kernels._csrc import C_SOURCE, ERR_UNKNOWN_SURROGATE
from dsl_explore.registry import surrogate_id as surrogate_id_of

__all__ = ["CpuBackend", "available", "build_error", "library_path", "openmp_enabled"]

_LOCK = threading.Lock()
_LIB: ctypes.CDLL | None = None
_LIB_PATH: Path | None = None
_BUILD_ERROR: str | None = None
_TRIED = False

#: Below this many elements the work runs on one thread.
PARALLEL_MIN_ELEMENTS = 1 << 15

_P = ctypes.c_void_p
_I = ctypes.c_int64


def _cache_dir() -> Path:
    env = os.environ.get("DSL_EXPLORE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "dsl_explore"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if cc and shutil.which(cc):
            return shutil.which(cc)
    return None


def _compile(cc: str, flags: list[str], out: Path) -> str | None:
    """Compile to ``out`` atomically; return an error message or None."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_c = tempfile.mkstemp(suffix=".c", dir=out.parent)
    with os.fdopen(fd, "w") as f:
        f.write(C_SOURCE)
    tmp_so = f"{tmp_c[:-2]}.so"
    try:
        proc = subprocess.run(
            [cc, *flags, tmp_c, "-o", tmp_so, "-lm"], capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            return proc.stderr[-2000:] or f"{cc} exited with {proc.returncode}"
        os.replace(tmp_so, out)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return repr(exc)
    finally:
        for p in (tmp_c, tmp_so):
            try:
                os.unlink(p)
            except OSError:
                pass


def _load() -> ctypes.CDLL | None:
    global _LIB, _LIB_PATH, _BUILD_ERROR, _TRIED
    if _TRIED:
        return _LIB
    with _LOCK:
        if _TRIED:
            return _LIB
        _TRIED = True
        if os.environ.get("DSL_EXPLORE_NO_CPU_KERNELS"):
            _BUILD_ERROR = "disabled by DSL_EXPLORE_NO_CPU_KERNELS"
            return None
        cc = _compiler()
        if cc is None:
            _BUILD_ERROR = "no C compiler found (gcc, cc, clang or $CC)"
            return None
        try:
            version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        except OSError as exc:
            _BUILD_ERROR = repr(exc)
            return None
        base = ["-O3", "-std=c11", "-fPIC", "-shared", "-fopenmp-simd", "-fno-math-errno",
                "-ffp-contract=fast"]
        errors = []
        variants = (
            [*base, "-march=native", "-fopenmp"],
            [*base, "-fopenmp"],
            [*base, "-march=native"],
            base,
        )
        for flags in variants:
            key = hashlib.sha256(
                "\0".join([C_SOURCE, *flags, version, _cpu_flags(), sys.platform]).encode()
            ).hexdigest()[:20]
            for d in (_cache_dir(), Path(tempfile.gettempdir()) / f"dsl_explore-{os.getuid()}"):
                so = d / f"dsl_cpu_{key}.so"
                if not so.exists():
                    try:
                        err = _compile(cc, flags, so)
                    except OSError as exc:  # unwritable cache directory
                        err = repr(exc)
                    if err is not None:
                        errors.append(err)
                        continue
                try:
                    lib = ctypes.CDLL(str(so))
                except OSError as exc:
                    errors.append(repr(exc))
                    continue
                _declare(lib)
                _LIB, _LIB_PATH = lib, so
                return lib
        _BUILD_ERROR = "\n".join(errors)[-4000:]
        return None


def _declare(lib: ctypes.CDLL) -> None:
    for suf in ("f32", "f64"):
        fn = getattr(lib, f"dsl_{suf}")
        fn.argtypes = [_P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _I, ctypes.c_int,
                       ctypes.c_double, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
    for suf in ("f32", "f64", "i64", "i32", "u8"):
        fn = getattr(lib, f"count_{suf}")
        fn.argtypes = [_P, _P, _P, _I, _I, _I, _I, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
    lib.surrogate_f32.argtypes = [_P, _P, _P, _I, ctypes.c_int]
    lib.surrogate_f32.restype = ctypes.c_int
    lib.openmp_enabled.argtypes = []
    lib.openmp_enabled.restype = ctypes.c_int


def available() -> bool:
    """True when the C library is built (or could be built now) and loaded."""
    return _load() is not None


def build_error() -> str | None:
    """Why the C library is unavailable (compiler output), or None."""
    _load()
    return _BUILD_ERROR


def library_path() -> Path | None:
    """Where the compiled library lives (None when unavailable)."""
    _load()
    return _LIB_PATH


def openmp_enabled() -> bool:
    """True when the library was built with OpenMP (rows split between torch's threads)."""
    lib = _load()
    return bool(lib is not None and lib.openmp_enabled())


def _threads(numel: int) -> int:
    return 1 if numel < PARALLEL_MIN_ELEMENTS else max(1, torch.get_num_threads())


def _check(code: int, surrogate_id: int | None = None) -> None:
    """Turn the C library's return code into an exception: 1 (or any other code) is an allocation
    failure, 2 an unknown surrogate id (bit 1; OpenMP threads OR their codes together)."""
    if code == 0:
        return
    if code & ERR_UNKNOWN_SURROGATE:
        raise ValueError(
            f"the C kernels have no code for surrogate id {surrogate_id} (they implement "
            f"{', '.join(f'{n}={surrogate_id_of(n)}' for n in FUSED_SURROGATES)})"
        )
    raise MemoryError(f"dsl_explore CPU kernel failed (code {code})")


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def surrogate_f32(t: torch.Tensor, surrogate: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The C library's float32 ``s(t)`` and ``s'(t)`` (for tests of its polynomials).

    Raises
    ------
    ValueError
        If ``surrogate`` is not in the registry, or the C code has no case for its id.
    """
    lib = _load()
    if lib is None:
        raise RuntimeError(f"the CPU kernels are unavailable: {_BUILD_ERROR}")
    sid = surrogate_id_of(surrogate)
    t = t.detach().to(torch.float32).contiguous()
    s, ds = torch.empty_like(t), torch.empty_like(t)
    _check(lib.surrogate_f32(t.data_ptr(), s.data_ptr(), ds.data_ptr(), t.numel(), sid), sid)
    return s, ds


_COUNT_TYPES = {
    torch.float32: ("f32", None),
    torch.float64: ("f64", None),
    torch.int64: ("i64", None),
    torch.int32: ("i32", None),
    torch.uint8: ("u8", None),
    torch.bool: ("u8", torch.uint8),  # a view, not a copy
    torch.int8: ("i32", torch.int32),
    torch.int16: ("i32", torch.int32),
    torch.uint16: ("i64", torch.int64),  # exact
    torch.uint32: ("i64", torch.int64),  # exact
    torch.float16: ("f32", torch.float32),  # exact
    torch.bfloat16: ("f32", torch.float32),  # exact
}


class CpuBackend:
    """Backend object used by the custom ops of :mod:`dsl_explore.kernels._op`."""

    name = "cpu"

    @staticmethod
    def supports(x: torch.Tensor) -> bool:
        return x.device.type == "cpu" and x.dtype in (
            torch.float32, torch.float64, torch.float16, torch.bfloat16
        ) and available()

    @staticmethod
    def supports_count(x: torch.Tensor) -> bool:
        return x.device.type == "cpu" and x.dtype in _COUNT_TYPES and available()

    def run(self, xl, yl, spec: Spec, *, want_loss, want_grad, go=None, dtype=None):
        lib = _load()
        assert lib is not None, "CpuBackend needs the C library (see available())"
        lay = spec.layout
        cdt = torch.float64 if xl.dtype == torch.float64 else torch.float32
        xc = xl.detach().to(cdt).contiguous()
        yc = yl.detach().to(cdt).contiguous()
        B, N0, N1, N2 = lay.B, *lay.N
        rows = lay.rows
        part = torch.empty(rows, 3, dtype=torch.float64) if want_loss else None
        g = torch.empty_like(xc) if want_grad else None
        # the factor of sample b, axis a is (cdt)(f3[a] * go[b]), formed in C (no (B, 3) tensor)
        f3 = (ctypes.c_double * 3)(*spec.grad_factors()) if want_grad else None
        gof = None
        if want_grad and go is not None:
            gof = go.detach().to(torch.float64).contiguous().reshape(-1)
        fn = lib.dsl_f64 if cdt == torch.float64 else lib.dsl_f32
        sid = spec.surrogate_id
        _check(fn(xc.data_ptr(), yc.data_ptr(), _ptr(g), _ptr(part), f3, _ptr(gof),
                  0 if gof is None else gof.numel(), rows, N0, N1, N2, lay.ndim, spec.k, sid,
                  _threads(lay.numel)), sid)
        out = None
        if part is not None:
            out = spec.finish(part.view(B, N0 * N1, 3).sum(1), dtype or xl.dtype)
        if g is not None and dtype is not None and g.dtype != dtype:
            g = g.to(dtype)
        return out, g

    @staticmethod
    def scale_(g: torch.Tensor, go: torch.Tensor, spec: Spec) -> torch.Tensor:
        if go_is_one(go):
            return g
        if spec.reduction == "none":
            return g.mul_(go.reshape(-1, 1, 1, 1).to(g.dtype))
        return g.mul_(go.to(g.dtype))

    def count(self, xl: torch.Tensor, yl: torch.Tensor, lay: Layout) -> torch.Tensor:
        lib = _load()
        suf, conv = _COUNT_TYPES[xl.dtype]
        if xl.dtype == torch.bool:
            xl, yl = xl.view(torch.uint8), yl.view(torch.uint8)
        elif conv is not None:
            xl, yl = xl.to(conv), yl.to(conv)
        xc, yc = xl.contiguous(), yl.contiguous()
        B, N0, N1, N2 = lay.B, *lay.N
        rows = lay.rows
        part = torch.empty(rows, 3, dtype=torch.int64)
        fn = getattr(lib, f"count_{suf}")
        _check(fn(xc.data_ptr(), yc.data_ptr(), part.data_ptr(), rows, N0, N1, N2, lay.ndim,
                  _threads(lay.numel)))
        per = part.view(B, N0 * N1, 3).sum(1)
        return per[:, list(lay.kaxis)].reshape(*lay.sample_shape, len(lay.kaxis))
