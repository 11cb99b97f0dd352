"""``export_run`` / ``dsl-explore export RUN_DIR``: every figure of a saved run, from its files."""

from __future__ import annotations

import argparse
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dsl_explore.plots import find_traces
from dsl_explore.run_figures import (
    RunDirError,
    add_parser,
    export_run,
    load_run,
    run,
    run_figures,
)
from dsl_explore.training import TrainingConfig, train

TINY = {
    "size": 16, "n_samples": 16, "batch_size": 4, "base_channels": 4, "compression": 4,
    "eval_every": 2, "steps": 4, "device": "cpu", "eval_samples": 2, "betti_thresholds": 4,
}
HAS_BROWSER = bool(shutil.which("chromium") or shutil.which("chromium-browser"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models train faster and steadier with one thread on a busy 2-core machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def run2d(tmp_path_factory, _one_torch_thread):
    """A finished 2D run with a live k change, and its run object."""
    from dsl_explore.training import TrainingRun

    d = tmp_path_factory.mktemp("runs") / "run2d"
    r = TrainingRun(TrainingConfig(spatial_dims=2, **TINY), run_dir=d)
    r.set(k=40.0)
    r.start().join()
    return d, r


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_load_run_rebuilds_the_validation_batch_and_model(run2d):
    d, r = run2d
    saved = load_run(d)
    snap = r.snapshot()
    assert saved.step == 4 and saved.checkpoint.name == "step_00000004.pt"
    np.testing.assert_array_equal(saved.target, snap["target"])
    np.testing.assert_allclose(saved.reconstruction, snap["reconstruction"], rtol=1e-5,
                               atol=1e-6)
    assert saved.live_config.k == 40.0 and saved.config.k == 20.0
    assert saved.history["events"][0]["changes"] == {"k": 40.0}


def test_figures_hold_the_history_and_the_reconstruction(run2d):
    d, r = run2d
    figs = run_figures(d)
    assert list(figs) == ["history", "reconstruction"]
    total = find_traces(figs["history"], role="loss", key="total")[0]
    assert list(total.x) == r.history["steps"]["step"]
    rec = figs["reconstruction"]
    assert "step 4 · validation sample 0" in rec.layout.title.text
    assert "k=40" in rec.layout.title.text  # the live k at the checkpoint
    assert {t.meta["role"] for t in rec.data} >= {"field", "critical", "exact", "dsl"}
    with pytest.raises(ValueError, match="sample"):
        run_figures(d, sample=5)


def test_export_html_always(run2d, tmp_path):
    d, _ = run2d
    paths = export_run(d, formats=("html",), out_dir=tmp_path / "out")
    assert [p.name for p in paths] == ["history.html", "reconstruction.html"]
    for p in paths:
        page = p.read_text(encoding="utf-8")
        assert page.lstrip().lower().startswith(("<!doctype html", "<html")) and "plotly" in page
    assert "validation sample 0" in paths[1].read_text(encoding="utf-8")
    # default out_dir: RUN_DIR/figures
    assert export_run(d, formats="html")[0].parent == d / "figures"


@pytest.mark.skipif(not HAS_BROWSER, reason="no chromium for static export")
def test_export_static_formats_are_valid_files(run2d, tmp_path):
    d, _ = run2d
    paths = export_run(d, formats=("png", "svg", "pdf"), out_dir=tmp_path)
    assert _files(tmp_path) == sorted(f"{s}.{f}" for s in ("history", "reconstruction")
                                      for f in ("png", "svg", "pdf"))
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        elif p.suffix == ".pdf":
            assert data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:]
        else:
            root = ET.fromstring(data)
            assert root.tag.endswith("svg")


@pytest.mark.parametrize("dims,size", [(1, 32), (3, 8)])
def test_1d_and_3d_runs(tmp_path, dims, size):
    d = tmp_path / "run"
    train(TrainingConfig(spatial_dims=dims, **{**TINY, "size": size, "steps": 2}), run_dir=d,
          progress=False)
    paths = export_run(d, formats="html", out_dir=tmp_path / "out")
    names = [p.name for p in paths]
    if dims == 1:
        assert names == ["history.html", "reconstruction.html"]
    else:
        assert names == ["history.html", "reconstruction.html", "reconstruction_3d.html"]
        fig = run_figures(d, slice_index=2)["reconstruction"]
        assert "slice axis 0 = 2" in fig.layout.title.text


def test_in_memory_data_needs_the_data(tmp_path):
    data = np.random.default_rng(0).random((12, 1, 16, 16)).astype(np.float32)
    d = tmp_path / "run"
    train(TrainingConfig(data="array", spatial_dims=2, **{**TINY, "steps": 2}), run_dir=d,
          data=data, progress=False)
    with pytest.raises(RunDirError, match="in-memory data"):
        export_run(d, formats="html", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert len(export_run(d, formats="html", out_dir=tmp_path / "out", data=data)) == 2


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("figures"))
    return dst


@pytest.mark.parametrize("damage,match", [
    ("missing", "does not exist"),
    ("file", "not a directory"),
    ("no_config", "no config.toml"),
    ("bad_config", "config.toml is invalid"),
    ("bad_history", "history.json is corrupt"),
    ("no_checkpoint", "no checkpoint"),
    ("truncated_checkpoint", "cannot read checkpoint"),
    ("other_run", "from another run"),
])
def test_a_missing_or_corrupt_run_dir_is_a_clear_error_and_writes_nothing(
        run2d, tmp_path, damage, match):
    src, _ = run2d
    d = tmp_path / "run"
    if damage == "missing":
        pass
    elif damage == "file":
        d.write_text("not a run")
    else:
        _copy_run(src, d)
        ckpts = sorted((d / "checkpoints").glob("step_*.pt"))
        if damage == "no_config":
            (d / "config.toml").unlink()
        elif damage == "bad_config":
            (d / "config.toml").write_text("size = [16, 16\nlam = -1\n")
        elif damage == "bad_history":
            (d / "history.json").write_text('{"steps": [1, 2')
        elif damage == "no_checkpoint":
            shutil.rmtree(d / "checkpoints")
        elif damage == "truncated_checkpoint":
            data = ckpts[-1].read_bytes()
            ckpts[-1].write_bytes(data[: len(data) // 3])
        elif damage == "other_run":
            text = (d / "config.toml").read_text().replace("data_seed = 0", "data_seed = 7")
            (d / "config.toml").write_text(text)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    with pytest.raises(RunDirError, match=match):
        export_run(d, formats=("html", "png"), out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (d.is_dir() and (d / "figures").exists())
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_unknown_format_writes_nothing(run2d, tmp_path):
    d, _ = run2d
    with pytest.raises(ValueError, match="unknown format 'gif'"):
        export_run(d, formats="html,gif", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli(run2d, tmp_path, capsys):
    d, _ = run2d
    parser = argparse.ArgumentParser(prog="dsl-explore")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(d), "--format", "html", "--out", str(tmp_path)])
    assert args.func is run
    assert args.func(args) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "history.html"), str(tmp_path / "reconstruction.html")]
    args = parser.parse_args(["export", str(tmp_path / "nope"), "--format", "html"])
    with pytest.raises(RunDirError, match="does not exist"):
        args.func(args)


def test_history_json_is_what_is_drawn(run2d):
    d, _ = run2d
    hist = json.loads((d / "history.json").read_text())
    fig = run_figures(d)["history"]
    rate = find_traces(fig, role="count_rate")[0]
    assert list(rate.y) == pytest.approx(hist["evals"]["count_rate"])


def test_history_written_before_the_rate_fix_is_rescaled(run2d, tmp_path):
    d, _ = run2d
    old = tmp_path / "old"
    shutil.copytree(d, old)
    hist = json.loads((d / "history.json").read_text())
    assert hist.pop("metrics_version") == 2
    rates = hist["evals"]["count_rate"]
    hist["evals"]["count_rate"] = [2 * v for v in rates]  # the sum over the 2 axes
    (old / "history.json").write_text(json.dumps(hist))
    (old / "history.json.sha256").unlink()  # a run of that time had no checksum
    assert load_run(old).history["evals"]["count_rate"] == pytest.approx(rates, rel=1e-12)
    assert load_run(d).history["evals"]["count_rate"] == pytest.approx(rates, rel=1e-12)
    assert all(0 <= v <= 1 for v in rates)
