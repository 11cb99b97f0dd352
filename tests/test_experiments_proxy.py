"""Tests of the proxy study: the decoupling perturbations (dsl_explore.experiments.perturb) and
the study's results and files (dsl_explore.experiments.proxy, proxy_report)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl_explore import cli
from dsl_explore.counting import sign_mismatch_count
from dsl_explore.critical import mismatched_critical_points
from dsl_explore.data import make_dataset
from dsl_explore.experiments.perturb import (
    FIXED_MSE_VARIANTS,
    FIXED_TOPOLOGY_VARIANTS,
    PERTURBATIONS,
    fixed_mse,
    monotone,
)
from dsl_explore.experiments.proxy import DECOUPLING, PROXY_METRICS, TOPOLOGY_METRICS, proxy
from dsl_explore.experiments.stats import partial_spearman, spearman

_TARGETS = [("blobs", (32, 32)), ("grf", (32, 32)), ("sinusoids", 64), ("blobs", (12, 12, 12)),
            ("grf", (12, 12, 12))]


def _targets():
    for name, shape in _TARGETS:
        for y in make_dataset(name, 3, shape, seed=4)[:, 0].astype(np.float64):
            yield name, y


# values on a 2^-16 grid in [0, 1] (like normalised float32 data): distinct values stay distinct
# under every map, and no difference is below float64 rounding
_fields = st.integers(1, 3).flatmap(lambda d: st.lists(
    st.integers(0, 2**16), min_size=4**d, max_size=4**d).map(
        lambda v, d=d: np.array(v, np.float64).reshape((4,) * d) / 2**16))


@pytest.mark.parametrize(("kind", "sigma"), FIXED_MSE_VARIANTS)
def test_fixed_mse_family_has_the_same_mse_everywhere(kind, sigma):
    rng = np.random.default_rng(0)
    for rms in (0.005, 0.02, 0.1):
        for _, y in _targets():
            x = fixed_mse(y, kind, sigma, rms=rms, rng=rng)
            assert x.shape == y.shape and x.dtype == np.float64
            # equal to float64 rounding: a few ulp of rms^2
            assert np.mean((x - y) ** 2) == pytest.approx(rms**2, rel=1e-12, abs=0)


@settings(max_examples=60, deadline=None)
@given(_fields, st.sampled_from(FIXED_MSE_VARIANTS), st.floats(1e-3, 0.5),
       st.integers(0, 2**32 - 1))
def test_fixed_mse_property(y, variant, rms, seed):
    kind, sigma = variant
    if np.ptp(y) == 0 and kind == "contrast":
        with pytest.raises(ValueError, match="error field of this target is 0"):
            fixed_mse(y, kind, sigma, rms=rms, rng=np.random.default_rng(seed))
        return
    x = fixed_mse(y, kind, sigma, rms=rms, rng=np.random.default_rng(seed))
    assert np.mean((x - y) ** 2) == pytest.approx(rms**2, rel=1e-12, abs=0)
    if kind == "contrast":  # the topology-keeping error: no sign changes
        assert int(sign_mismatch_count(x, y, dims=tuple(range(y.ndim)))) == 0


def test_fixed_mse_roughness_changes_topology():
    # the family's point: at one MSE the roughest field breaks far more signs than the smoothest
    y = make_dataset("blobs", 1, (32, 32), seed=0)[0, 0].astype(np.float64)
    rng = np.random.default_rng(0)
    counts = {k: int(sign_mismatch_count(fixed_mse(y, k, s, rms=0.02, rng=rng), y, dims=(0, 1)))
              for k, s in FIXED_MSE_VARIANTS if k != "smooth"}
    assert counts["contrast"] == 0 < counts["white"] < counts["checker"]


@pytest.mark.parametrize(("kind", "param"), FIXED_TOPOLOGY_VARIANTS)
def test_fixed_topology_family_has_count_zero_exactly(kind, param):
    for _, y in _targets():
        x = monotone(y, kind, param)
        dims = tuple(range(y.ndim))
        assert int(sign_mismatch_count(x, y, dims=dims)) == 0
        cm = mismatched_critical_points(x, y)
        assert cm.n_spurious + cm.n_lost + cm.n_changed == 0
        assert np.mean((x - y) ** 2) > 0  # but the values did move


@settings(max_examples=60, deadline=None)
@given(_fields, st.sampled_from(FIXED_TOPOLOGY_VARIANTS))
def test_fixed_topology_property(y, variant):
    kind, param = variant
    if np.ptp(y) == 0 and kind == "gamma":
        with pytest.raises(ValueError, match="constant"):
            monotone(y, kind, param)
        return
    x = monotone(y, kind, param)
    assert int(sign_mismatch_count(x, y, dims=tuple(range(y.ndim)))) == 0


def test_fixed_topology_mse_grows_with_the_parameter():
    y = make_dataset("blobs", 1, (32, 32), seed=0)[0, 0].astype(np.float64)
    for kind in ("offset", "contrast", "gamma"):
        mses = [np.mean((monotone(y, k, p) - y) ** 2) for k, p in FIXED_TOPOLOGY_VARIANTS
                if k == kind]
        assert mses == sorted(mses) and mses[0] < mses[-1]


def test_decoupling_perturbations_reject_bad_arguments():
    y = np.linspace(0.0, 1.0, 8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rms must be a finite number > 0"):
        fixed_mse(y, "white", 0.0, rms=0.0, rng=rng)
    with pytest.raises(ValueError, match="kind must be one of"):
        fixed_mse(y, "pink", 0.0, rms=0.1, rng=rng)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        fixed_mse(y, "smooth", 0.0, rms=0.1, rng=rng)
    with pytest.raises(ValueError, match="param must be > 0"):
        monotone(y, "gamma", -1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        monotone(y, "log", 1.0)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("proxy")
    return out, proxy(quick=True, out_dir=out)


def test_quick_study_rows_and_keys(quick):
    out, res = quick
    for key in ("metrics", "spearman", "pvalues", "per_family", "n_pairs", "rows",
                "correlations", "decoupling", "findings", "settings", "wall_seconds"):
        assert key in res
    n = res["settings"]["n_targets"]
    assert n == 4 and res["settings"]["size"] == 16 and res["settings"]["n_resamples"] == 200
    assert res["n_pairs"] == n * sum(len(v) for v in PERTURBATIONS.values())
    fams = [r["family"] for r in res["rows"]]
    assert fams.count("fixed_mse") == n * len(FIXED_MSE_VARIANTS)
    assert fams.count("fixed_topology") == n * len(FIXED_TOPOLOGY_VARIANTS)
    fm = [r for r in res["rows"] if r["family"] == "fixed_mse"]
    rms = res["settings"]["fixed_rms"]
    np.testing.assert_allclose([r["mse"] for r in fm], rms**2, rtol=1e-12, atol=0)
    ft = [r for r in res["rows"] if r["family"] == "fixed_topology"]
    assert all(r["count"] == 0 and r["critical_mismatch"] == 0 for r in ft)
    assert set(res["per_family"]) == set(PERTURBATIONS) | set(DECOUPLING)
    saved = json.loads((out / "proxy.json").read_text())
    assert saved["per_family"]["fixed_mse"]["mse"] is None  # constant MSE: no rank, null in JSON
    assert saved["n_pairs"] == res["n_pairs"] and len(saved["rows"]) == len(res["rows"])


def test_quick_study_correlations_are_those_of_its_rows(quick):
    _, res = quick
    classic = [r for r in res["rows"] if r["family"] in PERTURBATIONS]
    col = {m: np.array([r[m] for r in classic], np.float64) for m in PROXY_METRICS}
    pooled = res["correlations"]["pooled"]
    assert pooled["n_targets"] == 4 and pooled["n_pairs"] == len(classic)
    for m in TOPOLOGY_METRICS:
        iv = pooled["dsl"][m]
        assert iv["value"] == pytest.approx(spearman(col["dsl"], col[m]), abs=1e-12)
        assert iv["low"] <= iv["value"] <= iv["high"]
        assert pooled["dsl_given_mse"][m]["value"] == pytest.approx(
            partial_spearman(col["dsl"], col[m], col["mse"]), abs=1e-12)
        assert pooled["mse_given_dsl"][m]["value"] == pytest.approx(
            partial_spearman(col["mse"], col[m], col["dsl"]), abs=1e-12)
    # the matrix (scipy) and the intervals (stats) agree on the pooled rho
    assert res["spearman"][0][1] == pytest.approx(pooled["dsl"]["count"]["value"], abs=1e-12)
    # undefined where a score is constant: MSE at fixed MSE, the count under monotone maps
    assert math.isnan(res["correlations"]["fixed_mse"]["dsl"]["mse"]["value"])
    assert math.isnan(res["correlations"]["fixed_topology"]["dsl"]["count"]["value"])
    assert "dsl_given_mse" not in res["correlations"]["fixed_mse"]


def test_quick_study_decoupling_summaries(quick):
    _, res = quick
    fm = res["decoupling"]["fixed_mse"]["by_variant"]
    expected = [(k, float(sigma)) for k, sigma in FIXED_MSE_VARIANTS]
    assert [(v["variant"], v["level"]) for v in fm] == expected
    contrast = fm[0]
    assert contrast["count"] == 0 and math.isnan(contrast["dsl_within"]["count"]["value"])
    checker = [r for r in res["rows"] if r["variant"] == "checker"]
    assert fm[-1]["dsl_within"]["count"]["value"] == pytest.approx(
        spearman([r["dsl"] for r in checker], [r["count"] for r in checker]), abs=1e-12)
    ft = res["decoupling"]["fixed_topology"]
    offsets = [r for r in res["rows"]
               if r["family"] == "fixed_topology" and r["variant"] == "offset"]
    assert max(r["dsl"] for r in offsets) < 1e-12  # unchanged differences, up to rounding
    assert "offset 0.05" in res["findings"]["fixed_topology"]
    classic_mse = [r["mse"] for r in res["rows"] if r["family"] in PERTURBATIONS]
    pct = 100 * np.mean(np.array(classic_mse) <= ft["range"]["mse"][1])
    assert ft["classic_percentile_of_max"]["mse"] == pytest.approx(pct)
    assert f"{pct:.0f}% of the classic pairs" in res["findings"]["fixed_topology"]


def test_quick_study_files(quick):
    out, res = quick
    md = (out / "proxy.md").read_text()
    assert "| dsl |" in md and "## Partial correlations" in md
    for text in res["findings"].values():
        assert text in md
    assert "no sign of any difference changes" in res["findings"]["fixed_topology"]
    rho = res["correlations"]["fixed_mse"]["dsl"]["count"]["value"]
    assert f"{rho:.2f}" in res["findings"]["fixed_mse"]
    rows = list(csv.DictReader((out / "proxy.csv").open()))
    families = {r["family"] for r in rows}
    assert families == {"pooled"} | set(PERTURBATIONS) | set(DECOUPLING)
    line = next(r for r in rows if (r["family"], r["x"], r["y"], r["given"])
                == ("pooled", "dsl", "count", "mse"))
    assert float(line["rho"]) == pytest.approx(
        res["correlations"]["pooled"]["dsl_given_mse"]["count"]["value"])


def test_study_is_deterministic_per_seed(tmp_path, quick):
    _, res = quick
    again = proxy(quick=True, out_dir=tmp_path)
    assert again["correlations"] == res["correlations"] or json.dumps(
        again["correlations"]) == json.dumps(res["correlations"])  # nan != nan in ==
    assert again["rows"] == res["rows"]


@pytest.mark.parametrize(("dims", "data", "size"), [(1, "sinusoids", 32), (3, "blobs", 8)])
def test_study_in_1d_and_3d(tmp_path, dims, data, size):
    res = proxy(n_targets=2, size=size, spatial_dims=dims, data=data, n_resamples=20,
                out_dir=tmp_path)
    assert res["settings"]["spatial_dims"] == dims
    assert all(r["count"] == 0 for r in res["rows"] if r["family"] == "fixed_topology")
    assert (tmp_path / "proxy.md").is_file()


def test_study_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_resamples must be an int >= 1"):
        proxy(n_targets=2, n_resamples=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="fixed_rms must be a finite number > 0"):
        proxy(n_targets=2, fixed_rms=-0.1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        proxy(quick=True, size=4, out_dir=tmp_path)
    with pytest.raises(ValueError, match="spatial_dims"):
        proxy(quick=True, spatial_dims=4, out_dir=tmp_path)
    assert not (tmp_path / "proxy.json").exists()


def test_cli_proxy_quick_and_knobs(tmp_path, capsys):
    assert cli.main(["proxy", "--quick", "--n-targets", "2", "--n-resamples", "10",
                     "--fixed-rms", "0.05", "--out", str(tmp_path)]) == 0
    assert "Fixed MSE, topology varies" in capsys.readouterr().out
    saved = json.loads((tmp_path / "proxy.json").read_text())
    assert saved["settings"]["n_targets"] == 2 and saved["settings"]["size"] == 16
    assert saved["settings"]["n_resamples"] == 10 and saved["settings"]["fixed_rms"] == 0.05
    assert cli.main(["proxy", "--quick", "--n-resamples", "0", "--out", str(tmp_path)]) == 2
    assert "n_resamples" in capsys.readouterr().err
