"""C source of the fused CPU path (compiled on first use by :mod:`dsl_explore.kernels.cpu`).

Plain C11, no torch headers (so it compiles in about a second). ``#pragma omp simd`` vectorises the
inner loops; ``#pragma omp parallel`` splits rows between threads when built with ``-fopenmp``,
which links ``libgomp.so.1``: torch's CPU wheels load their own copy under that name first, so the
kernels run on torch's OpenMP pool (no second pool competing for the cores). Without OpenMP the
same code runs on one thread.

Layout: a contiguous ``(B, N0, N1, N2)`` array; a "row" is one ``(b, i0, i1)`` line of ``N2``
elements, ``R = B * N0 * N1`` rows. Kernel axes 0, 1, 2 are ``N0, N1, N2``; a 1D problem is
``(B, 1, 1, N)``, a 2D one ``(B, 1, H, W)``. Every function works on a row range ``[r0, r1)`` and
writes per-row partials (``part[r * 3 + axis]``), so the totals do not depend on how the rows were
split between threads.

The float32 surrogates are branch-free so that GCC vectorises them: ``tanh(k d) = sign(d) (1 - 2e
/ (1 + e))`` with ``e = exp(-2 k |d|) = 2^n 2^f`` (``y = -2 log2(e) k |d|`` by one FMA from the
difference ``d``, so ``k d`` is never rounded; ``2^f = num / den`` by a Pade [3/3] form, whose
division is the one of ``e / (1 + e)``: ``q = 2^n num / (den + 2^n num)``; ``2^n`` from the bits
of the rounding constant ``y + 1.5 * 2^23``), ``2 sigma(t) - 1 = tanh(t / 2)``, Cephes'
``atanf`` and ``erff``, Numerical Recipes' ``erfc`` for ``|t| >= 1`` (its ``exp`` by Cephes' range
reduction and a degree-5 polynomial). The gradient takes ``sign(dx - dy)``, which equals
``sign(s(k dx) - s(k dy))`` for an increasing ``s`` and ``k > 0`` and is exact in floating point.
The float64 variant calls libm. :mod:`dsl_explore.kernels.cpu` builds with ``-ffp-contract=fast``
(the polynomials become FMA chains where the CPU has FMA).

Measured error of the float32 tanh over **every** float32 input (``scripts/tanh_error.py``
enumerates the 1.09e9 bit patterns of ``[0, 9.5]``; larger ``|t|`` give +-1 exactly and negative
inputs mirror through ``copysign``), FMA build on Zen 4: at most ``1.17e-7`` absolute
(:data:`TANH_F32_MAX_ABS_ERR`; at ``t = 0.174``, where ``1 - 2q`` cancels), 3.17 ulps of the
correctly rounded value for ``|t| >= 1/2``, ``1 - s^2`` within ``1.41e-7`` of ``tanh'``
(:data:`TANH_F32_MAX_D_ERR`), +-1 and ``s' = 0`` exactly from ``|t| = 9.010914`` on
(:data:`TANH_F32_SATURATES`), NaN for NaN; sigmoid (``tanh(t/2)``, every input of ``[0, 19]``):
``1.17e-7`` absolute, 6.6 ulps for ``|t| >= 1/2``, derivative ``7.0e-8``, saturated from
18.0218. (The exp2-polynomial form before the Pade one: tanh 1.03e-7, 2.98 ulps, 1.41e-7, +-1
from 9; sigmoid 1.03e-7, 5.8 ulps, 7.1e-8. Without FMA: tanh 1.08e-7, 3.6 ulps, 1.83e-7.) A test
checks a sampled subset against float64; the other surrogates are within 3e-7 (tests pin this).

Cost: the difference loops are bound by vector operations. Before this version they took about 30
per ``tanh`` (no FMA, since GCC does not contract under ``-std=c11``; ``a >= 9 ? 1 : s`` with a
constant let GCC fold ``tanh(9)`` and split every loop into masked halves), plus 16 dependent
scalar adds per call for the in-order ``omp simd`` reduction and a copied tail vector per row;
now about 19, per-lane partial sums added as a tree, and a row's last vector read in place with
its lanes past the row masked. One Zen 4 core, the C call alone, fwd+grad float32: 8x1x512^2
5.9 -> 3.8 ms, 1x1x128^3 9.7 -> 5.6 ms (the full loss, fwd+bwd: :mod:`dsl_explore.bench`).

Gradient pass (second round): the axis-1 and axis-0 differences, their derivatives and the gather
of the row's gradient are one loop (``cross_*``; the derivatives of the previous row and plane are
read and replaced in place), and the derivative's sign is a select of ``c, -c, c * 0`` (SGN_C);
results are bit-identical to the previous kernels. Without the gradient the C call took 4.5 ms
(3D) against 5.6 with it; the separate gather loop was about 0.5 ms of that. Interleaved with the
previous kernels on one shared core (load 3.9, best of 31): 3D 5.67 -> 5.31 ms (0.94x), 2D 3.87 ->
3.72 ms (0.96x; 0.91x in another run; 3D 0.93x). What was measured and not taken: removing the
division of ``tanh_kd`` altogether (a timing test) saves 4-8 %, but a division-free reciprocal
(a degree-2 seed and two Newton steps, or a degree-4 seed and one corrected step) made the C call
24-26 % slower: the loops are bound by the FMA pipes, and the divider runs beside them. Putting
the exponent bias into the rounding constant (one integer add less per tanh) saved 0.4-2 %,
not worth a new exhaustive error run; computing the axis-2 differences in the same loop as well
could save at most about 3 % (a timing upper bound without the lane shift it needs).

Third round (the Pade tanh): counted in the compiled loop, a tanh took 10 operations on the FMA
pipes (two for the range reduction, six for the exp2 polynomial, the scaling by ``2^n``, ``1 -
2q``) of about 17, and the loops are bound by those pipes: a form with one more FMA and one
operation less on the other pipes (Estrin's scheme) was 3-7 % slower, and dropping one polynomial
term (a timing test) saved 4-5 %. The Pade form computes ``2^f`` with four FMA-pipe operations
and two adds, and its division is the one ``q`` needs anyway; ``min`` replaces the compare and
select of the clamp. A/B of the C call alone (1 thread, thread CPU time, best of 60, interleaved,
quiet machine): 2D 8x1x512^2 4.00 -> 3.60 ms (0.90x), 3D 1x1x128^3 5.49 -> 4.83 ms (0.88x); in
three more runs at load 10-12: 0.84-0.91x (2D) and 0.88x (3D). Not taken:
``s = (den - m) / (den + m)`` (one FMA less, 0.82x) doubled the derivative's error near
saturation (2.9e-7); 256-bit vectors were 1.3-1.45x slower than the 512-bit ones GCC picks here.

Fourth round (what the pipes take). Throughput of 512-bit operations on this Zen 4, twelve
independent chains, CPU time at 3.5 GHz (the clock measured by a chain of dependent adds): an FMA
or a multiply 1 per cycle, an add or min 1 per cycle on other pipes, integer add, and, ternlog
about 2 per cycle and a shift 1 per cycle beside the FMAs (nearly free); a division 5.8 cycles,
and it takes about 2.8 cycles from the FMA pipes; a compare with a blend about 1.1 cycles from
them; ``vscalefps`` one per 1.9 cycles and on the FMA pipes (so it would not pay for the scaling
by ``2^n``). Nine FMA-pipe operations, four adds, a division and four integer or logic operations
-- the mix of the tanh -- take 13.1 cycles per vector; the tanh alone, looped over a table in
L1, takes 15.9 cycles per 16 values (0.265 ns per value; with ``1 - s^2`` 0.312 ns), and four
tanh interleaved per iteration the same: it is bound by the pipes, not by latency. (After the
change below that loop reads 0.258-0.271 ns, the same within its noise.) The scaling
by ``2^n`` is now an integer add of ``n`` times the exponent's unit to the bits of ``num`` (one
multiply less on the FMA pipes; exact, so every float32 input of ``[0, 20]`` gives the same bits
for tanh and sigmoid, and the kernels' loss and gradient are bit-identical): the C call alone 0.97x
(2D) and 0.97x (3D) of its previous time, best of 40, interleaved, in three runs. Not taken: the
derivative sign as ``c`` with the sign of ``dx - dy`` where they differ (one compare and one blend
less, bit-identical) gained nothing measurable; unrolling the row loops by two and GCC's
``-fschedule-insns`` gained 0-3 %. In 3D six tanh per voxel at their isolated rate take 3.6 ms
of the C call's 4.3-4.6 ms at 128^3, against a copy floor of 1.06-1.17 ms.
"""

import math

from dsl_explore.registry import SIGN_SURROGATES

PADE_EXP2 = (math.log(2) / 2, math.log(2) ** 2 / 10, math.log(2) ** 3 / 120)
"""``(c1, c2, c3)`` of the Pade [3/3] form ``2^f = (E + O) / (E - O)``, ``E = 1 + c2 f^2``,
``O = f (c1 + c3 f^2)``, used by the C tanh (``PADE_C*``) and the Triton one."""

TANH_F32_MAX_ABS_ERR = 1.2e-7
"""Bound on ``|tanh_f(t) - tanh(t)|`` of the C float32 tanh (``tanh_kd`` with ``k = 1``) over every
float32 input: 1.17e-7 measured exhaustively by ``scripts/tanh_error.py`` (see the module
docstring; the exp2-polynomial form before it: 1.03e-7). The Triton kernels take the same
steps from ``t = k d``, rounded once more."""

TANH_F32_SATURATES = 9.0110
"""From this ``|t|`` on the C float32 tanh is +-1 and its ``1 - s^2`` is 0 exactly (9.010914
measured by ``scripts/tanh_error.py``'s enumeration; the correctly rounded tanh is 1 from 9.0109
on as well). Sigmoid, ``tanh(t / 2)``: from ``2 * TANH_F32_SATURATES``."""

TANH_F32_MAX_D_ERR = 1.9e-7
"""Bound on ``|(1 - tanh_f(t)^2) - tanh'(t)|`` over every float32 input (1.41e-7 measured, same
script, as for the form before it)."""

ERR_UNKNOWN_SURROGATE = 2
"""Return code of the C entry points for a surrogate id they have no code for."""


def surrogate_defines() -> str:
    """``#define S_<NAME> <id>`` for every surrogate of the registry, in id order.

    Examples
    --------
    >>> print(surrogate_defines().splitlines()[0])
    #define S_TANH 0
    """
    entries = sorted(SIGN_SURROGATES.values(), key=lambda e: e.id)
    return "\n".join(f"#define S_{e.name.upper()} {e.id}" for e in entries)


_TEMPLATE = r"""
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef int64_t i64;

/* surrogate ids, generated from dsl_explore.registry */
@SURROGATE_DEFINES@
#define ERR_UNKNOWN_SURROGATE @ERR_UNKNOWN_SURROGATE@

#define INL static inline __attribute__((always_inline))
#define TAIL 16 /* floats in a 64-byte vector; the tail is padded to this */

/* ---------------- float32 math, branch-free, vectorisable ---------------- */

INL float clampf(float v, float lo, float hi) {
    /* comparisons keep NaN (both are false for NaN) */
    v = v > hi ? hi : v;
    v = v < lo ? lo : v;
    return v;
}

INL float exp_core(float x) {
    /* Cephes-style expf without the range clamp (callers keep x in [-87, 88]); NaN propagates.
       n = round(x / ln 2) by the 1.5 * 2^23 trick (vectorises; floorf may be a libm call). */
    float fx = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    float z = r * r;
    /* degree-5 minimax polynomial for e^r on [-ln2/2, ln2/2] (relative error 1.1e-7) */
    float p = ((8.3125e-3f * r + 4.189007e-2f) * r + 1.6667114e-1f) * r + 4.9999232e-1f;
    p = p * z + r + 1.0f;
    union { int32_t i; float f; } u;
    u.i = ((int32_t)fx + 127) << 23;
    return p * u.f;
}

INL float exp_f(float x) { return exp_core(clampf(x, -87.0f, 88.0f)); }

/* Per-call constants of the float32 surrogates, computed once (see kconst_f): k, and for tanh and
   sigmoid (tanh(k d / 2)) the scale K2 = -2 log2(e) k' of the exponent and the clamp 9.5 / k'
   of |d| (k' = k or k / 2). The clamps are not compile-time constants on purpose: GCC would
   otherwise fold tanh(9.5) and split every vector loop into masked halves (~8 more vector
   operations per tanh). */
typedef struct { float k, K2, lim, K2h, limh; } kconst_f;

static kconst_f kconst_f_make(double k) {
    kconst_f c;
    double K2 = -2.8853900817779268 * k, K2h = 0.5 * K2;
    c.k = (float)k;
    c.K2 = (float)(K2 < -FLT_MAX ? -FLT_MAX : K2);
    c.K2h = (float)(K2h < -FLT_MAX ? -FLT_MAX : K2h);
    c.lim = (float)(9.5 / k);
    c.limh = (float)(19.0 / k);
    return c;
}

/* Pade [3/3] coefficients of 2^f = exp(f ln2) = (E + O) / (E - O) on |f| <= 1/2, E = 1 + c2 f^2,
   O = f (c1 + c3 f^2): c1 = ln2 / 2, c2 = ln2^2 / 10, c3 = ln2^3 / 120 (relative error < 7e-9,
   below float32 rounding) */
@PADE_DEFINES@

INL float tanh_kd(float d, float K2, float lim) {
    /* tanh(k d) = sign(d) (1 - 2q), q = e / (1 + e), e = exp(-2 k |d|) = 2^y, y = K2 |d| in
       [-27.5, 0] (|d| is clamped to lim = 9.5 / k, where q < 2^-25: 1 - 2q rounds to 1; the
       product k d is never rounded: y comes from one FMA):
       y = n + f with n = round(y) (the 1.5 * 2^23 trick: big = y + 1.5 * 2^23 holds n in its low
       mantissa bits: shifted up by 23 they are n times the exponent's unit, so num 2^n is an
       integer add to num's bits -- exact, num is near 1 and n in [-28, 0] -- and no float-to-int
       conversion), f = y - n in [-1/2, 1/2], 2^f = num / den by the Pade form above, so that
       q = 2^n num / (den + 2^n num) costs one division for both (a polynomial for 2^f took 6
       FMAs and the same division; these loops are bound by the FMA pipes, see the module
       docstring). +-1 and s' = 1 - s^2 = 0 exactly from k |d| = 9.0109 on (the correctly
       rounded tanh is 1 from 9.0109 too). NaN stays NaN (the comparison keeps it; the integer
       add may turn num 2^n into a number, but den is NaN, so q is). With k = 1 this is the
       tanh whose error over every float32 input is TANH_F32_MAX_ABS_ERR (scripts/tanh_error.py,
       see the module docstring). */
    float a = fabsf(d);
    a = lim < a ? lim : a;
    float big = a * K2 + 12582912.0f;
    float n = big - 12582912.0f;
    float f = a * K2 - n;
    float f2 = f * f;
    float E = f2 * PADE_C2 + 1.0f;
    float O = f * (f2 * PADE_C3 + PADE_C1);
    union { float f; uint32_t u; } bb, mm;
    bb.f = big;
    mm.f = E + O;
    mm.u += bb.u << 23; /* m = num 2^n: the low bits of big are n + 2^22 */
    float m = mm.f;
    float q = m / ((E - O) + m);
    float s = 1.0f - 2.0f * q;
    return copysignf(s, d);
}

INL float atan_f(float t) {
    /* Cephes atanf, with the two range reductions folded into one division */
    float a = fabsf(t);
    int big = a > 2.414213562373095f;
    int mid = a > 0.4142135623730950f;
    float num = big ? -1.0f : (mid ? a - 1.0f : a);
    float den = big ? a : (mid ? a + 1.0f : 1.0f);
    float xr = num / den;
    float y0 = big ? 1.5707963267948966f : (mid ? 0.7853981633974483f : 0.0f);
    float z = xr * xr;
    float r = y0 + ((((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z
                     - 3.33329491539e-1f) * z * xr + xr);
    return t < 0.0f ? -r : r;
}

INL float erf_f(float t) {
    float a = fabsf(t);
    float z = t * t;
    /* |t| < 1: Cephes erff, t * P(t^2) */
    float p = (((((7.853861353153693e-5f * z - 8.010193625184903e-4f) * z
                  + 5.188327685732524e-3f) * z - 2.685381193529856e-2f) * z
                + 1.128358514861418e-1f) * z - 3.761262582423300e-1f) * z + 1.128379165726710f;
    p = p * t;
    /* |t| >= 1: 1 - erfc, erfc from Numerical Recipes (fractional error < 1.2e-7) */
    float ac = clampf(a, 0.0f, 10.0f);
    float u = 1.0f / (1.0f + 0.5f * ac);
    float c = 0.17087277f;
    c = c * u - 0.82215223f;
    c = c * u + 1.48851587f;
    c = c * u - 1.13520398f;
    c = c * u + 0.27886807f;
    c = c * u - 0.18628806f;
    c = c * u + 0.09678418f;
    c = c * u + 0.37409196f;
    c = c * u + 1.00002368f;
    c = c * u - 1.26551223f;
    float q = 1.0f - u * exp_f(-ac * ac + c);
    q = t < 0.0f ? -q : q;
    return a < 1.0f ? p : q;
}

/* s(k d) for surrogate S (a compile-time constant after inlining), d a difference */
INL float surr_f(float d, kconst_f c, int S) {
    float t = c.k * d;
    if (S == S_TANH) return tanh_kd(d, c.K2, c.lim);
    if (S == S_SOFTSIGN) return fabsf(t) > FLT_MAX ? copysignf(1.0f, t) : t / (1.0f + fabsf(t));
    if (S == S_ARCTAN) return atan_f(t) * 0.63661977236758134f;
    if (S == S_ERF) return erf_f(t);
    if (S == S_SIGMOID) return tanh_kd(d, c.K2h, c.limh); /* 2 sigma(t) - 1 = tanh(t / 2) */
    return NAN; /* unreachable: callers take S from pair_*_select or surrogate_f32's switch */
}

/* s'(k d), given s = s(k d) */
INL float dsurr_f(float d, float s, kconst_f c, int S) {
    float t = c.k * d;
    if (S == S_TANH) return 1.0f - s * s;
    if (S == S_SOFTSIGN) { float den = 1.0f + fabsf(t); return 1.0f / (den * den); }
    if (S == S_ARCTAN) return 0.63661977236758134f / (1.0f + t * t);
    /* t^2 >= 100: erf' < 4e-44, 0 in float32 (exp_f's clamp would leave 1.8e-38, which k
       times the loss factor can lift to a visible gradient where s has saturated) */
    if (S == S_ERF) {
        float z = t * t;
        return z >= 100.0f ? 0.0f : 1.1283791670955126f * exp_f(-z);
    }
    if (S == S_SIGMOID) return 0.5f * (1.0f - s * s); /* 2 sigma (1 - sigma), sigma = (1 + s)/2 */
    return NAN;
}

/* ---------------- float64 math: libm ---------------- */

typedef struct { double k; } kconst_d;
static kconst_d kconst_d_make(double k) { kconst_d c; c.k = k; return c; }

INL double surr_d(double d, kconst_d c, int S) {
    double t = c.k * d;
    if (S == S_TANH) return tanh(t);
    if (S == S_SOFTSIGN) return fabs(t) > DBL_MAX ? copysign(1.0, t) : t / (1.0 + fabs(t));
    if (S == S_ARCTAN) return atan(t) * 0.63661977236758134;
    if (S == S_ERF) return erf(t);
    if (S == S_SIGMOID) return 2.0 / (1.0 + exp(-t)) - 1.0;
    return NAN;
}

INL double dsurr_d(double d, double s, kconst_d c, int S) {
    double t = c.k * d;
    if (S == S_TANH) return 1.0 - s * s;
    if (S == S_SOFTSIGN) { double den = 1.0 + fabs(t); return 1.0 / (den * den); }
    if (S == S_ARCTAN) return 0.63661977236758134 / (1.0 + t * t);
    if (S == S_ERF) return 1.1283791670955126 * exp(-t * t);
    if (S == S_SIGMOID) { double sg = 1.0 / (1.0 + exp(-t)); return 2.0 * sg * (1.0 - sg); }
    return NAN;
}

/* c * sgn(dx - dy) as a select of three loop invariants (c, -c, c * 0): the derivative
   s'(k dx) * SGN_C equals (c * s'(k dx)) * sgn(dx - dy) bit for bit (a product by +-1 is exact,
   by 0 gives the zero of the same sign or NaN for a NaN s'), for two compares, two selects and
   one product instead of two compares, two conversions, a subtraction and two products. s is
   increasing and k > 0: sign(s(k dx) - s(k dy)) = sign(dx - dy), exact in floating point (no
   flips where two saturated values of s are an ulp apart); NaN compares false: the zero case */
#define SGN_C(dx, dy, c, nc, zc) ((dx) > (dy) ? (c) : ((dx) < (dy) ? (nc) : (zc)))

/*
 * One line of differences: d[j] = xb[j] - xa[j] (and for y), j < n.
 * Returns sum_j |s(k dx) - s(k dy)|;
 * if out != NULL, out[j] = c * s'(k dx) * sgn(s(k dx) - s(k dy)).
 * One non-inlined function per (type, surrogate): small enough for the vectoriser.
 */
#define DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S, SNAME)                                   \
INL T body_##SUF##_##SNAME(const T *xa, const T *xb, const T *ya, const T *yb, i64 n,          \
                           i64 nvalid, int masked, KT kc, T c, T *out) {                      \
    /* n is a multiple of TAIL; one partial sum per lane, added as a tree at the end (an      \
       in-order "omp simd reduction" cost 16 dependent scalar adds per call). masked (a       \
       constant after inlining): lanes j >= nvalid add nothing and write 0 (a select, so a    \
       NaN read there does not leak) */                                                       \
    T accv[TAIL];                                                                             \
    for (int l = 0; l < TAIL; l++) accv[l] = 0;                                               \
    T nc = -c, zc = c * (T)0;                                                                 \
    for (i64 j0 = 0; j0 < n; j0 += TAIL) {                                                    \
        if (out) {                                                                            \
            _Pragma("omp simd")                                                               \
            for (int l = 0; l < TAIL; l++) {                                                  \
                i64 j = j0 + l;                                                               \
                T dx = xb[j] - xa[j];                                                         \
                T sx = SURR(dx, kc, S);                                                       \
                T dy = yb[j] - ya[j];                                                         \
                T sy = SURR(dy, kc, S);                                                       \
                T v = ABS(sx - sy);                                                           \
                if (masked) v = j < nvalid ? v : (T)0;                                        \
                accv[l] += v;                                                                 \
                T o = DSURR(dx, sx, kc, S) * SGN_C(dx, dy, c, nc, zc);                        \
                if (masked) o = j < nvalid ? o : (T)0;                                        \
                out[j] = o;                                                                   \
            }                                                                                 \
        } else {                                                                              \
            _Pragma("omp simd")                                                               \
            for (int l = 0; l < TAIL; l++) {                                                  \
                i64 j = j0 + l;                                                               \
                T sx = SURR(xb[j] - xa[j], kc, S);                                            \
                T sy = SURR(yb[j] - ya[j], kc, S);                                            \
                T v = ABS(sx - sy);                                                           \
                if (masked) v = j < nvalid ? v : (T)0;                                        \
                accv[l] += v;                                                                 \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    for (int w = TAIL / 2; w > 0; w >>= 1) {                                                  \
        _Pragma("omp simd")                                                                   \
        for (int l = 0; l < w; l++) accv[l] += accv[l + w];                                   \
    }                                                                                         \
    return accv[0];                                                                           \
}                                                                                             \
static double pair_##SUF##_##SNAME(const T *xa, const T *xb, const T *ya, const T *yb, i64 n,  \
                                   i64 nread, KT kc, T c, T *out) {                           \
    /* n differences; xa..yb may be read and out written up to nread >= n elements. Whole     \
       vectors, then the tail: read in place with the lanes >= n masked when a whole vector   \
       fits in nread (the last difference of a row, N2 a multiple of TAIL), else copied into  \
       one more padded vector (zeros add nothing): a scalar epilogue would cost as much as    \
       the vectors for rows of a few hundred */                                               \
    i64 nv = n & ~(i64)(TAIL - 1);                                                            \
    double acc = (double)body_##SUF##_##SNAME(xa, xb, ya, yb, nv, nv, 0, kc, c, out);         \
    if (nv < n && nv + TAIL <= nread) {                                                       \
        acc += (double)body_##SUF##_##SNAME(xa + nv, xb + nv, ya + nv, yb + nv, TAIL, n - nv, \
                                            1, kc, c, out ? out + nv : NULL);                 \
    } else if (nv < n) {                                                                      \
        T b0[TAIL] = {0}, b1[TAIL] = {0}, b2[TAIL] = {0}, b3[TAIL] = {0}, bo[TAIL];           \
        i64 m = n - nv;                                                                       \
        for (i64 j = 0; j < m; j++) {                                                         \
            b0[j] = xa[nv + j]; b1[j] = xb[nv + j]; b2[j] = ya[nv + j]; b3[j] = yb[nv + j];   \
        }                                                                                     \
        acc += (double)body_##SUF##_##SNAME(b0, b1, b2, b3, TAIL, TAIL, 0, kc, c,             \
                                            out ? bo : NULL);                                 \
        if (out)                                                                              \
            for (i64 j = 0; j < m; j++) out[nv + j] = bo[j];                                  \
    }                                                                                         \
    return acc;                                                                               \
}

/*
 * The gradient pass of one row along kernel axes 1 and 0, fused with their loss terms and with
 * the gather: element j of the row (x0 = x + j of row r) takes its axis-1 difference
 * x1[j] - xr[j] (x1 = the next row) and its axis-0 one x0[j] - xr[j] (x0 = the next plane), and
 * writes
 *   gr[j] = ((o2[j] - o2[j + 1]) + (rb1[j] - D1[j])) + (pl0[j] - D0[j])
 * where D = c * s'(k d) * sgn(d_x - d_y) of its own differences (0 where h1 / h0 says the row has
 * none), rb1[j] / pl0[j] hold D1 of the previous row / D0 of the same row of the previous plane
 * (they are replaced by this row's D1 / D0 in the same pass) and o2 the axis-2 derivatives (o2[j]
 * of the difference ending at j, o2[j + 1] of the one starting at j). So x, y are read and the
 * gradient written once per element, in one loop; only the axis-2 derivatives go through a
 * row-sized buffer first (a lane shift). Returns the per-lane sums of |s(k dx) - s(k dy)| as
 * *s1, *s0 (tree sums of full vectors, the padded tail summed separately, as pair_* does).
 */
#define DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S, SNAME)                                  \
INL void crossb_##SUF##_##SNAME(const T *xr, const T *x1, const T *x0, const T *yr,          \
                                const T *y1, const T *y0, i64 n, int h1, int h0, KT kc,      \
                                T c1, T c0, T *rb1, T *pl0, const T *o2, T *gr, T *s1,       \
                                T *s0) {                                                      \
    /* n is a multiple of TAIL; h1, h0 are constants after inlining (no dead tanh) */         \
    T acc1[TAIL], acc0[TAIL];                                                                 \
    for (int l = 0; l < TAIL; l++) { acc1[l] = 0; acc0[l] = 0; }                             \
    T nc1 = -c1, zc1 = c1 * (T)0, nc0 = -c0, zc0 = c0 * (T)0;                                 \
    for (i64 j0 = 0; j0 < n; j0 += TAIL) {                                                    \
        _Pragma("omp simd")                                                                   \
        for (int l = 0; l < TAIL; l++) {                                                      \
            i64 j = j0 + l;                                                                   \
            T d1 = 0, d0 = 0;                                                                 \
            if (h1) {                                                                         \
                T dx = x1[j] - xr[j];                                                         \
                T sx = SURR(dx, kc, S);                                                       \
                T dy = y1[j] - yr[j];                                                         \
                T sy = SURR(dy, kc, S);                                                       \
                acc1[l] += ABS(sx - sy);                                                      \
                d1 = DSURR(dx, sx, kc, S) * SGN_C(dx, dy, c1, nc1, zc1);                \
            }                                                                                 \
            if (h0) {                                                                         \
                T dx = x0[j] - xr[j];                                                         \
                T sx = SURR(dx, kc, S);                                                       \
                T dy = y0[j] - yr[j];                                                         \
                T sy = SURR(dy, kc, S);                                                       \
                acc0[l] += ABS(sx - sy);                                                      \
                d0 = DSURR(dx, sx, kc, S) * SGN_C(dx, dy, c0, nc0, zc0);                \
            }                                                                                 \
            T p1 = rb1[j], p0 = pl0[j];                                                       \
            rb1[j] = d1;                                                                      \
            pl0[j] = d0;                                                                      \
            gr[j] = ((o2[j] - o2[j + 1]) + (p1 - d1)) + (p0 - d0);                            \
        }                                                                                     \
    }                                                                                         \
    for (int w = TAIL / 2; w > 0; w >>= 1) {                                                  \
        _Pragma("omp simd")                                                                   \
        for (int l = 0; l < w; l++) { acc1[l] += acc1[l + w]; acc0[l] += acc0[l + w]; }      \
    }                                                                                         \
    *s1 = acc1[0];                                                                            \
    *s0 = acc0[0];                                                                            \
}                                                                                             \
INL void crossh_##SUF##_##SNAME(const T *xr, const T *x1, const T *x0, const T *yr,          \
                                const T *y1, const T *y0, i64 n, int h1, int h0, KT kc,      \
                                T c1, T c0, T *rb1, T *pl0, const T *o2, T *gr, T *s1,       \
                                T *s0) {                                                      \
    /* one inlined copy per (h1, h0) */                                                       \
    if (h1 && h0)                                                                             \
        crossb_##SUF##_##SNAME(xr, x1, x0, yr, y1, y0, n, 1, 1, kc, c1, c0, rb1, pl0, o2, gr, \
                               s1, s0);                                                       \
    else if (h1)                                                                              \
        crossb_##SUF##_##SNAME(xr, x1, x0, yr, y1, y0, n, 1, 0, kc, c1, c0, rb1, pl0, o2, gr, \
                               s1, s0);                                                       \
    else if (h0)                                                                              \
        crossb_##SUF##_##SNAME(xr, x1, x0, yr, y1, y0, n, 0, 1, kc, c1, c0, rb1, pl0, o2, gr, \
                               s1, s0);                                                       \
    else                                                                                      \
        crossb_##SUF##_##SNAME(xr, x1, x0, yr, y1, y0, n, 0, 0, kc, c1, c0, rb1, pl0, o2, gr, \
                               s1, s0);                                                       \
}                                                                                             \
static void cross_##SUF##_##SNAME(const T *xr, const T *x1, const T *x0, const T *yr,        \
                                  const T *y1, const T *y0, i64 n, int h1, int h0, KT kc,    \
                                  T c1, T c0, T *rb1, T *pl0, const T *o2, T *gr, double *s1, \
                                  double *s0) {                                               \
    /* whole vectors in place, then the tail (n % TAIL elements) copied into padded vectors   \
       (zeros: no loss, zero derivatives) */                                                  \
    i64 nv = n & ~(i64)(TAIL - 1);                                                            \
    T a1 = 0, a0 = 0;                                                                         \
    crossh_##SUF##_##SNAME(xr, x1, x0, yr, y1, y0, nv, h1, h0, kc, c1, c0, rb1, pl0, o2, gr,  \
                           &a1, &a0);                                                         \
    *s1 = (double)a1;                                                                         \
    *s0 = (double)a0;                                                                         \
    if (nv < n) {                                                                             \
        T b[9][TAIL + 1];                                                                     \
        i64 m = n - nv;                                                                       \
        memset(b, 0, sizeof b);                                                               \
        for (i64 j = 0; j < m; j++) {                                                         \
            b[0][j] = xr[nv + j]; b[1][j] = x1[nv + j]; b[2][j] = x0[nv + j];                 \
            b[3][j] = yr[nv + j]; b[4][j] = y1[nv + j]; b[5][j] = y0[nv + j];                 \
            b[6][j] = rb1[nv + j]; b[7][j] = pl0[nv + j];                                     \
        }                                                                                     \
        for (i64 j = 0; j <= m; j++) b[8][j] = o2[nv + j];                                    \
        T bg[TAIL];                                                                           \
        crossh_##SUF##_##SNAME(b[0], b[1], b[2], b[3], b[4], b[5], TAIL, h1, h0, kc, c1, c0,  \
                               b[6], b[7], b[8], bg, &a1, &a0);                               \
        for (i64 j = 0; j < m; j++) {                                                         \
            rb1[nv + j] = b[6][j]; pl0[nv + j] = b[7][j]; gr[nv + j] = bg[j];                 \
        }                                                                                     \
        *s1 += (double)a1;                                                                    \
        *s0 += (double)a0;                                                                    \
    }                                                                                         \
}

/* KIND_SUF_select(S): the KIND_SUF_<surrogate> function of surrogate id S (NULL if unknown). */
#define DEFINE_SELECT(KIND, SUF)                                                              \
static KIND##_##SUF##_fn KIND##_##SUF##_select(int S) {                                       \
    switch (S) {                                                                              \
    case S_TANH: return KIND##_##SUF##_tanh;                                                  \
    case S_SOFTSIGN: return KIND##_##SUF##_softsign;                                          \
    case S_ARCTAN: return KIND##_##SUF##_arctan;                                              \
    case S_ERF: return KIND##_##SUF##_erf;                                                    \
    case S_SIGMOID: return KIND##_##SUF##_sigmoid;                                            \
    default: return NULL;                                                                     \
    }                                                                                         \
}

#define DEFINE_PAIRS(T, SUF, KT, SURR, DSURR, ABS)                                            \
DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S_TANH, tanh)                                       \
DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S_TANH, tanh)                                      \
DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S_SOFTSIGN, softsign)                               \
DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S_SOFTSIGN, softsign)                              \
DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S_ARCTAN, arctan)                                   \
DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S_ARCTAN, arctan)                                  \
DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S_ERF, erf)                                         \
DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S_ERF, erf)                                        \
DEFINE_PAIR(T, SUF, KT, SURR, DSURR, ABS, S_SIGMOID, sigmoid)                                 \
DEFINE_CROSS(T, SUF, KT, SURR, DSURR, ABS, S_SIGMOID, sigmoid)                                \
typedef double (*pair_##SUF##_fn)(const T *, const T *, const T *, const T *, i64, i64, KT, T,   \
                                  T *);                                                      \
typedef void (*cross_##SUF##_fn)(const T *, const T *, const T *, const T *, const T *,       \
                                 const T *, i64, int, int, KT, T, T, T *, T *, const T *,   \
                                 T *, double *, double *);                                  \
DEFINE_SELECT(cross, SUF)                                                                     \
DEFINE_SELECT(pair, SUF)

DEFINE_PAIRS(float, f32, kconst_f, surr_f, dsurr_f, fabsf)
DEFINE_PAIRS(double, f64, kconst_d, surr_d, dsurr_d, fabs)

/* the upstream gradient of sample b: one value for all samples (go_n == 1), one per sample, or
   1 without go */
INL double upstream_at(const double *go, i64 go_n, i64 b) {
    return go ? go[go_n == 1 ? 0 : b] : 1.0;
}

/*
 * Rows [r0, r1) of the fused loss (+ gradient).
 *   part: per-row sums of |s(k Dx) - s(k Dy)| for kernel axes 0, 1, 2 (R x 3 doubles), or NULL
 *   g:    gradient (contiguous like x), or NULL
 *   f3:   per-axis gradient factors (3 doubles, w_a * scale * k / 2), or NULL without g
 *   go:   the upstream gradient, go_n = 1 (one for all samples) or B values, or NULL (1);
 *         the factor of sample b and axis a is (T)(f3[a] * go[b]), rounded once
 * Each difference is evaluated once. Without g, one pair_* pass per axis. With g, two passes per
 * row: the axis-2 differences (their derivatives into a row buffer), then cross_*, which takes
 * the axis-1 and axis-0 differences and writes the row's gradient (the derivatives of the previous
 * row and of the previous plane live in a row and a plane buffer, updated in place). At the start
 * of a range those buffers are filled by running cross_* on the rows before it (the previous
 * plane, axis 0 only, and the previous row), whose gradient goes to a scratch row: the same code
 * on the same values, so the result does not depend on how the rows were split.
 */
#define DEFINE_ROWS(T, SUF, KT, KMAKE)                                                        \
static int dsl_rows_##SUF(const T *x, const T *y, T *g, double *part, const double *f3,       \
                   const double *go, i64 go_n, i64 r0, i64 r1, i64 R, i64 N0, i64 N1,       \
                   i64 N2, int ndim, double kd, int S) {                                     \
    pair_##SUF##_fn pair = pair_##SUF##_select(S);                                            \
    cross_##SUF##_fn cross = cross_##SUF##_select(S);                                         \
    if (!pair || !cross) return ERR_UNKNOWN_SURROGATE;                                        \
    KT k = KMAKE(kd);                                                                         \
    int want_g = g != NULL;                                                                   \
    int has1 = ndim >= 2 && N1 >= 2, has0 = ndim >= 3 && N0 >= 2;                             \
    i64 plane_n = N1 * N2;                                                                    \
    T *buf = NULL, *o2 = NULL, *rb1 = NULL, *plane = NULL, *scratch = NULL;                   \
    if (want_g) {                                                                             \
        size_t n = (size_t)(3 * N2 + 2 + (has0 ? plane_n : N2));                              \
        buf = (T *)calloc(n, sizeof(T));                                                      \
        if (!buf) return 1;                                                                   \
        o2 = buf;                  /* N2 + 1: o2[0] = o2[N2] = 0, differences at 1..N2-1 */   \
        scratch = o2 + N2 + 2;     /* N2: the gradient of the rows before the range */        \
        rb1 = scratch + N2;        /* N2: D1 of the previous row */                           \
        plane = rb1 + N2;          /* D0 of the previous plane, by row (N2 zeros if no axis 0) */ \
        /* rows before the range: their axis-0 (and, for the last one, axis-1) derivatives */ \
        i64 back = has0 ? N1 : 1;                                                             \
        for (i64 r = r0 - back < 0 ? 0 : r0 - back; r < r0 && (has0 || has1); r++) {          \
            i64 i1 = r % N1, q = r / N1;                                                      \
            i64 i0 = q % N0, b = q / N0;                                                      \
            const T *xr = x + r * N2, *yr = y + r * N2;                                       \
            double gb = upstream_at(go, go_n, b);                                             \
            int h1 = r == r0 - 1 && has1 && i1 < N1 - 1, h0 = has0 && i0 < N0 - 1;            \
            double t1, t0;                                                                    \
            cross(xr, h1 ? xr + N2 : xr, h0 ? xr + plane_n : xr, yr, h1 ? yr + N2 : yr,       \
                  h0 ? yr + plane_n : yr, N2, h1, h0, k, (T)(f3[1] * gb), (T)(f3[0] * gb),    \
                  rb1,                                                                        \
                  has0 ? plane + i1 * N2 : plane, o2, scratch, &t1, &t0);                     \
        }                                                                                     \
    }                                                                                         \
    for (i64 r = r0; r < r1; r++) {                                                           \
        i64 i1 = r % N1, q = r / N1;                                                          \
        i64 i0 = q % N0, b = q / N0;                                                          \
        const T *xr = x + r * N2, *yr = y + r * N2;                                           \
        T c0 = 0, c1 = 0, c2 = 0;                                                             \
        if (f3) {                                                                             \
            double gb = upstream_at(go, go_n, b);                                             \
            c0 = (T)(f3[0] * gb);                                                             \
            c1 = (T)(f3[1] * gb);                                                             \
            c2 = (T)(f3[2] * gb);                                                             \
        }                                                                                     \
        double s0 = 0, s1 = 0, s2 = 0;                                                        \
        int h1 = has1 && i1 < N1 - 1, h0 = has0 && i0 < N0 - 1;                               \
        /* kernel axis 2 (the contiguous one) */                                              \
        /* the row's last difference would read the next row's first element (masked out;   \
           not past the array's end): o2 + 1 has room for N2 values, o2[N2] is rewritten 0 */  \
        if (N2 >= 2) s2 = pair(xr, xr + 1, yr, yr + 1, N2 - 1, r < R - 1 ? N2 : N2 - 1, k, c2,  \
                               want_g ? o2 + 1 : NULL);                                        \
        if (want_g) {                                                                         \
            /* kernel axes 1 and 0 and the row's gradient, one pass */                        \
            cross(xr, h1 ? xr + N2 : xr, h0 ? xr + plane_n : xr, yr, h1 ? yr + N2 : yr,       \
                  h0 ? yr + plane_n : yr, N2, h1, h0, k, c1, c0, rb1,                         \
                  has0 ? plane + i1 * N2 : plane, o2, g + r * N2, &s1, &s0);                  \
        } else {                                                                              \
            if (h1) s1 = pair(xr, xr + N2, yr, yr + N2, N2, N2, k, c1, NULL);                 \
            if (h0) s0 = pair(xr, xr + plane_n, yr, yr + plane_n, N2, N2, k, c0, NULL);       \
        }                                                                                     \
        if (part) {                                                                           \
            part[3 * r + 0] = s0;                                                             \
            part[3 * r + 1] = s1;                                                             \
            part[3 * r + 2] = s2;                                                             \
        }                                                                                     \
    }                                                                                         \
    free(buf);                                                                                \
    return 0;                                                                                 \
}

DEFINE_ROWS(float, f32, kconst_f, kconst_f_make)
DEFINE_ROWS(double, f64, kconst_d, kconst_d_make)

/*
 * The exported entry points: rows [0, R) split into contiguous ranges, one per thread. Built with
 * -fopenmp they run on the process' OpenMP pool, which is torch's own (the loader resolves
 * libgomp.so.1 to the copy torch already loaded), so they share torch's threads instead of
 * competing with them. The split does not change any result.
 */
#ifdef _OPENMP
#define PARALLEL_ROWS(CALL)                                                                   \
    int err = 0;                                                                              \
    if (nthreads <= 1) return CALL(0, R);                                                     \
    _Pragma("omp parallel num_threads(nthreads) reduction(|:err)")                           \
    {                                                                                         \
        i64 nt = omp_get_num_threads(), id = omp_get_thread_num();                            \
        err |= CALL(R * id / nt, R * (id + 1) / nt);                                          \
    }                                                                                         \
    return err;
#else
#define PARALLEL_ROWS(CALL) (void)nthreads; return CALL(0, R);
#endif

#define DSL_CALL_f32(a, b) \
    dsl_rows_f32(x, y, g, part, f3, go, go_n, a, b, R, N0, N1, N2, ndim, k, S)
#define DSL_CALL_f64(a, b) \
    dsl_rows_f64(x, y, g, part, f3, go, go_n, a, b, R, N0, N1, N2, ndim, k, S)

int dsl_f32(const float *x, const float *y, float *g, double *part, const double *f3,
            const double *go, i64 go_n, i64 R, i64 N0, i64 N1, i64 N2, int ndim, double k,
            int S, int nthreads) {
    PARALLEL_ROWS(DSL_CALL_f32)
}

int dsl_f64(const double *x, const double *y, double *g, double *part, const double *f3,
            const double *go, i64 go_n, i64 R, i64 N0, i64 N1, i64 N2, int ndim, double k,
            int S, int nthreads) {
    PARALLEL_ROWS(DSL_CALL_f64)
}

int openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* ---------------- the exact count ---------------- */

#define MISMATCH(x0, x1, y0, y1) ((((x1) > (x0)) ^ ((y1) > (y0))) | (((x1) < (x0)) ^ ((y1) < (y0))))

#define DEFINE_COUNT(T, SUF)                                                                  \
INL i64 cline_##SUF(const T *xa, const T *xb, const T *ya, const T *yb, i64 n) {              \
    i64 acc = 0;                                                                              \
    _Pragma("omp simd reduction(+:acc)")                                                      \
    for (i64 j = 0; j < n; j++) acc += MISMATCH(xa[j], xb[j], ya[j], yb[j]);                  \
    return acc;                                                                               \
}                                                                                             \
static int count_rows_##SUF(const T *x, const T *y, i64 *part, i64 r0, i64 r1,                \
                     i64 N0, i64 N1, i64 N2, int ndim) {                                      \
    i64 plane_n = N1 * N2;                                                                    \
    for (i64 r = r0; r < r1; r++) {                                                           \
        i64 i1 = r % N1, q = r / N1;                                                          \
        i64 i0 = q % N0;                                                                      \
        const T *xr = x + r * N2, *yr = y + r * N2;                                           \
        i64 c0 = 0, c1 = 0, c2 = 0;                                                           \
        if (N2 >= 2) c2 = cline_##SUF(xr, xr + 1, yr, yr + 1, N2 - 1);                        \
        if (ndim >= 2 && i1 < N1 - 1) c1 = cline_##SUF(xr, xr + N2, yr, yr + N2, N2);          \
        if (ndim >= 3 && i0 < N0 - 1) c0 = cline_##SUF(xr, xr + plane_n, yr, yr + plane_n, N2); \
        part[3 * r + 0] = c0;                                                                 \
        part[3 * r + 1] = c1;                                                                 \
        part[3 * r + 2] = c2;                                                                 \
    }                                                                                         \
    return 0;                                                                                 \
}

DEFINE_COUNT(float, f32)
DEFINE_COUNT(double, f64)
DEFINE_COUNT(int64_t, i64)
DEFINE_COUNT(int32_t, i32)
DEFINE_COUNT(uint8_t, u8)

#define DEFINE_COUNT_ENTRY(T, SUF)                                                            \
int count_##SUF(const T *x, const T *y, i64 *part, i64 R, i64 N0, i64 N1, i64 N2, int ndim,  \
                int nthreads) {                                                               \
    PARALLEL_ROWS(COUNT_CALL_##SUF)                                                           \
}
#define COUNT_CALL_f32(a, b) count_rows_f32(x, y, part, a, b, N0, N1, N2, ndim)
#define COUNT_CALL_f64(a, b) count_rows_f64(x, y, part, a, b, N0, N1, N2, ndim)
#define COUNT_CALL_i64(a, b) count_rows_i64(x, y, part, a, b, N0, N1, N2, ndim)
#define COUNT_CALL_i32(a, b) count_rows_i32(x, y, part, a, b, N0, N1, N2, ndim)
#define COUNT_CALL_u8(a, b) count_rows_u8(x, y, part, a, b, N0, N1, N2, ndim)
DEFINE_COUNT_ENTRY(float, f32)
DEFINE_COUNT_ENTRY(double, f64)
DEFINE_COUNT_ENTRY(int64_t, i64)
DEFINE_COUNT_ENTRY(int32_t, i32)
DEFINE_COUNT_ENTRY(uint8_t, u8)

/* ---------------- self-check of the float32 math (tests compare with float64) ---------------- */

#define SURR_CASE(S) case S: s[j] = surr_f(t[j], c, S); ds[j] = dsurr_f(t[j], s[j], c, S); break;
int surrogate_f32(const float *t, float *s, float *ds, i64 n, int S) {
    /* k = 1: the kernels' surrogates with d = t */
    kconst_f c = kconst_f_make(1.0);
    if (!pair_f32_select(S)) return ERR_UNKNOWN_SURROGATE;
    for (i64 j = 0; j < n; j++) {
        switch (S) {
        SURR_CASE(S_TANH)
        SURR_CASE(S_SOFTSIGN)
        SURR_CASE(S_ARCTAN)
        SURR_CASE(S_ERF)
        SURR_CASE(S_SIGMOID)
        default: return ERR_UNKNOWN_SURROGATE;
        }
    }
    return 0;
}
"""

_PADE_DEFINES = "\n".join(f"#define PADE_C{i} {c!r}f" for i, c in enumerate(PADE_EXP2, 1))

C_SOURCE = _TEMPLATE.replace("@SURROGATE_DEFINES@", surrogate_defines()).replace(
    "@PADE_DEFINES@", _PADE_DEFINES).replace(
    "@ERR_UNKNOWN_SURROGATE@", str(ERR_UNKNOWN_SURROGATE)
)
"""The C source with the registry's surrogate ids and the Pade coefficients filled in."""
