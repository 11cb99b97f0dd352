"""Real data shipped by packages (dsl_explore.real_data): shapes, range, determinism, regions,
the missing-extra error, and that nothing touches the network."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dsl_explore.data import DATASET_KINDS, make_dataset
from dsl_explore.real_data import (
    MISSING_EXTRA_MESSAGE,
    REAL_SOURCES,
    REGIONS,
    MissingExtraError,
    real_dataset,
)
from dsl_explore.training.config import TrainingConfig
from dsl_explore.training.inputs import make_training_data

ROOT = Path(__file__).resolve().parents[1]
EXTRA = ("statsmodels", "skimage", "nilearn", "nibabel")
HAVE_EXTRA = all(importlib.util.find_spec(p) is not None for p in EXTRA)
needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason="needs the real extra")

CASES = [(1, 64, None), (2, 32, None), (3, 16, None), (2, 16, 1), (3, 8, 3)]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def _window_set(series: np.ndarray, size: int) -> np.ndarray:
    """Every window of ``series`` normalised to [0, 1] as real_dataset does, float32."""
    w = np.lib.stride_tricks.sliding_window_view(series, size)
    lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
    return ((w - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)


def _series_parts() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three statsmodels series as real_dataset reads them, split into (train, val)."""
    import statsmodels.datasets as sd

    co2 = sd.co2.load_pandas().data["co2"].to_numpy(dtype=np.float64)
    known = np.flatnonzero(np.isfinite(co2))
    co2 = np.interp(np.arange(co2.size), known, co2[known])
    sun = sd.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype=np.float64)
    nino = sd.elnino.load_pandas().data.drop(columns="YEAR").to_numpy(dtype=np.float64).ravel()
    out = {}
    for name, s in (("co2", co2), ("sunspots", sun), ("elnino", nino)):
        cut = s.size - int(np.ceil(s.size * 0.25))
        out[name] = (s[:cut], s[cut:])
    return out


# ---------------------------------------------------------------------------------------------
# shapes, range, determinism
# ---------------------------------------------------------------------------------------------


@needs_extra
@pytest.mark.parametrize(("dims", "size", "downsample"), CASES)
def test_shape_dtype_and_per_sample_range(dims, size, downsample):
    x = real_dataset(dims, 6, size, seed=3, downsample=downsample)
    assert x.shape == (6, 1, *(size,) * dims) and x.dtype == np.float32
    assert x.flags.c_contiguous
    flat = x.reshape(6, -1)
    np.testing.assert_array_equal(flat.min(axis=1), 0.0)
    np.testing.assert_array_equal(flat.max(axis=1), 1.0)
    # eligible windows have a range, so no sample is the constant 0.5 fill
    assert all(np.unique(row).size > 2 for row in flat)


@needs_extra
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_same_seed_same_array_distinct_seeds_differ(dims):
    size = {1: 64, 2: 32, 3: 8}[dims]
    a = real_dataset(dims, 8, size, seed=11)
    np.testing.assert_array_equal(a, real_dataset(dims, 8, size, seed=11))
    b = real_dataset(dims, 8, size, seed=12)
    assert not np.array_equal(a, b)
    # samples within one set differ too (drawn among thousands of windows)
    assert len({s.tobytes() for s in a}) == 8


@needs_extra
def test_non_cubic_size_and_downsample_change_the_windows():
    assert real_dataset(2, 2, (16, 24)).shape == (2, 1, 16, 24)
    a = real_dataset(2, 4, 16, seed=0, downsample=1)
    b = real_dataset(2, 4, 16, seed=0, downsample=4)
    assert not np.array_equal(a, b)


@needs_extra
def test_regions_draw_1d_windows_from_disjoint_parts():
    """Every "val" sample is a window of the last quarter of a series and of no window that
    lies in the first three quarters ("train"); and the other way round."""
    parts = _series_parts()
    size = 64
    train_w = np.concatenate([_window_set(t, size) for t, _ in parts.values()])
    val_w = np.concatenate([_window_set(v, size) for _, v in parts.values()])

    def rows_in(samples: np.ndarray, windows: np.ndarray) -> np.ndarray:
        d = np.abs(samples[:, None, :] - windows[None, :, :]).max(axis=2)
        return d.min(axis=1) == 0

    val = real_dataset(1, 40, size, seed=2, region="val")[:, 0]
    train = real_dataset(1, 40, size, seed=2, region="train")[:, 0]
    assert rows_in(val, val_w).all() and not rows_in(val, train_w).any()
    assert rows_in(train, train_w).all() and not rows_in(train, val_w).any()
    assert REGIONS == ("all", "train", "val")


@needs_extra
def test_make_dataset_and_training_config_take_real():
    assert "real" in DATASET_KINDS
    np.testing.assert_array_equal(make_dataset("real", 3, 64, seed=4),
                                  real_dataset(1, 3, 64, seed=4))
    np.testing.assert_array_equal(
        make_dataset("real", 2, (8, 8, 8), seed=4, downsample=3),
        real_dataset(3, 2, 8, seed=4, downsample=3),
    )
    cfg = TrainingConfig(data="real", spatial_dims=2, size=16, n_samples=10, data_seed=5)
    train, val = make_training_data(cfg)
    assert train.shape == (8, 1, 16, 16) and val.shape == (2, 1, 16, 16)
    # a config draws training and validation windows from disjoint regions of every source
    np.testing.assert_array_equal(train, real_dataset(2, 8, 16, seed=10, region="train"))
    np.testing.assert_array_equal(val, real_dataset(2, 2, 16, seed=11, region="val"))
    cfg3 = TrainingConfig(data="real", spatial_dims=3, size=8, n_samples=4,
                          data_options={"region": "train"})
    assert make_training_data(cfg3)[0].shape[1:] == (1, 8, 8, 8)


def test_sources_name_files_in_the_installed_packages():
    assert set(REAL_SOURCES) == {1, 2, 3}
    if not HAVE_EXTRA:
        pytest.skip("needs the real extra")
    for rel in REAL_SOURCES[2]:
        assert (_package_dir("skimage") / rel.removeprefix("skimage/")).is_file(), rel
    (rel,) = REAL_SOURCES[3]
    assert (_package_dir("nilearn") / rel.removeprefix("nilearn/")).is_file()
    for name in REAL_SOURCES[1]:
        module = name.removeprefix("statsmodels.datasets.")
        assert list((_package_dir("statsmodels") / "datasets" / module).glob("*.csv")), name


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((0, 2, 8), {}, ValueError, "dims must be an int in [1, 3], got 0"),
        ((4, 2, 8), {}, ValueError, "dims must be an int in [1, 3], got 4"),
        ((2, 0, 8), {}, ValueError, "n must be an int >= 1, got 0"),
        ((2, 2, 1), {}, ValueError, "size must be an int or 2 ints >= 2"),
        ((2, 2, (8, 8, 8)), {}, ValueError, "size must be an int or 2 ints >= 2"),
        ((2, 2, "8"), {}, TypeError, "size must be an int or a tuple of 2 ints"),
        ((2, 2, 8), {"downsample": 0}, ValueError, "downsample must be an int >= 1, got 0"),
        ((2, 2, 8), {"region": "test"}, ValueError, "region must be one of 'all', 'train'"),
        ((2, 2, 8), {"seed": -1}, ValueError, "seed must be an int >= 0, got -1"),
    ],
)
def test_bad_arguments_name_the_argument(args, kwargs, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        real_dataset(*args, **kwargs)


@needs_extra
def test_a_window_larger_than_every_source_is_refused():
    with pytest.raises(ValueError, match=r"fits no eligible window of the 1-D real sources"):
        real_dataset(1, 2, 4000)
    with pytest.raises(ValueError, match=r"region 'val'.*lower size or downsample"):
        real_dataset(3, 2, 32, region="val")


@pytest.mark.parametrize(("dims", "module"), [(1, "statsmodels"), (2, "skimage"),
                                              (3, "nilearn"), (3, "nibabel")])
def test_missing_package_names_the_extra(monkeypatch, dims, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    with pytest.raises(MissingExtraError) as info:
        real_dataset(dims, 2, 8)
    msg = str(info.value)
    assert isinstance(info.value, ImportError)
    assert msg.startswith(MISSING_EXTRA_MESSAGE) and "\n" not in msg
    assert "pip install 'dsl-explore[real]'" in msg
    dist = {"skimage": "scikit-image"}.get(module, module)
    assert msg.endswith(f"({dist} is not installed)")


def test_missing_extra_message_is_the_documented_line():
    assert MISSING_EXTRA_MESSAGE == (
        "real data needs the optional packages statsmodels, scikit-image, nilearn, nibabel: "
        "pip install 'dsl-explore[real]'"
    )


# ---------------------------------------------------------------------------------------------
# no network
# ---------------------------------------------------------------------------------------------


@needs_extra
def test_no_network_access_in_a_fresh_process():
    """A fresh interpreter (no cached sources) with every socket connection and name lookup
    refused reads all three dimensionalities."""
    code = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise RuntimeError("network access attempted")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from dsl_explore.real_data import real_dataset
        shapes = [real_dataset(d, 3, s, seed=1).shape for d, s in ((1, 64), (2, 32), (3, 16))]
        print(shapes)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[(3, 1, 64), (3, 1, 32, 32), (3, 1, 16, 16, 16)]"
