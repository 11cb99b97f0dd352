"""Tests of :mod:`dsl_explore.critical` (critical points of grid fields)."""

from __future__ import annotations

import itertools

import gudhi
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl_explore.critical import (
    CriticalMismatch,
    CriticalType,
    count_critical_points,
    critical_points,
    mismatched_critical_points,
)

MIN, MAX, SAD, SAD2, DEG, REG = (
    CriticalType.MINIMUM,
    CriticalType.MAXIMUM,
    CriticalType.SADDLE,
    CriticalType.SADDLE2,
    CriticalType.DEGENERATE,
    CriticalType.REGULAR,
)
FAST = settings(max_examples=25, deadline=None)

shapes_1d = st.tuples(st.integers(1, 7))
shapes_2d = st.tuples(st.integers(1, 5), st.integers(1, 5))
shapes_3d = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
shapes_any = st.one_of(shapes_1d, shapes_2d, shapes_3d)


def _field(shape: tuple[int, ...], seed: int, ties: bool) -> np.ndarray:
    """Random data: small integers (many ties) or tie-free floats."""
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(0, 3, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


fields = st.builds(_field, shapes_any, st.integers(0, 2**32 - 1), st.booleans())


def _plant_degenerate(a: np.ndarray, corner: tuple[int, int, int]) -> np.ndarray:
    """Write into a 3D field (each axis >= 3) the link of a Kuhn-DEGENERATE vertex.

    The centre of the 3x3x3 block at ``corner`` gets 1; its lower link (value 0) is the 6-cycle
    around offset (1, 1, 1) plus the lone (-1, -1, -1), its upper link (value 2) the lone
    (1, 1, 1) plus the 6-cycle around (-1, -1, -1): two components each. The other 12 samples
    of the block keep their values.
    """
    a = a.copy()
    c = tuple(min(v, n - 3) + 1 for v, n in zip(corner, a.shape, strict=True))
    a[c] = 1.0
    for o in itertools.product((0, 1), repeat=3):
        if any(o):
            lo = 0.0 if sum(o) < 3 else 2.0
            a[tuple(p + v for p, v in zip(c, o, strict=True))] = lo
            a[tuple(p - v for p, v in zip(c, o, strict=True))] = 2.0 - lo
    return a


# 3D fields (2..6 per axis, ties or not) with a planted degenerate vertex where they fit one:
# random small fields rarely have one by themselves.
fields_3d_degenerate = st.builds(
    lambda shape, seed, ties, corner: (
        _plant_degenerate(_field(shape, seed, ties), corner)
        if min(shape) >= 3 else _field(shape, seed, ties)
    ),
    st.tuples(*(st.integers(2, 6),) * 3),
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.tuples(*(st.integers(0, 3),) * 3),
)
fields_23 = st.builds(
    _field, st.one_of(shapes_2d, shapes_3d), st.integers(0, 2**32 - 1), st.booleans()
)


# ------------------------------------------------------------------------------------------
# brute-force references: one Python loop per vertex, SoS by explicit (value, index) keys
# ------------------------------------------------------------------------------------------


def _key(a: np.ndarray, p: tuple[int, ...]) -> tuple[float, int]:
    return (a[p], int(np.ravel_multi_index(p, a.shape)))


def _inside(p: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return all(0 <= c < n for c, n in zip(p, shape, strict=True))


def brute_axis(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, dtype=np.int8)
    active = [d for d in range(a.ndim) if a.shape[d] > 1]
    for p in np.ndindex(a.shape):
        if not active:
            out[p] = MIN
            continue
        mins, maxs = [], []
        for d in active:
            nbrs = []
            for s in (-1, 1):
                q = list(p)
                q[d] += s
                if _inside(tuple(q), a.shape):
                    nbrs.append(_key(a, tuple(q)))
            mins.append(all(_key(a, p) < k for k in nbrs))
            maxs.append(all(_key(a, p) > k for k in nbrs))
        if all(mins):
            out[p] = MIN
        elif all(maxs):
            out[p] = MAX
        elif any(mins) and any(maxs):
            out[p] = SAD
    return out


def _is_offset(o: tuple[int, ...]) -> bool:
    nz = {v for v in o if v}
    return nz in ({1}, {-1})


def _components(nodes: list[tuple[int, ...]], is_offset=_is_offset) -> int:
    parent = {u: u for u in nodes}

    def find(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for u, w in itertools.combinations(nodes, 2):
        if is_offset(tuple(i - j for i, j in zip(u, w, strict=True))):
            parent[find(u)] = find(w)
    return len({find(u) for u in nodes})


def brute_pl(
    a: np.ndarray, triangulation: str = "kuhn"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and the multiplicities as 1-saddle (m1) and as 2-saddle (m2).

    ``"ttk"``: the Kuhn neighbourhood mirrored along the last axis of length > 1, written out
    as its own offset set and adjacency test (no flipping of the data).
    """
    k = a.ndim
    effective_axes = [d for d in range(k) if a.shape[d] > 1]
    mirror = effective_axes[-1] if triangulation == "ttk" and effective_axes else None

    def flip(o: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(-v if d == mirror else v for d, v in enumerate(o))

    def is_offset(o: tuple[int, ...]) -> bool:
        return _is_offset(flip(o))

    offsets = [o for o in itertools.product((-1, 0, 1), repeat=k) if is_offset(o)]
    effective = len(effective_axes)
    labels = np.zeros(a.shape, dtype=np.int8)
    m1 = np.zeros(a.shape, dtype=np.int8)
    m2 = np.zeros(a.shape, dtype=np.int8)
    for p in np.ndindex(a.shape):
        lo, up = [], []
        for o in offsets:
            q = tuple(c + v for c, v in zip(p, o, strict=True))
            if _inside(q, a.shape):
                (lo if _key(a, q) < _key(a, p) else up).append(o)
        c_lo, c_up = _components(lo, is_offset), _components(up, is_offset)
        if not lo:
            labels[p] = MIN
        elif not up:
            labels[p] = MAX
        elif effective == 3:
            if c_lo > 1 and c_up > 1:
                labels[p], m1[p], m2[p] = DEG, c_lo - 1, c_up - 1
            elif c_lo > 1:
                labels[p], m1[p] = SAD, c_lo - 1
            elif c_up > 1:
                labels[p], m2[p] = SAD2, c_up - 1
        elif c_lo > 1 or c_up > 1:
            labels[p], m1[p] = SAD, max(c_lo, c_up) - 1
    return labels, m1, m2


def _h0_intervals(a: np.ndarray) -> np.ndarray:
    cc = gudhi.CubicalComplex(vertices=a)
    cc.compute_persistence()
    return np.asarray(cc.persistence_intervals_in_dimension(0), dtype=np.float64).reshape(-1, 2)


def _h0_count(a: np.ndarray) -> int:
    return len(_h0_intervals(a))


def _sos_rank(a: np.ndarray) -> np.ndarray:
    """The position of each sample in the order of (value, flat index): a tie-free field."""
    flat = a.ravel()
    rank = np.empty(flat.size, dtype=np.int64)
    rank[np.lexsort((np.arange(flat.size), flat))] = np.arange(flat.size)
    return rank.reshape(a.shape)


def _morse_sum(a: np.ndarray, triangulation: str) -> int:
    """#min - sum m1 + sum m2 - #max (2D: + #max) over ``a`` padded with a frame above it."""
    padded = np.pad(a, 1, constant_values=a.max() + 1)
    labels, m1, m2 = critical_points(
        padded, method="pl", return_multiplicity="split", triangulation=triangulation
    )
    inside = (slice(1, -1),) * a.ndim
    labels, m1, m2 = labels[inside], m1[inside].astype(int), m2[inside].astype(int)
    sign = 1 if a.ndim == 2 else -1
    return int((labels == MIN).sum() - m1.sum() + m2.sum() + sign * (labels == MAX).sum())


# ------------------------------------------------------------------------------------------


class TestSmoke:
    @pytest.mark.parametrize("shape", [(6,), (4, 5), (3, 4, 5)])
    @pytest.mark.parametrize("method", ["axis", "pl"])
    def test_shape_dtype(self, shape, method):
        x = np.random.default_rng(0).standard_normal(shape)
        labels, mult = critical_points(x, method=method, return_multiplicity=True)
        assert labels.shape == shape and labels.dtype == np.int8
        assert mult.shape == shape and mult.dtype == np.int8
        assert set(np.unique(labels)) <= {int(c) for c in CriticalType}
        assert (mult[labels != SAD] == 0).all() or method == "pl"
        assert ((mult > 0) == np.isin(labels, [SAD, SAD2, DEG])).all()

    @pytest.mark.parametrize("shape", [(6,), (4, 5), (3, 4, 5)])
    @pytest.mark.parametrize("method", ["axis", "pl"])
    def test_split_multiplicity(self, shape, method):
        x = np.random.default_rng(0).integers(0, 3, size=shape)
        labels, mult = critical_points(x, method=method, return_multiplicity=True)
        l2, m1, m2 = critical_points(x, method=method, return_multiplicity="split")
        np.testing.assert_array_equal(l2, labels)
        assert m1.dtype == m2.dtype == np.int8
        np.testing.assert_array_equal(m1 + m2, mult)
        assert ((m1 > 0) == np.isin(labels, [SAD, DEG])).all()
        assert ((m2 > 0) == np.isin(labels, [SAD2, DEG])).all()
        t = critical_points(torch.from_numpy(x), method=method, return_multiplicity="split")
        assert all(isinstance(o, torch.Tensor) for o in t)
        np.testing.assert_array_equal(t[1].numpy(), m1)
        np.testing.assert_array_equal(t[2].numpy(), m2)

    def test_per_axis_shape(self):
        x = np.random.default_rng(1).standard_normal((2, 4, 5))
        pa = critical_points(x, dims=(2, 1), per_axis=True)
        assert pa.shape == (2, 4, 5, 2) and pa.dtype == np.int8

    def test_count(self):
        x = np.random.default_rng(2).standard_normal((5, 6))
        counts = count_critical_points(x, method="pl")
        assert list(counts) == [c.name for c in CriticalType]
        assert sum(counts.values()) == x.size
        labels = critical_points(x, method="pl")
        assert counts["MINIMUM"] == int((labels == MIN).sum())

    def test_empty(self):
        assert critical_points(np.zeros((0, 3))).shape == (0, 3)
        assert critical_points(np.zeros((0, 3)), method="pl").shape == (0, 3)

    def test_cached_table(self):
        from dsl_explore.critical import _component_table

        assert _component_table(3) is _component_table(3)
        assert _component_table(1).tolist() == [0, 1, 1, 2]


class TestExceptions:
    def test_not_array(self):
        with pytest.raises(TypeError, match="x"):
            critical_points([1.0, 2.0])

    def test_complex(self):
        with pytest.raises(TypeError, match="real"):
            critical_points(np.ones(3, dtype=complex))
        with pytest.raises(TypeError, match="real"):
            critical_points(torch.ones(3, dtype=torch.complex64))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_not_finite(self, bad):
        with pytest.raises(ValueError, match="x must be finite"):
            critical_points(np.array([0.0, bad, 1.0]))
        with pytest.raises(ValueError, match="x must be finite"):
            critical_points(torch.tensor([0.0, bad]))

    def test_method(self):
        with pytest.raises(ValueError, match="method"):
            critical_points(np.ones(3), method="morse")
        with pytest.raises(ValueError, match="method"):
            count_critical_points(np.ones(3), method=None)

    @pytest.mark.parametrize(
        ("shape", "dims", "exc"),
        [
            ((2, 3, 4, 5), None, ValueError),
            ((), None, ValueError),
            ((3, 4), 2, ValueError),
            ((3, 4), (0, 0), ValueError),
            ((3, 4), (), ValueError),
            ((3, 4), "0", TypeError),
            ((3, 4), (0.5,), TypeError),
            ((2, 2, 2, 2), (0, 1, 2, 3), ValueError),
        ],
    )
    def test_dims(self, shape, dims, exc):
        with pytest.raises(exc, match="dims"):
            critical_points(np.zeros(shape), dims=dims)

    def test_flags(self):
        with pytest.raises(TypeError, match="per_axis"):
            critical_points(np.ones(3), per_axis=1)
        with pytest.raises(TypeError, match="return_multiplicity"):
            critical_points(np.ones(3), return_multiplicity="yes")
        with pytest.raises(ValueError, match="per_axis"):
            critical_points(np.ones(3), method="pl", per_axis=True)
        with pytest.raises(TypeError, match="return_multiplicity must be a bool or 'split'"):
            critical_points(np.ones(3), return_multiplicity="splits")

    def test_triangulation(self):
        with pytest.raises(ValueError, match="triangulation must be one of 'kuhn', 'ttk'"):
            critical_points(np.ones((3, 3)), method="pl", triangulation="freudenthal")
        with pytest.raises(ValueError, match="triangulation='ttk' needs method='pl'"):
            critical_points(np.ones((3, 3)), triangulation="ttk")
        with pytest.raises(ValueError, match="triangulation"):
            count_critical_points(np.ones((3, 3)), method="pl", triangulation=None)
        with pytest.raises(ValueError, match="triangulation"):
            mismatched_critical_points(np.ones(3), np.ones(3), triangulation="ttk")

    def test_mismatch_pairs(self):
        with pytest.raises(TypeError, match="both"):
            mismatched_critical_points(np.ones(3), torch.ones(3))
        with pytest.raises(ValueError, match="same shape"):
            mismatched_critical_points(np.ones(3), np.ones(4))
        with pytest.raises(TypeError, match="y"):
            mismatched_critical_points(np.ones(3), [1, 2, 3])
        with pytest.raises(ValueError, match="y must be finite"):
            mismatched_critical_points(np.ones(3), np.array([1.0, np.nan, 0.0]))
        with pytest.raises(ValueError, match="method"):
            mismatched_critical_points(np.ones(3), np.ones(3), method="x")


class TestKinds:
    @pytest.mark.parametrize(
        "dtype",
        [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.uint32, np.uint64, np.int64,
         np.float16, np.float32, np.float64],
    )
    def test_numpy_dtypes(self, dtype):
        a = np.array([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]])
        ref = critical_points(a.astype(np.float64))
        for method in ("axis", "pl"):
            out = critical_points(a.astype(dtype), method=method)
            assert isinstance(out, np.ndarray) and out.dtype == np.int8
            np.testing.assert_array_equal(out, critical_points(a.astype(np.float64), method=method))
        np.testing.assert_array_equal(critical_points(a.astype(dtype)), ref)

    @pytest.mark.parametrize(
        "dtype",
        [torch.bool, torch.uint8, torch.int32, torch.uint16, torch.uint32, torch.uint64,
         torch.float16, torch.bfloat16, torch.float32, torch.float64],
    )
    def test_torch_dtypes(self, dtype):
        a = np.array([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]])
        for method in ("axis", "pl"):
            out, mult = critical_points(
                torch.tensor(a).to(dtype), method=method, return_multiplicity=True
            )
            assert isinstance(out, torch.Tensor) and out.dtype == torch.int8
            assert isinstance(mult, torch.Tensor) and out.device.type == "cpu"
            np.testing.assert_array_equal(out.numpy(), critical_points(a, method=method))

    def test_unsigned_extremes(self):
        big = np.array([2**64 - 1, 0, 2**63, 2**63 - 1, 5], dtype=np.uint64)
        expected = critical_points(np.array([4, 0, 3, 2, 1]))
        np.testing.assert_array_equal(critical_points(big), expected)
        t = torch.from_numpy(big.view(np.int64)).view(torch.uint64)
        np.testing.assert_array_equal(critical_points(t).numpy(), expected)
        u32 = torch.tensor([2**32 - 1, 0, 2**31], dtype=torch.int64).to(torch.uint32)
        np.testing.assert_array_equal(critical_points(u32).numpy(), [MAX, MIN, MAX])

    def test_grad_noncontiguous_readonly_byteorder(self):
        a = np.random.default_rng(3).standard_normal((4, 6))
        t = torch.tensor(a, requires_grad=True)
        np.testing.assert_array_equal(critical_points(t).numpy(), critical_points(a))
        # SoS uses the logical C-order index of the view, not the memory layout.
        tt = torch.tensor(np.round(a)).T
        np.testing.assert_array_equal(
            critical_points(tt, method="pl").numpy(),
            critical_points(np.ascontiguousarray(np.round(a).T), method="pl"),
        )
        ro = a.copy()
        ro.flags.writeable = False
        np.testing.assert_array_equal(critical_points(ro), critical_points(a))
        np.testing.assert_array_equal(critical_points(a.astype(">f8")), critical_points(a))

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    @pytest.mark.cuda
    def test_cuda(self):
        a = np.random.default_rng(4).integers(0, 3, size=(2, 5, 6, 7))
        t = torch.tensor(a, device="cuda")
        for method in ("axis", "pl"):
            out, mult = critical_points(t, dims=(1, 2, 3), method=method, return_multiplicity=True)
            assert out.device == t.device and out.dtype == torch.int8
            ref, ref_m = critical_points(a, dims=(1, 2, 3), method=method, return_multiplicity=True)
            np.testing.assert_array_equal(out.cpu().numpy(), ref)
            np.testing.assert_array_equal(mult.cpu().numpy(), ref_m)
        m = mismatched_critical_points(t, t.flip(-1))
        assert isinstance(m.spurious, np.ndarray)


class TestOneD:
    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ([1, 1, 1], [MIN, REG, MAX]),
            ([5, 5], [MIN, MAX]),
            ([7], [MIN]),
            ([3, 1, 2], [MAX, MIN, MAX]),
            ([0, 1, 0], [MIN, MAX, MIN]),
            ([2, 2, 1, 1], [MIN, MAX, MIN, MAX]),
            ([0, 1, 1, 0], [MIN, REG, MAX, MIN]),
            ([1, 0, 0, 1], [MAX, MIN, REG, MAX]),
            ([0, 1, 2, 3], [MIN, REG, REG, MAX]),
        ],
    )
    @pytest.mark.parametrize("method", ["axis", "pl"])
    def test_hand(self, values, expected, method):
        labels, mult = critical_points(np.array(values), method=method, return_multiplicity=True)
        assert labels.tolist() == [int(e) for e in expected]
        assert not mult.any()

    @FAST
    @given(st.lists(st.integers(-2, 2), min_size=1, max_size=12))
    def test_pl_equals_axis(self, values):
        a = np.array(values)
        np.testing.assert_array_equal(critical_points(a, method="pl"), critical_points(a))
        labels = critical_points(a)
        # extrema alternate along a line, starting and ending with opposite or equal kinds
        ext = labels[labels != REG]
        assert (ext[1:] != ext[:-1]).all()


class TestHandND:
    def test_constant_2d(self):
        c = np.zeros((3, 4))
        pl = critical_points(c, method="pl")
        assert (pl == MIN).sum() == 1 and pl[0, 0] == MIN
        assert (pl == MAX).sum() == 1 and pl[-1, -1] == MAX
        assert (pl == SAD).sum() == 0
        ax = critical_points(c)
        assert ax[0, -1] == SAD and ax[-1, 0] == SAD  # corners: min along one axis, max along other

    def test_saddle_x2_minus_y2(self):
        rng = np.random.default_rng(5)
        i, j = np.meshgrid(np.arange(-4, 5), np.arange(-3, 4), indexing="ij")
        f = i**2 - j**2 + 1e-3 * rng.standard_normal(i.shape)
        labels, mult = critical_points(f, method="pl", return_multiplicity=True)
        assert np.argwhere(labels == SAD).tolist() == [[4, 3]]
        assert mult[4, 3] == 1
        assert critical_points(f)[4, 3] == SAD

    def test_monkey_saddle(self):
        i, j = np.meshgrid(np.arange(-3, 4), np.arange(-3, 4), indexing="ij")
        # Re((i + 1j j)^3) has a monkey saddle at 0: three lower and three upper wedges.
        f = i**3 - 3 * i * j**2 + 1e-3 * (i + 0.5 * j)
        labels, mult = critical_points(f.astype(float), method="pl", return_multiplicity=True)
        assert labels[3, 3] == SAD and mult[3, 3] >= 1

    def test_3d_saddles(self):
        i, j, k = np.meshgrid(*(np.arange(-2, 3),) * 3, indexing="ij")
        eps = 1e-3 * (i + 0.3 * j + 0.1 * k)
        one = critical_points(i**2 + j**2 - k**2 + eps, method="pl")  # joins two sublevel parts
        two = critical_points(i**2 - j**2 - k**2 + eps, method="pl")  # joins two superlevel parts
        assert one[2, 2, 2] == SAD and two[2, 2, 2] == SAD2
        assert (one == SAD2)[1:-1, 1:-1, 1:-1].sum() == 0

    def test_3d_degenerate(self):
        # Centre of a 3x3x3 block (Kuhn link: the 14 offsets with entries all in {0, 1} or all in
        # {0, -1}). Lower link: the 6-cycle around (1, 1, 1) plus the lone (-1, -1, -1); upper
        # link: the lone (1, 1, 1) plus the 6-cycle around (-1, -1, -1). Two components each.
        a = np.full((3, 3, 3), 5.0)
        a[1, 1, 1] = 0.0
        for o in itertools.product((0, 1), repeat=3):
            if 0 < sum(o) < 3:
                a[tuple(1 + v for v in o)] = -1.0
                a[tuple(1 - v for v in o)] = 1.0
        a[0, 0, 0], a[2, 2, 2] = -1.0, 1.0
        labels, m1, m2 = critical_points(a, method="pl", return_multiplicity="split")
        assert labels[1, 1, 1] == DEG and (m1[1, 1, 1], m2[1, 1, 1]) == (1, 1)
        _, mult = critical_points(a, method="pl", return_multiplicity=True)
        assert mult[1, 1, 1] == 2
        assert count_critical_points(a, method="pl")["DEGENERATE"] >= 1
        # TTK's triangulation sees the same link on the block mirrored along the last axis.
        mirrored = a[..., ::-1].copy()
        ttk = critical_points(mirrored, method="pl", triangulation="ttk")
        assert ttk[1, 1, 1] == DEG
        assert critical_points(mirrored, method="pl")[1, 1, 1] != DEG

    def test_singleton_axes(self):
        assert critical_points(np.zeros((1, 1)), method="pl").tolist() == [[MIN]]
        assert critical_points(np.zeros((1, 1, 1))).tolist() == [[[MIN]]]
        a = np.array([[3.0, 1.0, 2.0]])
        np.testing.assert_array_equal(critical_points(a)[0], critical_points(a[0]))
        np.testing.assert_array_equal(critical_points(a, method="pl")[0], critical_points(a[0]))
        pa = critical_points(a, per_axis=True)
        assert (pa[..., 0] == REG).all()


class TestOracles:
    @pytest.mark.parametrize("shape", [(13,), (7, 11), (4, 5, 6)])
    @pytest.mark.parametrize("seed", range(4))
    def test_gudhi_h0(self, shape, seed):
        a = np.random.default_rng(seed).standard_normal(shape)
        labels = critical_points(a)
        assert (labels == MIN).sum() == _h0_count(a)
        assert (labels == MAX).sum() == _h0_count(-a)

    def test_gudhi_h0_ties_hand(self):
        # Two SoS minima (indices 1 and 3); the one at index 1 is born and dies at the value 1,
        # a zero-length pair that gudhi drops: one H0 interval. The SoS rank has both.
        a = np.array([2.0, 1.0, 1.0, 0.0])
        assert (critical_points(a) == MIN).sum() == 2
        assert _h0_intervals(a).tolist() == [[0.0, np.inf]]
        assert _h0_count(_sos_rank(a)) == 2

    @FAST
    @given(st.builds(_field, shapes_any, st.integers(0, 2**32 - 1), st.just(True)))
    def test_gudhi_h0_with_ties(self, a):
        # Exact statement: the axis minima are the H0 births of the lower-star filtration in SoS
        # order, i.e. of gudhi on the SoS rank r (tie-free). Mapped back to values, r's pairs are
        # gudhi's intervals of a plus the pairs born and dying at one value, which gudhi drops.
        labels = critical_points(a)
        r = _sos_rank(a)
        n_min = int((labels == MIN).sum())
        ranked = _h0_intervals(r.astype(np.float64))
        assert len(ranked) == n_min
        if any(n > 1 for n in a.shape):
            assert (labels == MAX).sum() == _h0_count(-r.astype(np.float64))
        values = np.sort(a.ravel())
        birth = values[ranked[:, 0].astype(np.int64)]
        finite = np.isfinite(ranked[:, 1])
        death = np.full(len(ranked), np.inf)
        death[finite] = values[ranked[finite, 1].astype(np.int64)]
        zero = birth == death
        gudhi_a = _h0_intervals(a)
        assert n_min == len(gudhi_a) + int(zero.sum())
        mapped = np.stack([birth[~zero], death[~zero]], axis=1)
        np.testing.assert_array_equal(
            mapped[np.lexsort(mapped.T[::-1])], gudhi_a[np.lexsort(gudhi_a.T[::-1])]
        )
        if len(np.unique(a)) == a.size:  # tie-free: the plain equality
            assert n_min == len(gudhi_a)

    @FAST
    @given(st.one_of(fields_23, fields_3d_degenerate), st.sampled_from(["kuhn", "ttk"]))
    def test_pl_brute_force_split(self, a, triangulation):
        labels, m1, m2 = critical_points(
            a, method="pl", return_multiplicity="split", triangulation=triangulation
        )
        ref_labels, ref_m1, ref_m2 = brute_pl(a, triangulation)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(m1, ref_m1)
        np.testing.assert_array_equal(m2, ref_m2)

    @FAST
    @given(fields_23)
    def test_pl_brute_force(self, a):
        labels, mult = critical_points(a, method="pl", return_multiplicity=True)
        ref_labels, ref_m1, ref_m2 = brute_pl(a)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(mult, ref_m1 + ref_m2)

    @FAST
    @given(fields)
    def test_axis_brute_force(self, a):
        labels, mult = critical_points(a, return_multiplicity=True)
        np.testing.assert_array_equal(labels, brute_axis(a))
        np.testing.assert_array_equal(mult, (labels == SAD).astype(np.int8))

    @pytest.mark.parametrize("seed", range(3))
    def test_pl_3d_fixed(self, seed):
        a = np.random.default_rng(seed).integers(0, 4, size=(4, 4, 5)).astype(float)
        labels, mult = critical_points(a, method="pl", return_multiplicity=True)
        ref_labels, ref_m1, ref_m2 = brute_pl(a)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(mult, ref_m1 + ref_m2)

    @FAST
    @given(st.builds(_field, shapes_2d, st.integers(0, 2**32 - 1), st.booleans()))
    def test_pl_euler_characteristic_2d(self, a):
        # Pad with a ring higher than every sample: each simplex of a's own (disk-shaped)
        # triangulation then has its highest vertex inside, where links are cycles and Banchoff's
        # index 1 - chi(lower link) is +1 at extrema and -multiplicity at saddles. Summing
        # indices gives chi(disk) = 1.
        padded = np.pad(a, 1, constant_values=a.max() + 1)
        labels, mult = critical_points(padded, method="pl", return_multiplicity=True)
        labels, mult = labels[1:-1, 1:-1], mult[1:-1, 1:-1].astype(int)
        euler = (labels == MIN).sum() + (labels == MAX).sum() - mult[labels == SAD].sum()
        assert euler == 1


class TestMorse:
    """#min - #1-saddle + #2-saddle - #max = 1 (3D), #min - #saddle + #max = 1 (2D)."""

    @settings(max_examples=60, deadline=None)
    @given(
        st.one_of(
            st.builds(_field, st.one_of(shapes_2d, shapes_3d), st.integers(0, 2**32 - 1),
                      st.booleans()),
            fields_3d_degenerate,
        ),
        st.sampled_from(["kuhn", "ttk"]),
    )
    def test_identity(self, a, triangulation):
        assert _morse_sum(a, triangulation) == 1

    def test_planted_is_degenerate(self):
        a = _plant_degenerate(_field((5, 5, 5), 0, True), (1, 1, 1))
        labels, m1, m2 = critical_points(a, method="pl", return_multiplicity="split")
        assert labels[2, 2, 2] == DEG and (m1[2, 2, 2], m2[2, 2, 2]) == (1, 1)

    @pytest.mark.parametrize("triangulation", ["kuhn", "ttk"])
    @pytest.mark.parametrize("ties", [False, True])
    def test_identity_large_3d(self, triangulation, ties):
        # The field of the report (11x17x23): the old rule, which folded the 2-saddle part of
        # split vertices into a 1-saddle, gave a negative sum here.
        a = _field((11, 17, 23), 0, ties)
        assert _morse_sum(a, triangulation) == 1
        padded = np.pad(a, 1, constant_values=a.max() + 1)
        labels = critical_points(padded, method="pl", triangulation=triangulation)
        assert (labels == DEG).any()


class TestTriangulation:
    @FAST
    @given(st.builds(_field, shapes_any, st.integers(0, 2**32 - 1), st.just(False)))
    def test_ttk_is_kuhn_mirrored(self, a):
        # Without ties, "ttk" on a equals "kuhn" on a flipped along its last axis of length > 1.
        active = [d for d in range(a.ndim) if a.shape[d] > 1]
        axis = active[-1] if active else -1
        ttk, m1, m2 = critical_points(
            a, method="pl", triangulation="ttk", return_multiplicity="split"
        )
        kuhn, k1, k2 = critical_points(
            np.flip(a, axis).copy(), method="pl", return_multiplicity="split"
        )
        np.testing.assert_array_equal(ttk, np.flip(kuhn, axis))
        np.testing.assert_array_equal(m1, np.flip(k1, axis))
        np.testing.assert_array_equal(m2, np.flip(k2, axis))

    def test_ttk_differs_from_kuhn(self):
        a = _field((9, 10), 1, False)
        assert (critical_points(a, method="pl", triangulation="ttk")
                != critical_points(a, method="pl")).any()

    def test_ttk_ties_keep_original_index(self):
        # With ties, flipping would reverse the SoS order along the axis; "ttk" keeps the
        # original flat index: [[0, 0]] has its minimum at index 0 either way.
        a = np.zeros((2, 2))
        ttk = critical_points(a, method="pl", triangulation="ttk")
        assert ttk[0, 0] == MIN and ttk[1, 1] == MAX
        np.testing.assert_array_equal(ttk, brute_pl(a, "ttk")[0])

    def test_ttk_1d_and_torch(self):
        a = np.array([0.0, 2.0, 1.0, 1.0, 3.0])
        np.testing.assert_array_equal(
            critical_points(a, method="pl", triangulation="ttk"), critical_points(a)
        )
        b = _field((2, 4, 5), 3, True)
        ref = critical_points(b, dims=(1, 2), method="pl", triangulation="ttk")
        out = critical_points(torch.from_numpy(b), dims=(1, 2), method="pl", triangulation="ttk")
        np.testing.assert_array_equal(out.numpy(), ref)
        for n in range(2):
            np.testing.assert_array_equal(ref[n], brute_pl(b[n], "ttk")[0])
        m = mismatched_critical_points(b, b, dims=(1, 2), method="pl", triangulation="ttk")
        assert m.n_mismatched == 0 and m.n_matched == int((ref != 0).sum())


class TestInvariance:
    @staticmethod
    def _maps(a: np.ndarray) -> list[np.ndarray]:
        flat = a.ravel()
        rank = np.empty(flat.size, dtype=np.int64)
        rank[np.lexsort((np.arange(flat.size), flat))] = np.arange(flat.size)
        return [np.exp(a), 3 * a + 1, a - 100.0, rank.reshape(a.shape)]

    @FAST
    @given(fields, st.sampled_from(["axis", "pl"]))
    def test_strictly_increasing_map(self, a, method):
        a = np.round(a * 2)  # a coarse grid: strictly increasing maps keep every tie exact
        ref, ref_m = critical_points(a, method=method, return_multiplicity=True)
        for b in self._maps(a):
            out, m = critical_points(b, method=method, return_multiplicity=True)
            np.testing.assert_array_equal(out, ref)
            np.testing.assert_array_equal(m, ref_m)

    @FAST
    @given(fields_23, st.sampled_from(["axis", "pl"]))
    def test_dims_order(self, a, method):
        dims = tuple(range(a.ndim))
        ref = critical_points(a, method=method)
        np.testing.assert_array_equal(critical_points(a, dims=dims[::-1], method=method), ref)


class TestBatch:
    @FAST
    @given(
        st.builds(_field, st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4),
                                    st.integers(1, 4)),
                  st.integers(0, 2**32 - 1), st.booleans()),
        st.sampled_from(["axis", "pl"]),
    )
    def test_batched_equals_per_sample(self, a, method):
        out, mult = critical_points(a, dims=(2, 3), method=method, return_multiplicity=True)
        for n, c in np.ndindex(a.shape[:2]):
            ref, ref_m = critical_points(a[n, c], method=method, return_multiplicity=True)
            np.testing.assert_array_equal(out[n, c], ref)
            np.testing.assert_array_equal(mult[n, c], ref_m)

    @FAST
    @given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from(["axis", "pl"]))
    def test_batch_axis_in_middle(self, seed, ties, method):
        a = _field((4, 3, 5, 3), seed, ties)
        out = critical_points(a, dims=(0, 2, -1), method=method)
        for b in range(a.shape[1]):
            np.testing.assert_array_equal(out[:, b], critical_points(a[:, b], method=method))

    def test_per_axis_batched(self):
        a = _field((2, 5, 6), 7, True)
        pa = critical_points(a, dims=(1, 2), per_axis=True)
        for n in range(2):
            np.testing.assert_array_equal(pa[n], critical_points(a[n], per_axis=True))


class TestNumpyTorch:
    @FAST
    @given(fields, st.sampled_from(["axis", "pl"]))
    def test_same(self, a, method):
        ref, ref_m = critical_points(a, method=method, return_multiplicity=True)
        out, m = critical_points(torch.from_numpy(a), method=method, return_multiplicity=True)
        np.testing.assert_array_equal(out.numpy(), ref)
        np.testing.assert_array_equal(m.numpy(), ref_m)
        out32 = critical_points(torch.from_numpy(a).float(), method=method)
        np.testing.assert_array_equal(out32.numpy(), critical_points(a.astype(np.float32),
                                                                     method=method))


class TestPerAxis:
    @FAST
    @given(fields)
    def test_consistent_with_combined(self, a):
        pa = critical_points(a, per_axis=True)
        labels = critical_points(a)
        active = [d for d in range(a.ndim) if a.shape[d] > 1]
        assert (pa[..., [d for d in range(a.ndim) if d not in active]] == REG).all()
        if not active:
            assert (labels == MIN).all()
            return
        act = pa[..., active]
        all_min, all_max = (act == MIN).all(-1), (act == MAX).all(-1)
        saddle = (act == MIN).any(-1) & (act == MAX).any(-1)
        np.testing.assert_array_equal(labels == MIN, all_min)
        np.testing.assert_array_equal(labels == MAX, all_max)
        np.testing.assert_array_equal(labels == SAD, saddle)
        np.testing.assert_array_equal(labels == REG, ~(all_min | all_max | saddle))

    def test_order_follows_dims(self):
        a = _field((4, 5), 11, False)
        pa = critical_points(a, dims=(1, 0), per_axis=True)
        np.testing.assert_array_equal(pa[..., ::-1], critical_points(a, per_axis=True))
        labels, mult = critical_points(a, per_axis=True, return_multiplicity=True)
        assert mult.shape == labels.shape and not mult.any()


class TestMismatch:
    def test_hand(self):
        y = np.array([0.0, 1.0, 2.0, 3.0, 2.0, 3.0])  # MIN REG REG MAX MIN MAX
        x = np.array([0.0, 2.0, 1.0, 3.0, 4.0, 3.0])  # MIN MAX MIN REG MAX MIN
        m = mismatched_critical_points(x, y)
        assert isinstance(m, CriticalMismatch)
        assert m.spurious.tolist() == [[1], [2]]
        assert m.spurious_types.tolist() == [MAX, MIN]
        assert m.lost.tolist() == [[3]] and m.lost_types.tolist() == [MAX]
        assert m.changed.tolist() == [[4], [5]]
        assert m.changed_from.tolist() == [MIN, MAX]
        assert m.changed_to.tolist() == [MAX, MIN]
        assert m.matched.tolist() == [[0]] and m.matched_types.tolist() == [MIN]
        assert (m.n_spurious, m.n_lost, m.n_changed, m.n_matched) == (2, 1, 2, 1)
        assert m.n_mismatched == 5
        assert repr(m) == "CriticalMismatch(n_spurious=2, n_lost=1, n_changed=2, n_matched=1)"
        empty = mismatched_critical_points(np.zeros((3, 0)), np.zeros((3, 0)))
        assert empty.spurious.shape == (0, 2) and empty.n_mismatched == 0

    @FAST
    @given(st.integers(0, 2**32 - 1), st.sampled_from(["axis", "pl"]), st.booleans())
    def test_partition_batched_torch(self, seed, method, use_torch):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 3, size=(2, 4, 5)).astype(float)
        x = y + rng.integers(-1, 2, size=y.shape)
        lx = critical_points(x, dims=(1, 2), method=method)
        ly = critical_points(y, dims=(1, 2), method=method)
        if use_torch:
            x, y = torch.from_numpy(x), torch.from_numpy(y)
        m = mismatched_critical_points(x, y, dims=(1, 2), method=method)
        for name in ("spurious", "lost", "changed", "matched"):
            coords = getattr(m, name)
            assert isinstance(coords, np.ndarray) and coords.dtype == np.int64
            assert coords.ndim == 2 and coords.shape[1] == 3
            assert not coords.flags.writeable
        assert m.spurious_types.dtype == np.int8
        assert m.n_spurious + m.n_changed + m.n_matched == (lx != 0).sum()
        assert m.n_lost + m.n_changed + m.n_matched == (ly != 0).sum()
        idx = tuple(m.spurious.T)
        np.testing.assert_array_equal(lx[idx], m.spurious_types)
        assert (ly[idx] == 0).all()
        idx = tuple(m.lost.T)
        np.testing.assert_array_equal(ly[idx], m.lost_types)
        assert (lx[idx] == 0).all()
        idx = tuple(m.changed.T)
        np.testing.assert_array_equal(ly[idx], m.changed_from)
        np.testing.assert_array_equal(lx[idx], m.changed_to)
        assert (m.changed_from != m.changed_to).all()

    def test_identical(self):
        a = _field((5, 6), 3, True)
        m = mismatched_critical_points(a, a.copy(), method="pl")
        assert m.n_mismatched == 0
        assert m.n_matched == int((critical_points(a, method="pl") != 0).sum())
