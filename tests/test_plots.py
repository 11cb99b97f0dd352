"""Tests for dsl_explore.plots: every figure kind from small arrays, checked against the core.

Headless: plotly figures are inspected as objects; the pyvista test renders off screen and the
PNG export of a plotly figure is skipped without Chromium.
"""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import torch

go = pytest.importorskip("plotly.graph_objects")

from dsl_explore.counting import sign_mismatch_count, sign_mismatch_map  # noqa: E402
from dsl_explore.critical import mismatched_critical_points  # noqa: E402
from dsl_explore.loss import SURROGATES, directional_sign_loss  # noqa: E402
from dsl_explore.plots import (  # noqa: E402
    find_traces,
    k_sweep,
    plot_1d,
    plot_2d,
    plot_history,
    plot_k_sweep,
    plot_volume_plotly,
    style,
    trace_index,
)

KINDS = ("matched", "spurious", "lost", "changed")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pair_1d(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, n)
    target = 0.5 + 0.4 * np.sin(t) + 0.05 * rng.standard_normal(n)
    recon = 0.5 + 0.35 * np.sin(t + 0.2) + 0.05 * rng.standard_normal(n)
    return target, recon


def pair_nd(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.random(shape)
    recon = target + 0.3 * rng.standard_normal(shape)
    return target, recon


def marker_coords(fig, kind: str, panel: str | None = None, cols=("x",)) -> np.ndarray:
    meta = {"role": "critical", "kind": kind}
    if panel is not None:
        meta["panel"] = panel
    (tr,) = find_traces(fig, **meta)
    vals = [np.asarray([v for v in getattr(tr, c) if v is not None]) for c in cols]
    return np.stack(vals, axis=1) if vals[0].size else np.zeros((0, len(cols)), dtype=np.int64)


def sorted_rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64).reshape(len(a), -1)
    return a[np.lexsort(a.T[::-1])] if len(a) else a


# --------------------------------------------------------------------------------------------
# style


def test_style_kinds_have_distinct_colours_and_shapes():
    colors = {style.KIND_STYLES[k].color for k in KINDS}
    symbols = {style.KIND_STYLES[k].symbol for k in KINDS}
    glyphs = {style.KIND_STYLES[k].glyph for k in KINDS}
    assert len(colors) == len(symbols) == len(glyphs) == 4
    assert colors <= set(style.OKABE_ITO.values())
    assert style.TARGET_COLOR != style.RECON_COLOR
    # every symbol exists in plotly 2D and 3D
    for sym in symbols:
        go.Scatter(marker={"symbol": sym})
        go.Scatter3d(marker={"symbol": sym})
    with pytest.raises(ValueError, match="kind"):
        style.marker_style("bogus")


# --------------------------------------------------------------------------------------------
# 1D


@pytest.mark.parametrize("method", ["axis", "pl"])
def test_plot_1d_markers_equal_core(method):
    target, recon = pair_1d()
    fig = plot_1d(target, recon, k=20.0, method=method)
    cm = mismatched_critical_points(recon, target, method=method)
    for kind in KINDS:
        got = marker_coords(fig, kind, cols=("x",))[:, 0]
        want = getattr(cm, kind)[:, 0]
        np.testing.assert_array_equal(np.sort(got), np.sort(want))
        (tr,) = find_traces(fig, role="critical", kind=kind)
        ys = np.asarray([v for v in tr.y if v is not None], dtype=float)
        src = target if kind == "lost" else recon
        np.testing.assert_allclose(ys, src[got])
        assert tr.name.startswith(f"{kind} ({len(want)}")
        assert tr.marker.symbol == style.KIND_STYLES[kind].symbol
        assert tr.marker.color == style.KIND_STYLES[kind].color


def test_plot_1d_content():
    target, recon = pair_1d()
    k, w = 15.0, 0.7
    fig = plot_1d(target, recon, k=k, weights=(w,), surrogate="erf")
    (tl,) = find_traces(fig, role="line", panel="target")
    (rl,) = find_traces(fig, role="line", panel="recon")
    np.testing.assert_allclose(tl.y, target)
    np.testing.assert_allclose(rl.y, recon)
    assert tl.line.color == style.TARGET_COLOR and rl.line.color == style.RECON_COLOR
    # sign strips: exactly np.sign(np.diff(...)), rows target then recon
    (sign,) = find_traces(fig, role="sign")
    z = np.asarray(sign.z)
    np.testing.assert_array_equal(z[0], np.sign(np.diff(target)))
    np.testing.assert_array_equal(z[1], np.sign(np.diff(recon)))
    np.testing.assert_allclose(sign.x, np.arange(len(target) - 1) + 0.5)
    # DSL terms sum to DSL(reduction="sum"); the exact bars to the weighted count
    (dsl,) = find_traces(fig, role="dsl")
    want = directional_sign_loss(recon, target, k=k, weights=(w,), dims=0, surrogate="erf",
                                 reduction="sum")
    np.testing.assert_allclose(np.sum(dsl.y), float(want), rtol=1e-10)
    assert dsl.type == "bar" and "k=15" in dsl.name
    (exact,) = find_traces(fig, role="exact")
    assert np.sum(exact.y) == pytest.approx(float(sign_mismatch_count(recon, target, dims=0)) * w)
    # labelled axes, legend, template, title
    assert fig.layout.xaxis3.title.text == "index"
    assert fig.layout.yaxis.title.text == "value (normalised)"
    assert fig.layout.template.layout.paper_bgcolor is not None
    assert "exact count" in fig.layout.title.text
    assert fig.layout.width and fig.layout.height


def test_plot_1d_long_signal_uses_lines_and_accepts_torch():
    target, recon = pair_1d(n=1000)
    fig = plot_1d(torch.from_numpy(target)[None, None], torch.from_numpy(recon)[None, None])
    (dsl,) = find_traces(fig, role="dsl")
    assert dsl.type == "scatter" and dsl.fill == "tozeroy"
    assert len(dsl.y) == 999


def test_plot_1d_empty_kind_stays_in_legend():
    target = np.array([0.0, 1.0, 2.0, 3.0])
    fig = plot_1d(target, target * 2)
    (changed,) = find_traces(fig, role="critical", kind="changed")
    assert changed.name == "changed (0)"
    assert list(changed.x) == [None]


@pytest.mark.parametrize(
    ("target", "recon", "kwargs", "err"),
    [
        (np.zeros(5), np.zeros(6), {}, ValueError),
        (np.zeros((3, 4)), np.zeros((3, 4)), {}, ValueError),
        (np.array([0.0, np.nan, 1.0]), np.zeros(3), {}, ValueError),
        (np.zeros(1), np.zeros(1), {}, ValueError),
        (np.zeros(4), np.zeros(4), {"k": -1.0}, ValueError),
        (np.zeros(4), np.zeros(4), {"surrogate": "relu"}, ValueError),
        (np.zeros(4), np.zeros(4), {"weights": (1.0, 2.0)}, ValueError),
        ([0.0, 1.0], [0.0, 1.0], {}, TypeError),
        (np.zeros(4, dtype=complex), np.zeros(4), {}, TypeError),
    ],
)
def test_plot_1d_bad_inputs(target, recon, kwargs, err):
    with pytest.raises(err):
        plot_1d(target, recon, **kwargs)


# --------------------------------------------------------------------------------------------
# 2D


def test_plot_2d_weighted_content():
    target, recon = pair_nd((9, 13))
    k, w = 12.0, (1.0, 0.5)
    fig = plot_2d(target, recon, k=k, weights=w, surrogate="softsign")
    heat = [t.meta["role"] for t in fig.data if t.type == "heatmap"]
    assert heat == ["field", "field", "exact", "dsl"]
    (ft,) = find_traces(fig, role="field", panel="target")
    (fr,) = find_traces(fig, role="field", panel="recon")
    np.testing.assert_allclose(ft.z, target.astype(np.float32))
    np.testing.assert_allclose(fr.z, recon.astype(np.float32))
    assert ft.coloraxis == fr.coloraxis == "coloraxis"
    (ex,) = find_traces(fig, role="exact")
    (dsl,) = find_traces(fig, role="dsl")
    assert ex.coloraxis == dsl.coloraxis == "coloraxis2"
    count_w = float(sign_mismatch_count(recon, target, dims=(0, 1), weights=w))
    assert float(np.sum(ex.z, dtype=np.float64)) == pytest.approx(count_w)
    want = float(directional_sign_loss(recon, target, k=k, weights=w, dims=(0, 1),
                                       surrogate="softsign", reduction="sum"))
    assert float(np.sum(dsl.z, dtype=np.float64)) == pytest.approx(want, rel=1e-5)
    # the exact map is the weighted half incidence of sign_mismatch_map
    m = sign_mismatch_map(recon, target, dims=(0, 1))
    half = np.zeros(target.shape)
    for a, e in enumerate(m.per_axis):
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[a], hi[a] = slice(0, -1), slice(1, None)
        half[tuple(lo)] += 0.5 * w[a] * e
        half[tuple(hi)] += 0.5 * w[a] * e
    np.testing.assert_allclose(ex.z, half)


def test_plot_2d_markers_equal_core():
    target, recon = pair_nd((11, 8), seed=3)
    fig = plot_2d(target, recon)
    cm = mismatched_critical_points(recon, target)
    panels = {"target": ("matched", "lost", "changed"),
              "recon": ("matched", "spurious", "changed")}
    for panel, kinds in panels.items():
        for kind in kinds:
            got = marker_coords(fig, kind, panel, cols=("y", "x"))  # (row, col)
            np.testing.assert_array_equal(sorted_rows(got), sorted_rows(getattr(cm, kind)))
        assert not find_traces(fig, role="critical", panel=panel,
                               kind="spurious" if panel == "target" else "lost")
    # one legend entry per kind
    legend = [t.name.split(" ")[0] for t in fig.data if t.showlegend is not False
              and (t.meta or {}).get("role") == "critical"]
    assert sorted(legend) == sorted(KINDS)


def test_plot_2d_axes_shared_square_and_labelled():
    target, recon = pair_nd((6, 10))
    fig = plot_2d(target, recon)
    # every panel's axes match one pair of axes (zoom one panel, zoom all)
    xs = {fig.layout[f"xaxis{i}"].matches or f"x{i}" for i in ("", "2", "3", "4")}
    ys = {fig.layout[f"yaxis{i}"].matches or f"y{i}" for i in ("", "2", "3", "4")}
    assert len(xs) == 1 and len(ys) == 1
    for i in ("", "2", "3", "4"):
        assert fig.layout[f"yaxis{i}"].autorange == "reversed"
        assert fig.layout[f"yaxis{i}"].scaleanchor == f"x{i}"
    assert fig.layout.xaxis3.title.text == "axis 1 (index)"
    assert fig.layout.yaxis.title.text == "axis 0 (index)"
    assert fig.layout.coloraxis.colorbar.title.text == "value"


def test_plot_2d_per_axis_view():
    target, recon = pair_nd((7, 9), seed=1)
    k = 8.0
    fig = plot_2d(target, recon, k=k, view="per_axis", weights=(2.0, 1.0))
    m = sign_mismatch_map(recon, target, dims=(0, 1))
    for a in (0, 1):
        (ex,) = find_traces(fig, role="exact", axis=a)
        np.testing.assert_array_equal(np.asarray(ex.z), m.per_axis[a] * (2.0, 1.0)[a])
        (dsl,) = find_traces(fig, role="dsl", axis=a)
        assert np.asarray(dsl.z).shape == m.per_axis[a].shape
    # differences sit between the two pixels they join
    (ex0,) = find_traces(fig, role="exact", axis=0)
    np.testing.assert_allclose(ex0.y, np.arange(6) + 0.5)
    total = sum(float(np.sum(t.z, dtype=np.float64)) for t in find_traces(fig, role="dsl"))
    want = float(directional_sign_loss(recon, target, k=k, weights=(2.0, 1.0), dims=(0, 1),
                                       reduction="sum"))
    assert total == pytest.approx(want, rel=1e-5)


def test_plot_2d_downsamples_large_fields_but_not_markers():
    target, recon = pair_nd((40, 31))
    fig = plot_2d(target, recon, max_display=16)
    (ft,) = find_traces(fig, role="field", panel="target")
    assert np.asarray(ft.z).shape == (14, 11)  # ceil(40/3), ceil(31/3)
    (dsl,) = find_traces(fig, role="dsl")
    assert "1/3" in dsl.name
    cm = mismatched_critical_points(recon, target)
    got = marker_coords(fig, "lost", "target", cols=("y", "x"))
    np.testing.assert_array_equal(sorted_rows(got), sorted_rows(cm.lost))


def test_plot_2d_marker_cap():
    target, recon = pair_nd((30, 30))
    cm = mismatched_critical_points(recon, target)
    fig = plot_2d(target, recon, max_markers=5)
    (tr,) = find_traces(fig, role="critical", kind="spurious")
    assert len(tr.x) == 5
    assert tr.name == f"spurious ({cm.n_spurious}, 5 drawn)"


def test_plot_2d_bad_inputs():
    with pytest.raises(ValueError, match="2D"):
        plot_2d(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="view"):
        plot_2d(np.zeros((3, 3)), np.zeros((3, 3)), view="3d")
    with pytest.raises(ValueError, match="same shape"):
        plot_2d(np.zeros((3, 3)), np.zeros((3, 4)))


# --------------------------------------------------------------------------------------------
# k sweep


def test_k_sweep_values_and_limit():
    target, recon = pair_1d(n=30)
    ks = np.logspace(-1, 8, 10)
    sw = k_sweep(target, recon, ks=ks, surrogates=("tanh", "arctan"))
    for name in ("tanh", "arctan"):
        want = [float(directional_sign_loss(recon, target, k=k, dims=0, surrogate=name,
                                            reduction="sum")) for k in ks]
        np.testing.assert_allclose(sw.dsl[name], want)
    count = float(sign_mismatch_count(recon, target, dims=0))
    assert sw.count == count == sw.limit  # no zero differences in generic data
    # k -> infinity: tanh saturates exactly, arctan approaches slowly
    assert sw.dsl["tanh"][-1] == pytest.approx(count, abs=1e-9)
    assert abs(sw.dsl["arctan"][-1] - count) < 1e-3
    assert abs(sw.dsl["tanh"][0] - count) > 0.5


def test_k_sweep_zero_differences_limit_is_half():
    target = np.array([0.0, 1.0, 1.0, 2.0, 0.0])  # one flat step
    recon = np.array([0.0, 1.0, 1.5, 2.0, 0.0])
    sw = k_sweep(target, recon, ks=[1e9])
    assert sw.count == 1.0 and sw.limit == 0.5
    assert sw.dsl["tanh"][0] == pytest.approx(0.5)


def test_plot_k_sweep_figure():
    target, recon = pair_nd((12, 12))
    fig = plot_k_sweep(target, recon, surrogates=tuple(SURROGATES))
    assert [t.meta["surrogate"] for t in find_traces(fig, role="dsl")] == list(SURROGATES)
    (count,) = find_traces(fig, role="count")
    want = float(sign_mismatch_count(recon, target, dims=(0, 1)))
    assert list(count.y) == [want, want]
    assert fig.layout.xaxis.type == "log"
    assert "sharpness k" in fig.layout.xaxis.title.text
    assert len(find_traces(fig, role="dsl")[0].x) == 40


def test_k_sweep_bad_inputs():
    a = np.zeros(4)
    with pytest.raises(ValueError, match="ks"):
        k_sweep(a, a, ks=[0.0, 1.0])
    with pytest.raises(ValueError, match="surrogate"):
        k_sweep(a, a, surrogates=("relu",))
    with pytest.raises(TypeError):
        k_sweep(a, torch.zeros(4))


# --------------------------------------------------------------------------------------------
# history

HISTORY = {
    "steps": [{"step": i, "mse": 1.0 / (i + 1), "dsl": 0.5 / (i + 1),
               "total": 1.5 / (i + 1), "lr": 1e-3} for i in range(20)],
    "evals": [{"step": i, "count_rate": 0.3 - 0.01 * i, "spurious": 20 - i, "lost": 10,
               "changed": 2, "betti_total": 3.0 - 0.1 * i, "betti_0": 2.0, "betti_1": 1.0}
              for i in range(0, 20, 5)],
    "events": [{"step": 10, "kind": "set", "changes": {"lambda": 0.5}},
               {"step": 15, "kind": "pause"}],
}


def test_plot_history_content():
    fig = plot_history(HISTORY)
    keys = {(t.meta["role"], t.meta["key"]) for t in fig.data}
    assert {("loss", "mse"), ("loss", "dsl"), ("loss", "total")} <= keys
    assert ("loss", "lr") not in keys  # a setting, not a loss
    assert {("count_rate", "count_rate"), ("betti", "betti_total"), ("betti", "betti_0"),
            ("critical", "spurious"), ("critical", "lost"), ("critical", "changed")} <= keys
    (mse,) = [t for t in fig.data if t.meta["key"] == "mse"]
    assert list(mse.x) == list(range(20))
    assert fig.layout.yaxis.type == "log"
    # one vertical line per event through each of the 4 rows, labelled
    assert sorted({s.x0 for s in fig.layout.shapes}) == [10.0, 15.0]
    assert len(fig.layout.shapes) == 2 * 4
    texts = [a.text for a in fig.layout.annotations]
    assert "set: lambda=0.5" in texts and "pause" in texts
    assert fig.layout.xaxis4.title.text == "training step"
    (sp,) = [t for t in fig.data if t.meta["key"] == "spurious"]
    assert sp.line.color == style.KIND_STYLES["spurious"].color


@pytest.mark.parametrize(
    "history",
    [
        {},
        {"steps": []},
        {"steps": [{"step": 0}], "evals": None, "events": "oops"},
        {"steps": [None, "x", {"step": 1, "mse": "nan?"}, {"mse": 0.1}],
         "evals": [{"step": 2, "lost": None}], "events": [{"kind": "no step"}]},
    ],
)
def test_plot_history_tolerates_missing_keys(history):
    fig = plot_history(history)
    assert isinstance(fig, go.Figure)
    assert all(isinstance(t.meta, dict) for t in fig.data)


def test_plot_history_reads_columns_and_betti_per_dim():
    h = {
        "steps": {"step": [1, 2, 3], "mse": [0.3, 0.2, 0.1], "dsl": [0.5, 0.4, 0.3],
                  "total": [0.55, 0.4, 0.25], "lr": [1e-3] * 3, "lam": [0.5] * 3},
        "evals": {"step": [3], "val_mse": [0.12], "count_rate": [0.2], "spurious": [1.5],
                  "lost": [2.0], "changed": [0.0], "betti_total": [0.75],
                  "betti_per_dim": [[0.5, 0.25]]},
        "events": [{"step": 2, "event": "set", "changes": {"lam": 0.5}}],
    }
    fig = plot_history(h)
    keys = {t.meta["key"] for t in fig.data}
    assert {"mse", "dsl", "total", "val_mse", "count_rate", "betti_total", "betti_0",
            "betti_1", "spurious", "lost", "changed"} <= keys
    assert not keys & {"lr", "lam", "step"}
    (b1,) = [t for t in fig.data if t.meta["key"] == "betti_1"]
    assert list(b1.y) == [0.25]
    assert "set: lam=0.5" in [a.text for a in fig.layout.annotations]


def test_plot_history_of_a_real_training_run():
    training = pytest.importorskip("dsl_explore.training")
    cfg = training.TrainingConfig(spatial_dims=1, size=64, n_samples=24, steps=6, eval_every=3,
                                  batch_size=8, base_channels=4, lam=0.0, device="cpu")
    run = training.TrainingRun(cfg)
    run.set(lam=0.5)
    run.start().join()
    fig = plot_history(run.history)
    keys = {t.meta["key"] for t in fig.data}
    assert {"mse", "dsl", "total", "count_rate", "spurious", "betti_total"} <= keys
    (mse,) = [t for t in fig.data if t.meta["key"] == "mse"]
    assert list(mse.x) == [1, 2, 3, 4, 5, 6]
    assert any("lam=0.5" in str(a.text) for a in fig.layout.annotations)


def test_plot_history_marks_empty_rows_and_rejects_non_mapping():
    fig = plot_history({"steps": [{"step": 0, "mse": 1.0}]})
    assert sum(a.text == "no data" for a in fig.layout.annotations) == 3
    with pytest.raises(TypeError, match="mapping"):
        plot_history([1, 2, 3])


# --------------------------------------------------------------------------------------------
# 3D


def volume_pair(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(*(np.linspace(-1, 1, n),) * 3, indexing="ij"))
    target = np.exp(-4 * (g**2).sum(0))
    recon = target + 0.05 * rng.standard_normal(target.shape)
    return target, recon


@pytest.mark.parametrize("mode", ["isosurface", "volume", "slices"])
def test_plot_volume_plotly_markers_at_core_coordinates(mode):
    target, recon = volume_pair()
    cm = mismatched_critical_points(recon, target)
    fig = plot_volume_plotly(target, recon, mode=mode, show_matched=True)
    panels = {"target": ("matched", "lost", "changed"),
              "recon": ("matched", "spurious", "changed")}
    for panel, kinds in panels.items():
        for kind in kinds:
            (tr,) = find_traces(fig, role="critical", kind=kind, panel=panel)
            assert tr.type == "scatter3d"
            got = marker_coords(fig, kind, panel, cols=("x", "y", "z"))
            np.testing.assert_array_equal(sorted_rows(got), sorted_rows(getattr(cm, kind)))
    assert fig.layout.scene.xaxis.title.text == "axis 0"
    assert len(find_traces(fig, role="volume")) == 2


def test_plot_volume_plotly_subsamples_volume_not_markers():
    target, recon = volume_pair(n=20)
    fig = plot_volume_plotly(target, recon, max_size=8)
    vol = find_traces(fig, role="volume")[0]
    assert set(np.unique(vol.x)) == set(range(0, 20, 3))
    assert "stride 3" in fig.layout.title.text
    cm = mismatched_critical_points(recon, target)
    got = marker_coords(fig, "spurious", "recon", cols=("x", "y", "z"))
    np.testing.assert_array_equal(sorted_rows(got), sorted_rows(cm.spurious))


def test_plot_volume_plotly_uses_given_mismatch_and_checks_it():
    target, recon = volume_pair(n=6)
    cm = mismatched_critical_points(recon, target)
    fig = plot_volume_plotly(target, recon, mismatch=cm)
    assert find_traces(fig, kind="lost")[0].name.startswith(f"lost ({cm.n_lost}")
    with pytest.raises(ValueError, match="outside"):
        plot_volume_plotly(target[:2, :2, :2], recon[:2, :2, :2], mismatch=cm)
    with pytest.raises(TypeError, match="CriticalMismatch"):
        plot_volume_plotly(target, recon, mismatch="no")
    with pytest.raises(ValueError, match="3D"):
        plot_volume_plotly(target[0], recon[0])


def test_plot_volume_pyvista_offscreen_png(tmp_path):
    pytest.importorskip("pyvista")
    from dsl_explore.export import save_scene
    from dsl_explore.plots import plot_volume_pyvista

    target, recon = volume_pair(n=12)
    for slices in (True, False):
        pl = plot_volume_pyvista(target, recon, slices=slices, show_matched=True,
                                 window_size=(640, 320), off_screen=True)
        assert pl.shape == (1, 2)
        out = save_scene(pl, tmp_path / f"scene_{slices}.png")
        pl.close()
        data = out.read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert struct.unpack(">II", data[16:24]) == (640, 320)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium for PNG export")
def test_figures_export_to_png(tmp_path):
    from dsl_explore.export import export_session, save_figure

    target, recon = pair_nd((8, 8))
    with export_session():
        out = save_figure(plot_2d(target, recon), tmp_path / "p2.png", width=500, height=450)
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_trace_index_lookup():
    target, recon = pair_nd((5, 5))
    fig = plot_2d(target, recon)
    assert fig.data[trace_index(fig, role="dsl")].meta["role"] == "dsl"
    with pytest.raises(LookupError):
        trace_index(fig, role="critical")
