"""Tests for dsl_explore.widgets.explore, headless: controls are set from Python (what a slider
drag does through the comm) and the readout, ``state()`` and figure data are checked against
the core functions."""

from __future__ import annotations

import importlib
import re
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
go = pytest.importorskip("plotly.graph_objects")

from dsl_explore.counting import sign_mismatch_count  # noqa: E402
from dsl_explore.critical import mismatched_critical_points  # noqa: E402
from dsl_explore.loss import directional_sign_loss  # noqa: E402
from dsl_explore.plots import find_traces, style  # noqa: E402
from dsl_explore.plots.raster import colour_lut, colourise  # noqa: E402
from dsl_explore.plots.traces import as_array  # noqa: E402
from dsl_explore.widgets import Explorer, explore  # noqa: E402
from dsl_explore.widgets._common import READOUT_CLASS, STATUS_CLASS  # noqa: E402
from tests._png import read_png  # noqa: E402

# the module, not the function of the same name that dsl_explore.widgets re-exports
explore_mod = importlib.import_module("dsl_explore.widgets.explore")
sample_mod = importlib.import_module("dsl_explore.widgets._sample")
images_mod = importlib.import_module("dsl_explore.widgets._map_images")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pair(shape: tuple[int, ...], seed: int = 0, dtype=np.float32) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.random(shape)
    x = y + 0.2 * rng.standard_normal(shape)
    return x.astype(dtype), y.astype(dtype)


def expected(x, y, *, k, weights, surrogate="tanh"):
    """What the readout must show, from the core functions on the bare sample."""
    dims = tuple(range(x.ndim))
    kw = {"k": k, "weights": weights, "dims": dims, "surrogate": surrogate}
    cm = mismatched_critical_points(x, y)
    return {
        "loss": float(directional_sign_loss(x, y, reduction="mean", **kw)),
        "loss_sum": float(directional_sign_loss(x, y, reduction="sum", **kw)),
        "count": int(sign_mismatch_count(x, y, dims=dims)),
        "count_weighted": float(sign_mismatch_count(x, y, dims=dims, weights=weights)),
        "count_rate": float(sign_mismatch_count(x, y, dims=dims, weights=weights,
                                                reduction="mean")),
        "spurious": cm.n_spurious, "lost": cm.n_lost, "changed": cm.n_changed,
        "matched": cm.n_matched,
    }


def check_state(ex: Explorer, x, y) -> None:
    st = ex.state()
    want = expected(x, y, k=st["k"], weights=st["weights"], surrogate=st["surrogate"])
    for key, value in want.items():
        assert st[key] == value, key  # exactly the core's values
    text = ex.readout.value
    assert f"mean <b>{st['loss']:.6g}</b>" in text
    assert f"sum <b>{st['loss_sum']:.6g}</b>" in text
    assert f"count <b>{st['count']}</b>" in text
    assert f"rate {st['count_rate']:.6g}" in text
    for kind in ("spurious", "lost", "changed", "matched"):
        assert f"<b>{st[kind]}</b> {kind}" in text
    assert ex.last_error is None


@pytest.mark.parametrize("shape", [(64,), (12, 15), (9, 10, 11)])
def test_k_and_surrogate_change_readout_to_core_values(shape):
    x, y = pair(shape)
    ex = explore(x, y, k=10.0)
    check_state(ex, x, y)
    before = ex.readout.value
    ex.k_slider.value = 123.0
    assert ex.state()["k"] == 123.0
    check_state(ex, x, y)
    assert ex.readout.value != before
    ex.surrogate_dropdown.value = "softsign"
    assert ex.state()["surrogate"] == "softsign"
    check_state(ex, x, y)


def test_weight_slider_changes_weighted_loss():
    x, y = pair((10, 12), seed=1)
    ex = explore(x, y, k=30.0)
    loss_equal = ex.state()["loss"]
    ex.weight_sliders[1].value = 0.25
    st = ex.state()
    assert st["weights"] == (1.0, 0.25)
    check_state(ex, x, y)
    assert st["loss"] != loss_equal
    per_axis = [float(directional_sign_loss(x, y, k=30.0, dims=(a,))) for a in (0, 1)]
    assert st["loss"] == pytest.approx(per_axis[0] + 0.25 * per_axis[1], rel=1e-6)
    # the exact map follows the weights too
    (ex_map,) = find_traces(ex.figure, role="exact")
    assert float(np.sum(as_array(ex_map.z), dtype=np.float64)) == pytest.approx(
        st["count_weighted"])


def test_k_change_updates_dsl_map_only_and_reuses_critical_points(monkeypatch):
    x, y = pair((16, 16), seed=2)
    ex = explore(x, y, k=5.0)
    fig = ex.figure
    calls = []
    real = sample_mod.mismatched_critical_points  # where the explorer's model calls it
    monkeypatch.setattr(sample_mod, "mismatched_critical_points",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    (dsl,) = find_traces(fig, role="dsl")
    (exact,) = find_traces(fig, role="exact")
    (marks,) = find_traces(fig, role="critical", kind="spurious", panel="recon")
    dsl_before, exact_before = as_array(dsl.z).copy(), as_array(exact.z).copy()
    marks_before = list(marks.x)
    ex.k_slider.value = 500.0
    assert ex.figure is fig  # updated in place
    assert not np.allclose(as_array(dsl.z), dsl_before)
    np.testing.assert_array_equal(as_array(exact.z), exact_before)
    assert list(marks.x) == marks_before
    assert calls == []  # critical points do not depend on k
    want = float(directional_sign_loss(x, y, k=500.0, dims=(0, 1), reduction="sum"))
    assert float(np.sum(as_array(dsl.z), dtype=np.float64)) == pytest.approx(want, rel=1e-4)
    assert "k=500" in fig.layout.title.text
    ex.sample_slider.value = 0  # no change, no recomputation
    assert calls == []
    ex.model.load(0)  # the patch sits where the explorer computes critical points
    assert calls == [1]


def test_2d_panels_are_png_images_and_k_redraws_the_dsl_image_only():
    x, y = pair((16, 16), seed=2)
    ex = explore(x, y, k=5.0)
    fig, view = ex.figure, ex._area.slice_view
    imgs, slot = fig.layout.images, view.images.slot
    assert sorted(slot) == ["dsl", "exact", "recon", "target"] and len(imgs) == 4
    assert all(im.source.startswith("data:image/png;base64,") for im in imgs)
    assert [tr.visible for tr in fig.data if tr.type == "heatmap"] == [False] * 4
    assert list(fig.layout.xaxis.range) == [-0.5, 15.5]
    assert list(fig.layout.yaxis.range) == [15.5, -0.5]  # rows run down
    # each image is its (hidden) heatmap's values through the colour axis, pixels upscaled
    lut = colour_lut(style.MAP_COLORSCALE)
    for role in ("exact", "dsl"):
        rgb = read_png(imgs[slot[role]].source)
        up = rgb.shape[0] // 16
        assert up >= 2 and rgb.shape == (16 * up, 16 * up, 3)
        (tr,) = find_traces(fig, role=role)
        want = colourise(as_array(tr.z), lut, cmin=0.0, cmax=fig.layout.coloraxis2.cmax)
        np.testing.assert_array_equal(rgb[::up, ::up], want)
    (ft,) = find_traces(fig, role="field", panel="target")
    ax = fig.layout.coloraxis
    want = colourise(as_array(ft.z), colour_lut(style.FIELD_COLORSCALE), cmin=ax.cmin,
                     cmax=ax.cmax)
    got = read_png(imgs[slot["target"]].source)
    np.testing.assert_array_equal(got[::up, ::up], want)
    # few critical points: hoverable SVG markers, nothing painted
    assert not view.images.burned
    assert all(fig.data[i].visible is True for i in view.idx.markers.values())
    before = {r: imgs[i].source for r, i in slot.items()}
    ex.k_slider.value = 500.0
    after = {r: imgs[i].source for r, i in slot.items()}
    assert after["dsl"] != before["dsl"]
    assert after["target"] == before["target"] and after["recon"] == before["recon"]
    (dsl,) = find_traces(fig, role="dsl")
    rgb = read_png(after["dsl"])
    np.testing.assert_array_equal(
        rgb[::up, ::up],
        colourise(as_array(dsl.z), lut, cmin=0.0, cmax=fig.layout.coloraxis2.cmax))


def test_many_critical_points_are_painted_into_the_field_images(monkeypatch):
    monkeypatch.setattr(images_mod, "SVG_MARKERS_UP_TO", 0)
    x, y = pair((16, 16), seed=2)
    ex = explore(x, y, k=5.0)
    fig, view = ex.figure, ex._area.slice_view
    assert view.images.burned
    assert all(fig.data[i].visible == "legendonly" for i in view.idx.markers.values())
    rgb = read_png(fig.layout.images[view.images.slot["recon"]].source)
    up = rgb.shape[0] // 16
    c = style.KIND_STYLES["spurious"].color
    colour = [int(c[i:i + 2], 16) for i in (1, 3, 5)]
    (sp,) = find_traces(fig, role="critical", kind="spurious", panel="recon")
    points = [(r, col) for r, col in zip(sp.y, sp.x, strict=True) if r is not None]
    assert points
    for r, col in points:
        assert rgb[r * up + up // 2, col * up + up // 2].tolist() == colour
    ex.sample_slider.value = 0  # no change; the legend state stays as the user left it
    fig.data[view.idx.markers[("recon", "spurious")]].visible = True
    ex.k_slider.value = 50.0
    assert fig.data[view.idx.markers[("recon", "spurious")]].visible is True


def test_1d_figure_follows_k():
    x, y = pair((50,), seed=3)
    ex = explore(x, y, k=2.0)
    (dsl,) = find_traces(ex.figure, role="dsl")
    before = np.array(dsl.y)
    ex.k_slider.value = 200.0
    assert not np.allclose(np.asarray(dsl.y), before)
    assert float(np.sum(dsl.y)) == pytest.approx(ex.state()["loss_sum"], rel=1e-5)
    assert "k=200" in dsl.name


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sample_selector_switches_sample(backend):
    x, y = pair((3, 2, 8, 9), seed=4, dtype=np.float64)
    if backend == "torch":
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    ex = explore(x, y, k=20.0, weights=(0.5, 1.5))
    assert ex.sample_slider.max == 5
    for s in (4, 1):
        ex.sample_slider.value = s
        n, c = divmod(s, 2)
        st = ex.state()
        assert st["sample"] == s and st["sample_index"] == (n, c)
        check_state(ex, x[n, c], y[n, c])
        (ft,) = find_traces(ex.figure, role="field", panel="target")
        np.testing.assert_allclose(as_array(ft.z), np.asarray(y[n, c], dtype=np.float32))
        cm = mismatched_critical_points(x[n, c], y[n, c])
        (lost,) = find_traces(ex.figure, role="critical", kind="lost", panel="target")
        assert lost.name.startswith(f"lost ({cm.n_lost}")
        assert f"index ({n}, {c})" in ex.readout.value


def test_explicit_dims_and_ncl_layout():
    x, y = pair((8, 3, 20), seed=5)
    ex = explore(x, y, dims=-1)  # (N, C, L) with C > 1 needs dims
    assert ex.ndim == 1 and ex.sample_slider.max == 23
    ex.sample_slider.value = 7
    check_state(ex, x[2, 1], y[2, 1])
    ex2 = explore(x[:, :1], y[:, :1])  # (N, 1, L) is recognised
    assert ex2.ndim == 1 and ex2.sample_slider.max == 7
    ex3 = explore(np.moveaxis(x, 2, 0), np.moveaxis(y, 2, 0), dims=0)  # spatial axis first
    ex3.sample_slider.value = 7
    check_state(ex3, x[2, 1], y[2, 1])


def test_3d_slices_and_volume_mode():
    x, y = pair((8, 9, 10), seed=6)
    ex = explore(x, y, k=50.0)
    assert ex.state()["slice"] == (0, 4)
    ex.slice_slider.value = 2
    (ft,) = find_traces(ex.figure, role="field", panel="target")
    np.testing.assert_allclose(as_array(ft.z), y[2])
    cm = mismatched_critical_points(x, y)
    (sp,) = find_traces(ex.figure, role="critical", kind="spurious", panel="recon")
    on_plane = cm.spurious[cm.spurious[:, 0] == 2][:, 1:]
    got = np.array([(r, c) for r, c in zip(sp.y, sp.x, strict=True) if r is not None])
    assert sorted(map(tuple, got.reshape(-1, 2))) == sorted(map(tuple, on_plane))
    ex.slice_axis.value = 2
    assert ex.slice_slider.max == 9 and ex.state()["slice"] == (2, 2)
    np.testing.assert_allclose(
        as_array(find_traces(ex.figure, role="field", panel="recon")[0].z), x[:, :, 2])
    check_state(ex, x, y)
    ex.mode_toggle.value = "3D"
    fig3 = ex.figure
    assert any(t.type == "scatter3d" for t in fig3.data)
    assert ex.slice_slider.disabled
    (sp3,) = find_traces(fig3, role="critical", kind="spurious", panel="recon")
    assert len([v for v in sp3.x if v is not None]) == cm.n_spurious
    ex.k_slider.value = 5.0  # readout follows, the 3D view needs nothing new
    check_state(ex, x, y)
    assert ex.figure is fig3
    ex.mode_toggle.value = "slices"
    assert ex.figure.data[0].type == "heatmap"
    assert "k=5" in ex.figure.layout.title.text


def test_3d_camera_sync():
    x, y = pair((6, 6, 6))
    ex = explore(x, y, mode3d="3D")
    ex.figure.layout.scene.camera = {"eye": {"x": 2.0, "y": 0.5, "z": 0.3}}
    assert ex.figure.layout.scene2.camera.eye.x == 2.0


def test_export_html_writes_the_figure(tmp_path):
    x, y = pair((10, 10))
    ex = explore(x, y, export_dir=tmp_path / "figs")
    ex.export_panel.format.value = "html"
    ex.export_button.click()
    out = tmp_path / "figs" / "explore_2d.html"
    assert out.is_file()
    page = out.read_text(encoding="utf-8")
    assert "plotly" in page and "DSL contribution per vertex" in page
    assert "wrote" in ex.status.value and str(out) in ex.status.value
    assert STATUS_CLASS in ex.status._dom_classes


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium for PNG export")
def test_export_png(tmp_path):
    x, y = pair((3, 1, 40))
    ex = explore(x, y, export_dir=tmp_path)
    ex.sample_slider.value = 2
    (path,) = ex.export()
    assert path.name == "explore_1d_sample2.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_export_error_is_shown_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ex = explore(*pair((5, 5)), export_dir=blocker / "sub")
    ex.export_panel.format.value = "html"
    ex.export_button.click()
    assert "export failed" in ex.status.value
    assert 'data-level="error"' in ex.status.value
    assert ex.export_panel.last_error is not None


def test_callback_errors_are_shown_in_status(monkeypatch):
    ex = explore(*pair((6, 6)))

    def boom(*a, **kw):
        raise RuntimeError("kaputt")

    monkeypatch.setattr(ex, "_compute_loss", boom)
    ex.k_slider.value = 3.0
    assert isinstance(ex.last_error, RuntimeError)
    assert "kaputt" in ex.status.value


def test_widget_display_hooks():
    ex = explore(*pair((5, 6)))
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert READOUT_CLASS in ex.readout._dom_classes
    assert isinstance(ex.figure, go.FigureWidget)
    assert ex.widget.children[-2].children[0] is ex.figure
    import ipywidgets as W

    other = W.Label("someone else's widget")
    ex.close()
    assert ex.k_slider.comm is None and ex.figure.comm is None
    assert other.comm is not None


def test_continuous_update_only_for_small_samples(monkeypatch):
    monkeypatch.setattr(explore_mod, "_CONTINUOUS_UP_TO", 10)
    ex = explore(*pair((4, 4)))
    assert ex.k_slider.continuous_update is False
    assert explore(*pair((3, 3))).k_slider.continuous_update is True


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "err", "match"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, ValueError, "same shape"),
        ([0.0, 1.0], [0.0, 1.0], {}, TypeError, "numpy.ndarray"),
        (np.zeros(4, dtype=complex), np.zeros(4, dtype=complex), {}, TypeError, "real"),
        (np.array([0.0, np.nan]), np.zeros(2), {}, ValueError, "NaN"),
        (np.zeros((1, 1, 1, 1, 2, 2)), np.zeros((1, 1, 1, 1, 2, 2)), {}, ValueError, "1-5 axes"),
        (np.zeros((3, 1)), np.zeros((3, 1)), {}, ValueError, "at least 2"),
        (np.zeros(0), np.zeros(0), {}, ValueError, "empty"),
        (np.zeros(4), np.zeros(4), {"k": 0.0}, ValueError, "k"),
        (np.zeros(4), np.zeros(4), {"surrogate": "relu"}, ValueError, "surrogate"),
        (np.zeros(4), np.zeros(4), {"method": "morse"}, ValueError, "method"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"weights": (1.0,)}, ValueError, "one entry"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"weights": (1.0, -1.0)}, ValueError, ">= 0"),
        (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), {"dims": (0, 1, 2, 2)}, ValueError, "repeat"),
        (np.zeros(4), np.zeros(4), {"mode3d": "4D"}, ValueError, "mode3d"),
    ],
)
def test_bad_inputs_raise(x, y, kwargs, err, match):
    with pytest.raises(err, match=match):
        explore(x, y, **kwargs)


def test_integer_and_half_inputs():
    y = np.array([0, 3, 1, 4, 1, 5], dtype=np.int16)
    x = np.array([0, 2, 2, 4, 0, 5], dtype=np.int16)
    ex = explore(x, y)
    check_state(ex, x.astype(np.float64), y.astype(np.float64))
    xh, yh = torch.tensor(x, dtype=torch.float16), torch.tensor(y, dtype=torch.float16)
    ex = explore(xh, yh, k=3.0)
    assert ex.state()["loss"] == float(directional_sign_loss(xh, yh, k=3.0, dims=0))
    assert re.search(r"count <b>\d+</b>", ex.readout.value)


def test_heatmaps_travel_as_binary_and_threads_are_restored():
    before = torch.get_num_threads()
    ex = explore(*pair((20, 20)), threads=1)
    for tr in ex.figure.data:
        if tr.type == "heatmap":
            assert isinstance(tr.z, dict) and "bdata" in tr.z  # not nested lists
    ex.k_slider.value = 77.0
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        explore(*pair((4, 4)), threads=0)


def test_bench_ui_small_case_and_cli(capsys):
    import argparse
    import json

    from dsl_explore import bench_ui as bench

    res = bench.bench_ui(repeats=1, cases=("1d",))
    (row,) = res["results"]
    assert row["case"] == "1d" and row["shape"] == [4096]
    assert row["k"]["median_ms"] > 0 and row["meets_target"] is None
    assert "1d" in bench.format_table(res)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench.add_parser(sub)
    args = parser.parse_args(["ui", "--cases", "1d", "--repeats", "1", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["case"] == "1d"
    with pytest.raises(ValueError, match="unknown"):
        bench.bench_ui(cases=("4d",))
