"""Tests of dsl_explore.data: generators, normalisation, loading, dataset and split."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl_explore.data import (
    DATASET_KINDS,
    FieldDataset,
    bumps_1d,
    gaussian_blobs,
    gaussian_random_field,
    load_array,
    make_dataset,
    marschner_lobb,
    normalize,
    sinusoids_1d,
    split,
)


def strict_interior_extrema(s: np.ndarray) -> int:
    """Independent reference: count j in 1..L-2 with s[j] strictly above or below both sides."""
    count = 0
    for j in range(1, len(s) - 1):
        a, b, c = s[j - 1], s[j], s[j + 1]
        if (b > a and b > c) or (b < a and b < c):
            count += 1
    return count


def fast_extrema(s: np.ndarray) -> np.ndarray:
    mid, left, right = s[..., 1:-1], s[..., :-2], s[..., 2:]
    return (((mid > left) & (mid > right)) | ((mid < left) & (mid < right))).sum(axis=-1)


GENERATORS = {
    "sinusoids": lambda seed: sinusoids_1d(5, 97, seed=seed),
    "bumps": lambda seed: bumps_1d(5, 97, n_extrema=6, seed=seed),
    "blobs1d": lambda seed: gaussian_blobs(5, 50, seed=seed),
    "blobs2d": lambda seed: gaussian_blobs(5, (16, 24), seed=seed),
    "blobs3d": lambda seed: gaussian_blobs(3, (8, 10, 12), seed=seed),
    "grf1d": lambda seed: gaussian_random_field(5, 64, seed=seed),
    "grf2d": lambda seed: gaussian_random_field(5, (16, 20), seed=seed),
    "grf3d": lambda seed: gaussian_random_field(3, (8, 8, 10), seed=seed),
}
SHAPES = {
    "sinusoids": (5, 1, 97),
    "bumps": (5, 1, 97),
    "blobs1d": (5, 1, 50),
    "blobs2d": (5, 1, 16, 24),
    "blobs3d": (3, 1, 8, 10, 12),
    "grf1d": (5, 1, 64),
    "grf2d": (5, 1, 16, 20),
    "grf3d": (3, 1, 8, 8, 10),
}


# ---------------------------------------------------------------------------------------------
# generators: common contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_contract(name):
    gen = GENERATORS[name]
    a = gen(3)
    assert a.dtype == np.float32
    assert a.shape == SHAPES[name]
    assert a.flags.c_contiguous
    flat = a.reshape(a.shape[0], -1)
    assert np.all(flat.min(axis=1) == 0.0)
    assert np.all(flat.max(axis=1) == 1.0)
    np.testing.assert_array_equal(a, gen(3))  # same seed, same array
    assert not np.array_equal(a, gen(4))  # different seed, different array


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_leave_global_rng_alone(name):
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.random.get_rng_state().clone()
    GENERATORS[name](0)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_seed_none_is_accepted():
    assert sinusoids_1d(2, 16, seed=None).shape == (2, 1, 16)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: sinusoids_1d(0, 16), ValueError, "n must be"),
        (lambda: sinusoids_1d(2.0, 16), TypeError, "n must be"),
        (lambda: sinusoids_1d(True, 16), TypeError, "n must be"),
        (lambda: sinusoids_1d(2, 1), ValueError, "length must hold sizes >= 2"),
        (lambda: sinusoids_1d(2, (16, 16)), ValueError, "length must have 1 entries"),
        (lambda: sinusoids_1d(2, 16, n_components=0), ValueError, "n_components"),
        (lambda: sinusoids_1d(2, 16, max_cycles=float("nan")), ValueError, "max_cycles"),
        (lambda: sinusoids_1d(2, 16, seed=-1), ValueError, "seed"),
        (lambda: sinusoids_1d(2, 16, seed=1.5), TypeError, "seed"),
        (lambda: bumps_1d(2, 9, n_extrema=8), ValueError, "length must be at least"),
        (lambda: bumps_1d(2, 20, n_extrema=-1), ValueError, "n_extrema"),
        (lambda: gaussian_blobs(2, (8, 8, 8, 8)), ValueError, "size must have 1 or 2 or 3"),
        (lambda: gaussian_blobs(2, (8, 1)), ValueError, "size must hold sizes >= 2"),
        (lambda: gaussian_blobs(2, "8"), TypeError, "size must be"),
        (lambda: gaussian_blobs(2, (8.0, 8)), TypeError, "size must hold ints"),
        (lambda: gaussian_blobs(2, 8, sigma=(0.2, 0.1)), ValueError, "low <= high"),
        (lambda: gaussian_blobs(2, 8, sigma=0.0), ValueError, "sigma"),
        (lambda: gaussian_blobs(2, 8, sigma=(0.1, 0.2, 0.3)), TypeError, "sigma"),
        (lambda: gaussian_blobs(2, 8, n_blobs=0), ValueError, "n_blobs"),
        (lambda: gaussian_random_field(2, 8, alpha=-1.0), ValueError, "alpha"),
        (lambda: marschner_lobb((8, 8)), ValueError, "size must have 3"),
        (lambda: marschner_lobb(8, f_m=0.0), ValueError, "f_m"),
    ],
)
def test_generator_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# bumps_1d: exact number of extrema
# ---------------------------------------------------------------------------------------------


@st.composite
def bump_args(draw):
    n_extrema = draw(st.integers(0, 24))
    length = draw(st.integers(n_extrema + 2, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    return n_extrema, length, seed


@settings(deadline=None, max_examples=150)
@given(bump_args())
def test_bumps_exact_extrema_hypothesis(args):
    n_extrema, length, seed = args
    x = bumps_1d(4, length, n_extrema=n_extrema, seed=seed)
    assert x.shape == (4, 1, length) and x.dtype == np.float32
    assert np.all(fast_extrema(x[:, 0]) == n_extrema)
    assert np.all(x.min(axis=-1) == 0.0) and np.all(x.max(axis=-1) == 1.0)


@pytest.mark.parametrize(
    ("length", "n_extrema"),
    [(L, m) for L in (2, 3, 10, 64, 256, 1000) for m in (0, 1, 2, 8) if L >= m + 2],
)
def test_bumps_exact_extrema_grid(length, n_extrema):
    x = bumps_1d(20, length, n_extrema=n_extrema, seed=length * 31 + n_extrema)
    for s in x[:, 0]:
        assert strict_interior_extrema(s) == n_extrema


@pytest.mark.parametrize(("length", "n_extrema"), [(200_000, 1), (100_000, 2), (60_000, 16)])
def test_bumps_exact_extrema_long_runs_survive_float32(length, n_extrema):
    # runs of tens of thousands of samples: the extrema must stay strict after float32 rounding
    x = bumps_1d(2, length, n_extrema=n_extrema, seed=7)
    assert np.all(fast_extrema(x[:, 0]) == n_extrema)


def test_bumps_minimal_length_alternates_every_sample():
    x = bumps_1d(10, 12, n_extrema=10, seed=2)[:, 0]
    d = np.sign(np.diff(x, axis=-1))
    assert np.all(d != 0)
    assert np.all(d[:, 1:] == -d[:, :-1])


def test_bumps_zero_extrema_is_strictly_monotone_over_the_interior():
    x = bumps_1d(10, 200, n_extrema=0, seed=4)[:, 0].astype(np.float64)
    d = np.diff(x, axis=-1)
    assert np.all((d >= 0).all(axis=1) | (d <= 0).all(axis=1))
    assert np.all(fast_extrema(x) == 0)


# ---------------------------------------------------------------------------------------------
# gaussian_random_field, gaussian_blobs, sinusoids
# ---------------------------------------------------------------------------------------------


def test_grf_larger_alpha_is_smoother():
    roughness = []
    for alpha in (0.0, 1.0, 2.0, 3.0, 4.0):
        x = gaussian_random_field(16, (32, 32), alpha=alpha, seed=1)
        roughness.append(np.abs(np.diff(x, axis=-1)).mean() + np.abs(np.diff(x, axis=-2)).mean())
    assert all(a > b for a, b in itertools.pairwise(roughness))


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_grf_power_law_slope(alpha):
    length = 1024
    x = gaussian_random_field(64, length, alpha=alpha, seed=3)[:, 0].astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    power = (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0)
    k = np.fft.rfftfreq(length)
    band = (k >= 4 / length) & (k <= 0.25)
    slope = np.polyfit(np.log(k[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-alpha, abs=0.2)


def test_grf_very_large_alpha_is_the_lowest_mode():
    # power ~ |k|**-40: the k = 1/L mode dominates; without a mean mode that is one cosine cycle
    x = gaussian_random_field(4, 256, alpha=40.0, seed=0)[:, 0].astype(np.float64)
    t = np.arange(256) / 256
    for s in x:
        c = s - s.mean()
        fit = np.linalg.lstsq(np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], 1), c)[0]
        resid = c - np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], 1) @ fit
        assert np.abs(resid).max() < 1e-3


def test_blobs_int_size_is_1d_and_sigma_scalar():
    a = gaussian_blobs(3, 40, sigma=0.1, n_blobs=2, seed=0)
    assert a.shape == (3, 1, 40)
    assert gaussian_blobs(2, (40,), seed=5).shape == (2, 1, 40)


def test_blobs_have_both_signs():
    # one blob per sample: a positive blob leaves the border near 0, a negative one near 1
    a = gaussian_blobs(40, (33, 33), n_blobs=1, sigma=0.08, seed=0)[:, 0]
    border = np.concatenate([a[:, 0, :], a[:, -1, :], a[:, :, 0], a[:, :, -1]], axis=1)
    level = np.median(border, axis=1)
    assert np.sum(level < 0.1) > 5 and np.sum(level > 0.9) > 5


def test_sinusoids_options():
    a = sinusoids_1d(4, (128,), n_components=1, max_cycles=0.5, seed=0)
    assert a.shape == (4, 1, 128)
    # one component of half a cycle over the signal has at most one interior extremum
    assert np.all(fast_extrema(a[:, 0]) <= 1)


# ---------------------------------------------------------------------------------------------
# Marschner-Lobb
# ---------------------------------------------------------------------------------------------


def _ml_reference(x, y, z, f_m=6.0, alpha=0.25):
    r = math.sqrt(x * x + y * y)
    rho_r = math.cos(2 * math.pi * f_m * math.cos(math.pi * r / 2))
    return (1 - math.sin(math.pi * z / 2) + alpha * (1 + rho_r)) / (2 * (1 + alpha))


def test_marschner_lobb_known_values():
    v = marschner_lobb(41, normalize=False)
    assert v.shape == (1, 1, 41, 41, 41) and v.dtype == np.float32
    assert v[0, 0, 20, 20, 20] == pytest.approx(0.6, abs=1e-6)  # centre
    # (0, 0, -1): 1 - sin(-pi/2) = 2 and rho_r(0) = cos(12 pi) = 1, so rho = 1 exactly
    assert v[0, 0, 20, 20, 0] == pytest.approx(1.0, abs=1e-6)
    # (0, 0, 1): 1 - sin(pi/2) = 0, so rho = alpha * 2 / (2 (1 + alpha)) = 0.2
    assert v[0, 0, 20, 20, 40] == pytest.approx(0.2, abs=1e-6)
    grid = np.linspace(-1, 1, 41)
    rng = np.random.default_rng(0)
    for i, j, k in rng.integers(0, 41, size=(25, 3)):
        ref = _ml_reference(grid[i], grid[j], grid[k])
        assert v[0, 0, i, j, k] == pytest.approx(ref, abs=1e-6)


def test_marschner_lobb_options_and_normalisation():
    v = marschner_lobb((9, 11, 13), f_m=3.0, alpha=0.5, normalize=False)
    assert v.shape == (1, 1, 9, 11, 13)
    assert v[0, 0, 4, 5, 6] == pytest.approx(_ml_reference(0, 0, 0, 3.0, 0.5), abs=1e-6)
    assert 0.0 <= v.min() and v.max() <= 1.0
    w = marschner_lobb((9, 11, 13), f_m=3.0, alpha=0.5)
    assert w.min() == 0.0 and w.max() == 1.0
    # alpha = 0: a function of z alone
    z_only = marschner_lobb(7, alpha=0.0, normalize=False)[0, 0]
    assert np.allclose(z_only, z_only[:1, :1, :])


# ---------------------------------------------------------------------------------------------
# make_dataset
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, size, options, shape",
    [
        ("sinusoids", 32, {"n_components": 2}, (3, 1, 32)),
        ("bumps", (40,), {"n_extrema": 3}, (3, 1, 40)),
        ("blobs", (12, 14), {"n_blobs": 2}, (3, 1, 12, 14)),
        ("grf", (8, 8, 8), {"alpha": 2.0}, (3, 1, 8, 8, 8)),
        ("marschner_lobb", 9, {"f_m": 4.0}, (3, 1, 9, 9, 9)),
    ],
)
def test_make_dataset_dispatch(kind, size, options, shape):
    a = make_dataset(kind, 3, size, seed=5, **options)
    assert a.shape == shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, make_dataset(kind, 3, size, seed=5, **options))


def test_make_dataset_matches_generators_and_rejects_unknown():
    np.testing.assert_array_equal(
        make_dataset("bumps", 4, 50, seed=2, n_extrema=5), bumps_1d(4, 50, n_extrema=5, seed=2)
    )
    ml = make_dataset("marschner_lobb", 2, 9)
    np.testing.assert_array_equal(ml[0], ml[1])
    np.testing.assert_array_equal(ml[:1], marschner_lobb(9))
    with pytest.raises(ValueError, match="kind must be one of") as info:
        make_dataset("noise", 2, 16)
    for kind in DATASET_KINDS:
        assert repr(kind) in str(info.value)
    with pytest.raises(TypeError, match="unexpected keyword"):
        make_dataset("grf", 2, 16, n_extrema=3)


# ---------------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------------


def test_normalize_numpy_per_sample_and_global():
    a = np.array([[[1.0, 3.0]], [[-2.0, 2.0]], [[4.0, 4.0]]])
    out = normalize(a)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[[0.0, 1.0]], [[0.0, 1.0]], [[0.5, 0.5]]])
    glob = normalize(a, per_sample=False)
    np.testing.assert_allclose(glob, (a + 2) / 6)
    assert normalize(np.array([[7, 9]], dtype=np.int16)).dtype == np.float32
    assert normalize(np.array([[True, False]])).dtype == np.float32
    assert normalize(a.astype(np.float16)).dtype == np.float16


def test_normalize_torch_keeps_kind_device_and_grad():
    t = torch.tensor([[0.5, 1.5, 2.5], [3.0, 3.0, 3.0]], requires_grad=True)
    out = normalize(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.5, 0.5]]))
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
    assert normalize(torch.tensor([[1, 2, 3]])).dtype == torch.float32
    assert normalize(torch.ones(2, 3, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_normalize_extreme_values_do_not_overflow():
    a = np.array([[-3e38, 0.0, 3e38]], dtype=np.float32)
    np.testing.assert_array_equal(normalize(a), [[0.0, 0.5, 1.0]])
    t = torch.from_numpy(a)
    torch.testing.assert_close(normalize(t), torch.tensor([[0.0, 0.5, 1.0]]))


@pytest.mark.parametrize(
    "a, kwargs, exc, match",
    [
        (np.array([[1.0, np.nan]]), {}, ValueError, "finite"),
        (torch.tensor([[1.0, float("inf")]]), {}, ValueError, "finite"),
        (np.array([[1 + 1j, 2]]), {}, TypeError, "real"),
        (np.zeros((0, 3)), {}, ValueError, "non-empty"),
        (np.array(3.0), {"per_sample": False}, ValueError, "non-empty"),
        (np.array([1.0, 2.0]), {}, ValueError, "at least 2 axes"),
        ([[1.0, 2.0]], {}, TypeError, "numpy.ndarray or a torch.Tensor"),
        (np.ones((2, 2)), {"per_sample": 1}, TypeError, "per_sample"),
    ],
)
def test_normalize_errors(a, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        normalize(a, **kwargs)


# ---------------------------------------------------------------------------------------------
# load_array
# ---------------------------------------------------------------------------------------------


def test_load_npy_round_trip(tmp_path):
    data = gaussian_random_field(3, (8, 12), seed=0)
    path = tmp_path / "fields.npy"
    np.save(path, data)
    out = load_array(path)
    assert out.dtype == np.float32 and out.shape == (3, 1, 8, 12)
    np.testing.assert_array_equal(out, data)  # already normalised: unchanged
    np.testing.assert_array_equal(load_array(str(path), normalize=False), data)


def test_load_npy_normalises_per_sample(tmp_path):
    raw = np.stack([np.linspace(0, 10, 16), np.linspace(-5, -1, 16)])[:, None]
    np.save(tmp_path / "raw.npy", raw)
    out = load_array(tmp_path / "raw.npy")
    np.testing.assert_allclose(out[:, 0], np.tile(np.linspace(0, 1, 16), (2, 1)), atol=1e-7)
    kept = load_array(tmp_path / "raw.npy", normalize=False)
    np.testing.assert_allclose(kept, raw.astype(np.float32))


def test_load_npz_keys(tmp_path):
    a = np.arange(32.0).reshape(2, 1, 16)
    b = np.arange(64.0).reshape(1, 1, 8, 8)
    np.savez(tmp_path / "one.npz", only=a)
    np.testing.assert_allclose(load_array(tmp_path / "one.npz", normalize=False), a)
    np.savez_compressed(tmp_path / "two.npz", signals=a, images=b)
    with pytest.raises(ValueError, match="pass key=") as info:
        load_array(tmp_path / "two.npz")
    assert "'signals'" in str(info.value) and "'images'" in str(info.value)
    assert load_array(tmp_path / "two.npz", key="images").shape == (1, 1, 8, 8)
    assert load_array(tmp_path / "two.npz", key="signals").shape == (2, 1, 16)
    with pytest.raises(KeyError, match=r"'signals', 'images'|'images', 'signals'"):
        load_array(tmp_path / "two.npz", key="volumes")


def test_load_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_array(tmp_path / "missing.npy")
    (tmp_path / "data.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=r"\.npy or \.npz"):
        load_array(tmp_path / "data.txt")
    np.save(tmp_path / "a.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="key is only used"):
        load_array(tmp_path / "a.npy", key="x")
    with pytest.raises(ValueError, match="key is only used"):
        load_array(np.zeros((4, 4)), key="x")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="without pickle"):
        load_array(tmp_path / "obj.npy")
    with pytest.raises(TypeError, match="source must be"):
        load_array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "shape, layout, expected",
    [
        ((16,), None, (1, 1, 16)),
        ((8, 12), None, (1, 1, 8, 12)),  # a bare 2-D array is one 2-D field
        ((8, 12), "NL", (8, 1, 12)),
        ((8, 12), "field", (1, 1, 8, 12)),
        ((5, 1, 12), None, (5, 1, 12)),
        ((5, 3, 12), "NCL", (5, 3, 12)),
        ((5, 3, 12), "field", (1, 1, 5, 3, 12)),
        ((2, 1, 6, 7), None, (2, 1, 6, 7)),
        ((2, 2, 6, 7), "NCHW", (2, 2, 6, 7)),
        ((2, 1, 4, 5, 6), None, (2, 1, 4, 5, 6)),
        ((2, 1, 4, 5, 6), "NCDHW", (2, 1, 4, 5, 6)),
    ],
)
def test_load_layouts(shape, layout, expected):
    a = np.random.default_rng(0).random(shape)
    out = load_array(a, layout=layout)
    assert out.shape == expected and out.dtype == np.float32
    flat = out.reshape(out.shape[0], -1)
    assert np.all(flat.min(axis=1) == 0) and np.all(flat.max(axis=1) == 1)


@pytest.mark.parametrize(
    "a, kwargs, exc, match",
    [
        (np.zeros((5, 3, 12)), {}, ValueError, "ambiguous"),
        (np.zeros((2, 1, 2, 2, 2, 2)), {}, ValueError, "1-5 axes"),
        (np.zeros((4, 8)), {"layout": "NCL"}, ValueError, "layout='NCL' needs 3 axes"),
        (np.zeros((4, 1, 8)), {"layout": "NHWC"}, ValueError, "layout must be one of"),
        (np.zeros((4, 1, 8)), {"layout": "field"}, ValueError, "at least 2 samples"),
        (np.zeros((4, 1)), {"layout": "NL"}, ValueError, "at least 2 samples"),
        (np.zeros((3, 1, 1)), {}, ValueError, "at least 2 samples"),
        (np.zeros(0), {}, ValueError, "must not be empty"),
        (np.array([1.0, np.nan, 2.0]), {}, ValueError, "finite"),
        (np.array([1.0, np.inf, 2.0]), {}, ValueError, "finite"),
        (np.array([1 + 2j, 3j]), {}, TypeError, "real numeric"),
        (np.array(["a", "b"]), {}, TypeError, "real numeric"),
        (np.array([1e300, 1.0]), {"normalize": False}, ValueError, "float32"),
        (np.zeros((4, 4)), {"normalize": "yes"}, TypeError, "normalize must be a bool"),
    ],
)
def test_load_validation_errors(a, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_array(a, **kwargs)


def test_load_from_torch_and_integer_and_bool_data():
    t = torch.arange(24).reshape(2, 1, 12)
    out = load_array(t)
    assert out.dtype == np.float32 and out.shape == (2, 1, 12)
    np.testing.assert_allclose(out[0, 0], np.linspace(0, 1, 12), atol=1e-7)
    np.testing.assert_array_equal(
        load_array(np.array([[True, False], [False, True]]), normalize=False),
        [[[[1.0, 0.0], [0.0, 1.0]]]],
    )
    assert load_array(torch.rand(3, 3, dtype=torch.float64)).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# FieldDataset and split
# ---------------------------------------------------------------------------------------------


def test_field_dataset():
    data = gaussian_blobs(6, (8, 8), seed=0)
    ds = FieldDataset(data)
    assert len(ds) == 6 and ds.spatial_dims == 2 and ds.spatial_shape == (8, 8)
    assert ds.channels == 1
    item = ds[2]
    assert isinstance(item, torch.Tensor) and item.dtype == torch.float32
    assert item.shape == (1, 8, 8)
    np.testing.assert_array_equal(item.numpy(), data[2])
    np.testing.assert_array_equal(ds[-1].numpy(), data[-1])
    with pytest.raises(IndexError):
        ds[6]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 1, 8, 8)
    assert FieldDataset(torch.zeros(3, 2, 16, dtype=torch.float64))[0].dtype == torch.float32
    assert FieldDataset(np.zeros((3, 1, 4, 4, 4), dtype=np.int32))[0].shape == (1, 4, 4, 4)


@pytest.mark.parametrize(
    "data, exc, match",
    [
        (np.zeros((4, 16)), ValueError, "3-5 axes"),
        (np.zeros((0, 1, 16)), ValueError, "at least one sample"),
        (np.full((2, 1, 4), np.nan), ValueError, "finite"),
        ([[[0.0]]], TypeError, "data must be"),
    ],
)
def test_field_dataset_errors(data, exc, match):
    with pytest.raises(exc, match=match):
        FieldDataset(data)


def test_split_is_deterministic_disjoint_and_complete():
    data = np.arange(50, dtype=np.float32)[:, None, None] * np.ones((1, 1, 4), np.float32)
    train, val = split(data, val_fraction=0.2, seed=3)
    assert train.shape == (40, 1, 4) and val.shape == (10, 1, 4)
    ids_t, ids_v = train[:, 0, 0].astype(int), val[:, 0, 0].astype(int)
    assert set(ids_t).isdisjoint(ids_v) and set(ids_t) | set(ids_v) == set(range(50))
    assert np.all(np.diff(ids_t) > 0) and np.all(np.diff(ids_v) > 0)  # original order kept
    t2, v2 = split(data, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(val, v2)
    np.testing.assert_array_equal(train, t2)
    _, v3 = split(data, val_fraction=0.2, seed=4)
    assert not np.array_equal(val, v3)


def test_split_edge_cases_and_torch():
    data = np.arange(5)[:, None]
    train, val = split(data, val_fraction=0.0)
    assert train.shape == (5, 1) and val.shape == (0, 1)
    train, val = split(data, val_fraction=0.01)
    assert val.shape[0] == 1  # at least one held out
    train, val = split(data, val_fraction=0.99)
    assert train.shape[0] == 1  # at least one kept for training
    t = torch.arange(10).reshape(10, 1)
    tt, tv = split(t, val_fraction=0.3, seed=1)
    assert isinstance(tt, torch.Tensor) and tv.shape == (3, 1)
    nt, nv = split(t.numpy(), val_fraction=0.3, seed=1)
    np.testing.assert_array_equal(tv.numpy(), nv)
    np.testing.assert_array_equal(tt.numpy(), nt)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split(data, val_fraction=1.0)
    with pytest.raises(ValueError, match="val_fraction"):
        split(data, val_fraction=-0.1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        split(data[:1], val_fraction=0.5)
    with pytest.raises(TypeError, match="dataset_array"):
        split([1, 2, 3])
