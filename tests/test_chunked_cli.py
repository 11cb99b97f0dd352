"""`dsl-explore compare`, `bench chunked` and the chunked path on a dask.distributed cluster."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from dsl_explore import chunked  # noqa: E402
from dsl_explore.cli import main  # noqa: E402
from dsl_explore.counting import sign_mismatch_count  # noqa: E402
from dsl_explore.critical import critical_points, mismatched_critical_points  # noqa: E402
from dsl_explore.loss import directional_sign_loss  # noqa: E402


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random((10, 12, 9)).astype(np.float32)
    x = (y + 0.3 * rng.random(y.shape)).astype(np.float32)
    zy = zarr.create_array(tmp_path / "target.zarr", shape=y.shape, chunks=(4, 5, 9),
                           dtype=y.dtype)
    zy[:] = y
    np.save(tmp_path / "recon.npy", x)
    np.savez(tmp_path / "recon.npz", volume=x)
    return tmp_path, x, y


def test_compare_writes_summary_and_maps(pair, capsys):
    tmp, x, y = pair
    out = tmp / "out"
    assert main(["compare", str(tmp / "target.zarr"), str(tmp / "recon.npy"), "--out", str(out),
                 "--chunk", "4"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err  # the progress bar, on stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["shape"] == [10, 12, 9] and s["dims"] == [0, 1, 2]
    assert s["dtype"] == {"target": "float32", "recon": "float32"}
    assert s["chunks"]["chunk_shape"] == [4, 4, 4]
    want = sign_mismatch_count(x, y, dims=(0, 1, 2), per_axis=True)
    assert s["sign_mismatch"]["per_axis"] == want.tolist()
    assert s["dsl"]["value"] == pytest.approx(float(directional_sign_loss(x, y, dims=(0, 1, 2))),
                                              rel=1e-5)
    m = mismatched_critical_points(x, y)
    cp = s["critical_points"]
    assert (cp["lost"], cp["spurious"], cp["changed"]) == (m.n_lost, m.n_spurious, m.n_changed)
    maps = zarr.open_group(str(out / "maps.zarr"), mode="r")
    np.testing.assert_array_equal(maps["labels_target"][:], critical_points(y))
    np.testing.assert_array_equal(maps["labels_recon"][:], critical_points(x))
    assert s["betti"] is None
    assert [p.name for p in tmp.iterdir() if p.name.startswith(".")] == []  # no temp dirs left


def test_compare_npz_no_progress_and_betti_downsample(pair, capsys):
    tmp, _, _ = pair
    out = tmp / "out"
    assert main(["compare", str(tmp / "target.zarr"), str(tmp / "recon.npz"), "--out", str(out),
                 "--no-progress", "--betti-downsample", "2"]) == 0
    assert "%" not in capsys.readouterr().err
    betti = json.loads((out / "summary.json").read_text())["betti"]
    assert betti["downsample"] == 2 and betti["shape"] == [5, 6, 4]
    assert "downsampled" in betti["caveat"]


def test_compare_refuses_betti_that_would_not_fit(pair, capsys, monkeypatch):
    from dsl_explore.chunked import compare as compare_mod

    monkeypatch.setattr(compare_mod, "_available_bytes", lambda: 1000)
    tmp, _, _ = pair
    out = tmp / "out"
    assert main(["compare", str(tmp / "target.zarr"), str(tmp / "recon.npy"), "--out", str(out),
                 "--no-progress", "--betti"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--betti-downsample" in err and "GiB" in err
    assert not out.exists() and [p.name for p in tmp.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("case", ["shape", "unreadable", "non_numeric", "missing", "not_empty"])
def test_compare_bad_input_is_one_line_exit_2(pair, capsys, case):
    tmp, x, _ = pair
    recon = tmp / "recon.npy"
    if case == "shape":
        np.save(recon, x[:-1])
    elif case == "unreadable":
        recon.write_bytes(b"not a numpy file")
    elif case == "non_numeric":
        np.save(recon, np.array(["a", "b"]))
    elif case == "missing":
        recon = tmp / "nope.zarr"
    out = tmp / "out"
    if case == "not_empty":
        out.mkdir()
        (out / "keep").write_text("x")
    code = main(["compare", str(tmp / "target.zarr"), str(recon), "--out", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("dsl-explore: error: ") and err.count("\n") == 1, err
    expected = {"shape": "shape", "unreadable": "cannot be read", "non_numeric": "not numbers",
                "missing": "does not exist", "not_empty": "not empty"}[case]
    assert expected in err
    if case == "not_empty":
        assert (out / "keep").exists()
    else:
        assert not out.exists()


def test_bench_chunked_tiny(capsys):
    assert main(["bench", "chunked", "--size", "32", "--crop", "16", "--chunk", "16"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["size"] == 32 and r["crop"] == 16
    for side, n in (("chunked", 32**3), ("memory", 16**3)):
        assert r[side]["voxels"] == n
        assert r[side]["peak_rss_MiB"] > 0
        assert r[side]["count_voxels_per_s"] > 0 and r[side]["critical_axis_voxels_per_s"] > 0
    assert set(r["throughput_ratio"]) == {"count_memory_over_chunked",
                                          "critical_axis_memory_over_chunked"}


@pytest.fixture
def environ_restored():
    """Put ``os.environ`` back as it was after the test. A ``LocalCluster``'s nanny writes its
    ``distributed.nanny.pre-spawn-environ`` (``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``,
    ``OPENBLAS_NUM_THREADS=1``, ``MALLOC_TRIM_THRESHOLD_``) into the calling process' environment
    before it spawns a worker, and leaves it there (dask documents this). A subprocess that a
    later test starts in the same pytest worker would inherit them: the kill -9 test's child then
    ran its BLAS on one thread where the parent used two, and its losses differed in the last
    bits from the parent's uninterrupted run."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_same_calls_on_a_local_cluster(environ_restored):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, (9, 8, 7)).astype(np.float64)  # ties across blocks
    x = rng.integers(0, 3, (9, 8, 7)).astype(np.float64)
    dx, dy = da.from_array(x, chunks=(4, 3, 7)), da.from_array(y, chunks=(4, 3, 7))
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        count = chunked.sign_mismatch_count(dx, dy, dims=(0, 1, 2), per_axis=True)
        dsl = chunked.directional_sign_loss(dx, dy, dims=(0, 1, 2))
        labels = chunked.critical_points(dx, method="pl").compute()
        cm = chunked.mismatched_critical_points(dx, dy)
    np.testing.assert_array_equal(count, sign_mismatch_count(x, y, dims=(0, 1, 2), per_axis=True))
    np.testing.assert_allclose(dsl, directional_sign_loss(x, y, dims=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(labels, critical_points(x, method="pl"))
    want = mismatched_critical_points(x, y)
    np.testing.assert_array_equal(cm.spurious, want.spurious)
    np.testing.assert_array_equal(cm.lost_types, want.lost_types)
