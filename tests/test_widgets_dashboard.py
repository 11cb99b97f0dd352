"""TrainingDashboard: follows a background run, steers it, survives its end, close and failure.

Everything runs headless (ipywidgets without a kernel: comm messages go nowhere, the widget
state is still updated and serialised). Runs are tiny CPU runs of a few seconds.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from dsl_explore.critical import mismatched_critical_points
from dsl_explore.plots import find_traces
from dsl_explore.training import TrainingConfig, TrainingRun
from dsl_explore.widgets import TrainingDashboard
from dsl_explore.widgets._common import STATUS_CLASS

TINY = {
    "spatial_dims": 2, "size": 16, "n_samples": 24, "batch_size": 8, "base_channels": 4,
    "compression": 4, "eval_every": 5, "steps": 20, "device": "cpu", "eval_samples": 2,
    "betti_thresholds": 4,
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: on a busy 2-core machine 2 OpenMP threads only wait for each other (the
    runs get several times slower); the training threads started here inherit this."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cfg(**kw) -> TrainingConfig:
    return TrainingConfig(**{**TINY, **kw})


def _wait(pred, timeout: float = 30.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def dashboards():
    """Dashboards made by a test, closed (and their runs stopped) afterwards."""
    made: list[TrainingDashboard] = []
    yield made
    for d in made:
        d.close()
        if d.run.is_alive():
            d.run.stop(wait=False)
            with contextlib.suppress(Exception):
                d.run.join(10)


def _dash(dashboards, run, **kw) -> TrainingDashboard:
    d = TrainingDashboard(run, **kw)
    dashboards.append(d)
    return d


def _plain(status_value: str) -> str:
    return re.sub(r"<[^>]+>", " ", status_value)


def test_follows_a_short_run_to_its_final_state(dashboards):
    run = TrainingRun(_cfg())
    dash = _dash(dashboards, run, refresh_hz=20)
    assert dash.refreshing
    assert "waiting for the first evaluation" in dash.recon_figure.layout.title.text
    assert STATUS_CLASS in dash.status._dom_classes
    assert dash.state()["buttons"] == {"start": True, "pause": False, "resume": False,
                                       "stop": False, "checkpoint": True}
    run.start().join()
    # the refresher itself notices the end and shows the final state
    _wait(lambda: dash.state()["run_state"] == "finished" and dash.state()["step"] == 20,
          what="the refresher's final refresh")
    st = dash.refresh()
    hist = run.history
    assert st["step"] == 20 and st["snapshot_step"] == 20
    assert "step 20 / 20" in st["status"] and "finished" in st["status"]
    n_steps, n_evals = len(hist["steps"]["step"]), len(hist["evals"]["step"])
    assert n_steps == 20 and n_evals == 5  # steps 0, 5, 10, 15, 20
    pts = st["history_points"]
    for key in ("total", "mse", "dsl"):
        assert pts[key] == n_steps, (key, pts)
    for key in ("val_mse", "count_rate", "betti_total", "betti_0", "betti_1", "spurious",
                "lost", "changed"):
        assert pts[key] == n_evals, (key, pts)
    tr = find_traces(dash.history_figure, role="loss", key="total")[0]
    assert list(tr.y) == pytest.approx(hist["steps"]["total"])
    # the reconstruction shows the final snapshot's sample 0 with its critical points
    snap = run.snapshot()
    cm = mismatched_critical_points(snap["reconstruction"][0, 0], snap["target"][0, 0])
    fig = dash.recon_figure
    assert fig is not None and fig.layout.title.text.startswith("step 20 · validation sample 0")
    names = {t.name for t in find_traces(fig, role="critical", panel="recon")}
    assert f"spurious ({cm.n_spurious})" in names
    assert st["metrics"] == snap["metrics"]
    assert st["buttons"] == {"start": False, "pause": False, "resume": False, "stop": False,
                             "checkpoint": True}
    # refresh stops when the run has ended: no more redraws
    n = dash.state()["n_redraws"]
    time.sleep(0.4)
    assert dash.state()["n_redraws"] == n


def test_sliders_call_run_set_and_show_in_history_and_config(dashboards):
    run = TrainingRun(_cfg(steps=30))
    dash = _dash(dashboards, run, autorefresh=False)
    assert all(dash.state()["enabled"].values())
    dash.lam_slider.value = 1.25
    dash.k_slider.value = 50.0
    dash.lr_slider.value = 2e-3
    dash.weight_sliders[1].value = 0.5
    dash.surrogate_dropdown.value = "erf"
    assert "set surrogate = erf" in dash.message.value
    run.start()
    _wait(lambda: run.step >= 2, what="two steps")
    dash.buttons["pause"].click()
    _wait(lambda: run.state == "paused", what="pause")
    st = dash.refresh()
    assert st["buttons"]["resume"] and not st["buttons"]["pause"] and st["buttons"]["stop"]
    dash.k_slider.value = 120.0  # while paused: applied when it resumes
    dash.buttons["resume"].click()
    run.join()
    st = dash.refresh()
    events = run.history["events"]
    assert events[0]["step"] == 1
    assert events[0]["changes"] == {"lam": 1.25, "k": 50.0, "lr": 2e-3, "weights": [1.0, 0.5],
                                    "surrogate": "erf"}
    assert events[-1]["changes"] == {"k": 120.0} and events[-1]["step"] > 1
    cfg = run.config
    assert (cfg.lam, cfg.k, cfg.lr, cfg.weights, cfg.surrogate) == (
        1.25, 120.0, 2e-3, (1.0, 0.5), "erf")
    assert (st["lam"], st["k"], st["lr"], st["weights"]) == (1.25, 120.0, 2e-3, (1.0, 0.5))
    assert run.history["steps"]["lam"][-1] == 1.25
    assert "k=120" in dash.recon_figure.layout.title.text


def test_programmatic_set_moves_the_sliders_without_new_events(dashboards):
    run = TrainingRun(_cfg(steps=5))
    dash = _dash(dashboards, run, autorefresh=False)
    run.set(k=77.0, lam=0.25)
    run.start().join()
    st = dash.refresh()
    assert (st["k"], st["lam"]) == (77.0, 0.25)
    assert len(run.history["events"]) == 1  # syncing the sliders did not call run.set again


def test_only_settings_of_the_runs_loss_are_enabled(dashboards):
    mse = _dash(dashboards, TrainingRun(_cfg(loss="mse")), autorefresh=False)
    assert mse.state()["enabled"] == {"lam": False, "k": False, "weights": False,
                                      "surrogate": False, "lr": True}
    assert mse.lam_slider.disabled and mse.k_slider.disabled and not mse.lr_slider.disabled
    assert all(s.disabled for s in mse.weight_sliders)
    ph = _dash(dashboards, TrainingRun(_cfg(loss="mse+ph")), autorefresh=False)
    assert not ph.lam_slider.disabled and ph.k_slider.disabled and ph.surrogate_dropdown.disabled


def test_buttons_start_pause_resume_stop_and_dashboard_stays_usable(dashboards, tmp_path):
    run = TrainingRun(_cfg(steps=100_000, eval_every=10))
    dash = _dash(dashboards, run, refresh_hz=20, export_dir=tmp_path)
    dash.buttons["start"].click()
    _wait(lambda: run.step >= 2, what="training steps")
    dash.buttons["pause"].click()
    _wait(lambda: run.state == "paused", what="pause")
    paused_at = run.step
    time.sleep(0.2)
    assert run.step == paused_at
    _wait(lambda: dash.state()["run_state"] == "paused", what="the dashboard to show 'paused'")
    dash.buttons["resume"].click()
    _wait(lambda: run.step > paused_at, what="resumed steps")
    dash.buttons["checkpoint"].click()  # no run_dir: written under export_dir/checkpoints
    assert "checkpoint written" in dash.message.value, dash.message.value
    assert list((tmp_path / "checkpoints").glob("step_*.pt"))
    dash.buttons["stop"].click()
    _wait(lambda: not run.is_alive(), what="stop")
    assert run.state == "stopped" and run.error is None
    st = dash.refresh()
    assert st["run_state"] == "stopped" and "stopped" in st["status"]
    assert st["buttons"] == {"start": True, "pause": False, "resume": False, "stop": False,
                             "checkpoint": True}
    assert dash.buttons["start"].description == "Continue"
    assert not dash.k_slider.disabled  # a stopped run can continue: settings stay live
    assert st["history_points"]["total"] == len(run.history["steps"]["step"]) == run.step


def test_closing_the_dashboard_does_not_stop_the_run(dashboards):
    run = TrainingRun(_cfg(steps=100_000, eval_every=10))
    dash = _dash(dashboards, run, refresh_hz=20)
    run.start()
    _wait(lambda: run.step >= 1, what="training steps")
    dash.close()
    assert not dash.refreshing
    step = run.step
    _wait(lambda: run.step > step + 2, what="training to go on after close")
    assert run.is_alive() and run.state == "running"
    run.stop()
    assert run.state == "stopped"


def test_a_failing_run_shows_its_error_in_the_status_line(dashboards):
    run = TrainingRun(_cfg(steps=50))

    def broken_listener(snapshot):
        if snapshot["step"] >= 5:
            raise RuntimeError("boom from a listener")

    run.add_listener(broken_listener)
    dash = _dash(dashboards, run, refresh_hz=20)
    run.start()
    _wait(lambda: run.state == "failed", what="the run to fail")
    _wait(lambda: dash.state()["run_state"] == "failed", what="the dashboard to show it")
    st = dash.refresh()
    text = _plain(dash.status.value)
    assert "RuntimeError: boom from a listener" in text
    assert "training failed at step 5" in text and "broken_listener" in text
    assert 'data-level="error"' in dash.status.value
    assert st["error"] is not None and "boom from a listener" in st["error"]
    assert not any(st["buttons"].values())


def test_export_button_writes_the_current_figures(dashboards, tmp_path):
    run = TrainingRun(_cfg(steps=5))
    dash = _dash(dashboards, run, autorefresh=False, export_dir=tmp_path / "out")
    run.start().join()
    dash.refresh()
    dash.export_panel.format.value = "html"
    dash.export_button.click()
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["reconstruction.html", "training_history.html"], dash.export_panel.status
    page = (tmp_path / "out" / "reconstruction.html").read_text(encoding="utf-8")
    assert "plotly" in page and "validation sample 0" in page
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("no chromium for PNG export")
    paths = dash.export(tmp_path / "png", formats=("png",))
    assert [p.name for p in paths] == ["training_history.png", "reconstruction.png"]
    for p in paths:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize("dims,size", [(1, 32), (3, 8)])
def test_1d_and_3d_views(dashboards, dims, size):
    run = TrainingRun(_cfg(spatial_dims=dims, size=size, steps=5))
    dash = _dash(dashboards, run, autorefresh=False)
    run.start().join()
    dash.refresh()
    fig = dash.recon_figure
    assert fig is not None
    if dims == 1:
        assert find_traces(fig, role="line", panel="recon")
        assert dash.slice_slider is None
        return
    assert "slice axis 0 = 4" in fig.layout.title.text
    dash.slice_slider.value = 1
    assert "slice axis 0 = 1" in dash.recon_figure.layout.title.text
    dash.sample_slider.value = 1
    assert "validation sample 1" in dash.recon_figure.layout.title.text


def test_bad_arguments():
    with pytest.raises(TypeError, match="TrainingRun"):
        TrainingDashboard(object())
    run = TrainingRun(_cfg(steps=1))
    with pytest.raises(ValueError, match="refresh_hz"):
        TrainingDashboard(run, refresh_hz=0)


def test_bench_dashboard_overhead_smoke():
    from dsl_explore.bench_ui import bench_dashboard_overhead, bench_ui, format_table

    res = bench_dashboard_overhead(steps=10, eval_every=5, repeats=1, size=16)
    assert res["without"]["median"] > 0 and res["with"]["median"] > 0
    assert res["ratio"] == pytest.approx(res["with"]["median"] / res["without"]["median"],
                                         abs=2e-3)
    assert res["redraws"][0] >= 1 and 0 <= res["dashboard_cpu_share"] < 1
    assert res["torch_threads"] == 1
    table = format_table({"results": [], "machine": {
        "cpu_count": 2, "torch": "x", "torch_threads": 2, "widget_threads": 1,
        "load_avg_1m_at_start": None}, "repeats": 1, "note": "", "dashboard": res})
    assert "dashboard overhead" in table and "ratio" in table
    with pytest.raises(ValueError, match="steps"):
        bench_dashboard_overhead(steps=0)
    with pytest.raises(ValueError, match="unknown"):
        bench_ui(cases=("dashbord",))


# ------------------------------------------------------------------ issue 11: rough edges


def test_stop_message_settles_to_stopped(dashboards):
    """After Stop, "stopping after the current step" gives way to "stopped at step N" once the
    run has stopped (it used to stay beside the state "stopped")."""
    run = TrainingRun(_cfg(steps=100_000, eval_every=10))
    dash = _dash(dashboards, run, refresh_hz=20)
    dash.buttons["start"].click()
    _wait(lambda: run.step >= 2, what="training steps")
    dash.buttons["stop"].click()
    _wait(lambda: not run.is_alive(), what="stop")
    st = dash.refresh()
    assert st["run_state"] == "stopped"
    assert "stopping" not in _plain(dash.message.value), dash.message.value
    assert f"stopped at step {run.step}" in _plain(dash.message.value), dash.message.value


def test_status_line_shows_elapsed_time_and_eta(dashboards):
    from dsl_explore.widgets._dashboard_views import StatusLine, clock

    assert clock(59.6) == "1:00" and clock(3600) == "1:00:00"
    run = TrainingRun(_cfg(steps=100_000, eval_every=10))
    dash = _dash(dashboards, run, refresh_hz=20)
    run.start()
    _wait(lambda: run.step >= 3, what="training steps")
    _wait(lambda: "ETA" in dash.refresh()["status"], what="an ETA in the status line")
    status = dash.state()["status"]
    assert re.search(r"elapsed \d+:\d\d · ETA \d+:\d\d(:\d\d)?", status), status
    run.stop()
    status = dash.refresh()["status"]
    assert "elapsed" in status and "ETA" not in status, status
    # the clock counts running time only
    line = StatusLine(run)
    line.record(10.0, "running", 0)
    line.record(12.5, "running", 5)
    line.record(13.0, "paused", 6)
    line.record(20.0, "paused", 6)
    assert line.elapsed == pytest.approx(3.0)


def test_reset_button_puts_the_settings_back(dashboards):
    run = TrainingRun(_cfg(steps=30, lam=0.5, k=20.0, lr=1e-3))
    dash = _dash(dashboards, run, autorefresh=False)
    dash.lam_slider.value = 1.25
    dash.k_slider.value = 300.0
    dash.weight_sliders[0].value = 0.25
    dash.surrogate_dropdown.value = "erf"
    dash.controls.reset_button.click()
    assert dash.lam_slider.value == 0.5
    assert dash.k_slider.value == pytest.approx(20.0)
    assert dash.weight_sliders[0].value == 1.0
    assert dash.surrogate_dropdown.value == run.initial_config.surrogate
    assert dash.lr_slider.value == pytest.approx(1e-3)
    run.start().join()
    assert run.config.lam == 0.5 and run.config.k == pytest.approx(20.0)
    assert run.config.surrogate == run.initial_config.surrogate


def test_export_writes_every_selected_format_with_one_click(dashboards, tmp_path):
    run = TrainingRun(_cfg(steps=5))
    dash = _dash(dashboards, run, autorefresh=False, export_dir=tmp_path / "out")
    run.start().join()
    dash.refresh()
    panel = dash.export_panel
    for fmt, button in panel.format_buttons.items():
        button.value = fmt in ("html", "svg")
    assert panel.selected_formats() == tuple(f for f in panel.format_buttons
                                             if f in ("html", "svg"))
    if "svg" in panel.selected_formats() and not (shutil.which("chromium")
                                                  or shutil.which("chromium-browser")):
        pytest.skip("no chromium for SVG export")
    dash.export_button.click()
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["reconstruction.html", "reconstruction.svg", "training_history.html",
                     "training_history.svg"], panel.status.value
    for button in panel.format_buttons.values():
        button.value = False
    assert panel.export() == [] and "choose at least one format" in panel.status.value
