"""Tests for dsl_explore.export: formats, atomic writes, browser sessions, pyvista scenes.

Tests that render static images need Chrome/Chromium on PATH and are skipped without one; the
missing-browser, atomicity, HTML and argument tests run everywhere.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

go = pytest.importorskip("plotly.graph_objects")

from dsl_explore import export  # noqa: E402 - after the importorskip
from dsl_explore.export import (  # noqa: E402
    BrowserNotFoundError,
    ExportError,
    export_session,
    save_figure,
    save_figures,
    save_scene,
)

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium/chromium-browser/google-chrome on PATH (apt-get install chromium)",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def make_fig(name: str = "trace-7f3a") -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[1, 3, 2, 4], name=name))


def listing(directory: Path) -> list[str]:
    """Every entry, hidden temp files included."""
    return sorted(p.name for p in directory.iterdir())


def fake_browser_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point BROWSER_PATH at nothing; skip if kaleido would not honour it."""
    path = str(tmp_path / "no-such-chrome")
    monkeypatch.setenv("BROWSER_PATH", path)
    if export._find_browser() is not None:
        pytest.skip("a kaleido-downloaded Chrome takes precedence over BROWSER_PATH here")
    return path


def run_python(
    code: str, env_extra: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


# ------------------------------------------------------------------------------- import cost


def test_import_does_not_load_heavy_packages():
    proc = run_python(
        """
        import sys
        import dsl_explore.export
        names = ("pyvista", "vtk", "vtkmodules", "kaleido", "plotly")
        heavy = [m for m in names if m in sys.modules]
        print(heavy)
        """,
        {},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- static images


@pytest.fixture(scope="class")
def browser_session():
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH")
    with export_session():
        yield


@needs_browser
@pytest.mark.usefixtures("browser_session")
class TestStaticFormats:
    def test_png_has_requested_pixel_size(self, tmp_path):
        out = save_figure(make_fig(), tmp_path / "fig.png", width=300, height=200, scale=2)
        assert out == tmp_path / "fig.png"
        assert png_size(out.read_bytes()) == (600, 400)
        assert listing(tmp_path) == ["fig.png"]

    def test_png_fractional_scale_and_uppercase_suffix(self, tmp_path):
        out = save_figure(make_fig(), tmp_path / "FIG.PNG", width=200, height=100, scale=1.5)
        assert png_size(out.read_bytes()) == (300, 150)

    def test_svg_parses(self, tmp_path):
        out = save_figure(make_fig(), tmp_path / "fig.svg", width=320, height=240)
        root = ET.fromstring(out.read_bytes())
        assert root.tag.endswith("svg")
        assert (root.get("width"), root.get("height")) == ("320", "240")

    def test_pdf_header(self, tmp_path):
        out = save_figure(make_fig(), tmp_path / "fig.pdf", format="pdf")
        data = out.read_bytes()
        assert data.startswith(b"%PDF-")
        assert data.rstrip().endswith(b"%%EOF")

    def test_overwrite_replaces_whole_file(self, tmp_path):
        target = tmp_path / "fig.png"
        target.write_bytes(b"old content " * 10_000)
        save_figure(make_fig(), target, width=100, height=80)
        assert png_size(target.read_bytes()) == (100, 80)
        assert listing(tmp_path) == ["fig.png"]

    def test_creates_missing_parents(self, tmp_path):
        out = save_figure(make_fig(), tmp_path / "a" / "b" / "fig.svg", width=100, height=80)
        assert out.is_file()


# ------------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("kind", ["Figure", "FigureWidget"])
def test_html_is_self_contained(tmp_path, kind):
    if kind == "FigureWidget":
        pytest.importorskip("anywidget")
        fig = go.FigureWidget(make_fig("widget-trace-91c2"))
        name = "widget-trace-91c2"
    else:
        fig, name = make_fig("html-trace-5d1e"), "html-trace-5d1e"
    out = save_figure(fig, tmp_path / "page.htm", width=640, height=360)
    page = out.read_text(encoding="utf-8")
    assert name in page
    assert "plotly" in page.lower()
    assert "Plotly.newPlot" in page
    # plotly.js is embedded (works offline), not loaded from a CDN
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert len(page) > 1_000_000
    assert "640px" in page and "360px" in page
    assert listing(tmp_path) == ["page.htm"]


# ------------------------------------------------------------------------------- batches


@needs_browser
def test_save_figures_uses_one_browser(tmp_path, monkeypatch):
    import kaleido

    calls = {"start": 0, "stop": 0}
    real_start, real_stop = kaleido.start_sync_server, kaleido.stop_sync_server

    def start(*args, **kwargs):
        calls["start"] += 1
        return real_start(*args, **kwargs)

    def stop(*args, **kwargs):
        calls["stop"] += 1
        return real_stop(*args, **kwargs)

    monkeypatch.setattr(kaleido, "start_sync_server", start)
    monkeypatch.setattr(kaleido, "stop_sync_server", stop)

    figs = {"loss": make_fig("loss-curve"), "betti": go.Figure(go.Bar(y=[3, 1, 2]))}
    out = save_figures(
        figs, tmp_path / "report", formats=("png", "svg", "pdf", "html"), width=200, height=150
    )
    names = [p.name for p in out]
    assert names == [
        "loss.png", "loss.svg", "loss.pdf", "loss.html",
        "betti.png", "betti.svg", "betti.pdf", "betti.html",
    ]  # fmt: skip
    assert listing(tmp_path / "report") == sorted(names)
    for p in out:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert png_size(data) == (200, 150)
        elif p.suffix == ".svg":
            assert ET.fromstring(data).tag.endswith("svg")
        elif p.suffix == ".pdf":
            assert data.startswith(b"%PDF-")
        else:
            assert b"plotly" in data
    assert calls == {"start": 1, "stop": 1}
    assert not export._server_running()


def test_html_only_batch_starts_no_browser(tmp_path, monkeypatch):
    import kaleido

    def no_browser(*args, **kwargs):
        raise AssertionError("an HTML-only batch must not start a browser")

    monkeypatch.setattr(kaleido, "start_sync_server", no_browser)
    out = save_figures({"a": make_fig(), "b": make_fig()}, tmp_path, formats="html")
    assert [p.name for p in out] == ["a.html", "b.html"]


def test_sessions_nest_and_stop_once(monkeypatch):
    import kaleido

    calls: list[str] = []
    monkeypatch.setattr(export, "_find_browser", lambda: "/fake/chromium")
    monkeypatch.setattr(export, "_server_running", lambda: False)
    monkeypatch.setattr(kaleido, "start_sync_server", lambda *a, **k: calls.append("start"))
    monkeypatch.setattr(kaleido, "stop_sync_server", lambda *a, **k: calls.append("stop"))

    with export_session():
        with export_session():
            with export_session():
                pass
        assert calls == ["start"]
    assert calls == ["start", "stop"]
    assert export._session_depth == 0

    with pytest.raises(KeyError), export_session():  # an error in the block still stops it
        raise KeyError("x")
    assert calls == ["start", "stop", "start", "stop"]
    assert export._session_depth == 0


def test_chromiums_closing_notice_is_not_logged_as_an_error(monkeypatch, caplog):
    """choreographer logs a traceback when Chromium's closing ``{bye}`` shares a read with its
    last replies; an export session keeps that one off stderr and every other record on it."""
    import kaleido

    wire = pytest.importorskip("choreographer.channels._wire")
    from choreographer.channels import JSONError

    monkeypatch.setattr(export, "_server_running", lambda: True)
    monkeypatch.setattr(kaleido, "start_sync_server", lambda *a, **k: None)
    with export_session():
        pass
    logger = logging.getLogger("choreographer.channels.pipe")  # choreographer's pipe logger
    for message in ("{bye}\n", "{not json"):
        try:
            wire.deserialize(message)
        except JSONError:
            logger.exception("JSONError decoding message. Ignoring")  # as choreographer does
    logged = [r for r in caplog.records if r.name == logger.name]
    assert len(logged) == 1
    assert logged[0].exc_info[1].__cause__.doc == "{not json"


def test_session_leaves_a_foreign_server_running(monkeypatch):
    import kaleido

    calls: list[str] = []
    monkeypatch.setattr(export, "_server_running", lambda: True)
    monkeypatch.setattr(kaleido, "start_sync_server", lambda *a, **k: calls.append("start"))
    monkeypatch.setattr(kaleido, "stop_sync_server", lambda *a, **k: calls.append("stop"))
    with export_session():
        pass
    assert calls == []


# ------------------------------------------------------------------------------- atomicity


def test_failing_renderer_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(export, "_render_image", boom)
    with pytest.raises(RuntimeError, match="renderer exploded"):
        save_figure(make_fig(), tmp_path / "new.png")
    assert listing(tmp_path) == []

    existing = tmp_path / "old.pdf"
    existing.write_bytes(b"%PDF-1.4 previous version")
    with pytest.raises(RuntimeError, match="renderer exploded"):
        save_figure(make_fig(), existing)
    assert existing.read_bytes() == b"%PDF-1.4 previous version"
    assert listing(tmp_path) == ["old.pdf"]

    monkeypatch.setattr(export, "_render_html", boom)
    with pytest.raises(RuntimeError, match="renderer exploded"):
        save_figure(make_fig(), tmp_path / "page.html")
    assert listing(tmp_path) == ["old.pdf"]


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_failure_mid_write_removes_temp_and_keeps_target(tmp_path, monkeypatch, stage):
    payload = PNG_SIGNATURE + b"\x00" * 100_000
    monkeypatch.setattr(export, "_render_image", lambda *a, **k: payload)
    target = tmp_path / "fig.png"
    target.write_bytes(b"previous bytes")
    seen: list[str] = []

    def failing(*args, **kwargs):
        # By now the temp file holds the new bytes.
        seen.extend(n for n in listing(tmp_path) if n.endswith(".tmp"))
        raise OSError(f"disk trouble at {stage}")

    monkeypatch.setattr(export.os, stage, failing)
    with pytest.raises(OSError, match="disk trouble"):
        save_figure(make_fig(), target)
    monkeypatch.undo()
    assert seen and seen[0].startswith(".fig.png.")
    assert target.read_bytes() == b"previous bytes"
    assert listing(tmp_path) == ["fig.png"]


# ------------------------------------------------------------------------------- missing browser


def test_missing_browser_gives_install_hint(tmp_path, monkeypatch):
    import kaleido

    fake_browser_path(tmp_path, monkeypatch)
    starts: list[int] = []
    monkeypatch.setattr(kaleido, "start_sync_server", lambda *a, **k: starts.append(1))

    existing = tmp_path / "keep.png"
    existing.write_bytes(b"keep me")
    for target in (tmp_path / "fig.png", existing, tmp_path / "fig.svg"):
        with pytest.raises(BrowserNotFoundError) as info:
            save_figure(make_fig(), target, width=100, height=100)
        msg = str(info.value)
        assert "apt-get install chromium" in msg
        assert "get_chrome_sync" in msg and "plotly_get_chrome" in msg
        assert "BROWSER_PATH" in msg and "no-such-chrome" in msg
    assert isinstance(info.value, ExportError) and isinstance(info.value, RuntimeError)

    with pytest.raises(BrowserNotFoundError, match="apt-get install chromium"):
        with export_session():
            pass
    with pytest.raises(BrowserNotFoundError):
        save_figures({"a": make_fig()}, tmp_path / "batch", formats=("html", "png"))
    assert starts == []
    assert export._session_depth == 0
    assert existing.read_bytes() == b"keep me"
    assert listing(tmp_path) == ["keep.png"]
    # HTML still works without a browser.
    assert save_figure(make_fig(), tmp_path / "ok.html").is_file()


def test_missing_browser_in_fresh_process(tmp_path):
    """The same through kaleido's own lookup, in a process with BROWSER_PATH set from the start."""
    proc = run_python(
        """
        import os, sys, pathlib
        import plotly.graph_objects as go
        from dsl_explore.export import BrowserNotFoundError, save_figure, _find_browser
        if _find_browser() is not None:
            print("SKIP"); sys.exit(0)
        out = pathlib.Path(os.environ["EXPORT_TEST_DIR"])
        try:
            save_figure(go.Figure(go.Scatter(y=[1, 2])), out / "fig.pdf")
        except BrowserNotFoundError as exc:
            print("RAISED", exc)
        print("LEFT", sorted(p.name for p in out.iterdir()))
        """,
        {"BROWSER_PATH": "/nonexistent/chromium", "EXPORT_TEST_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.startswith("SKIP"):
        pytest.skip("a kaleido-downloaded Chrome takes precedence over BROWSER_PATH here")
    assert "RAISED" in proc.stdout and "apt-get install chromium" in proc.stdout
    assert "LEFT []" in proc.stdout


@pytest.mark.skipif(not os.path.isfile("/bin/false"), reason="needs /bin/false")
def test_browser_that_dies_in_a_session_raises_instead_of_hanging(tmp_path):
    """A 'browser' that exits at once kills kaleido's server thread; calls must not wait forever."""
    proc = run_python(
        """
        import os, pathlib, time
        import plotly.graph_objects as go
        from dsl_explore.export import ExportError, export_session, save_figure
        out = pathlib.Path(os.environ["EXPORT_TEST_DIR"])
        t = time.monotonic()
        try:
            with export_session():
                save_figure(go.Figure(go.Scatter(y=[1, 2])), out / "fig.png")
        except ExportError as exc:
            print("RAISED", type(exc).__name__, round(time.monotonic() - t, 1), exc)
        print("LEFT", sorted(p.name for p in out.iterdir()))
        """,
        {"BROWSER_PATH": "/bin/false", "EXPORT_TEST_DIR": str(tmp_path)},
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert "RAISED ExportError" in proc.stdout, proc.stdout + proc.stderr
    assert "LEFT []" in proc.stdout


# ------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"width": 0}, ValueError, "width"),
        ({"width": -5}, ValueError, "width"),
        ({"width": 2.5}, TypeError, "width"),
        ({"width": True}, TypeError, "width"),
        ({"height": 0}, ValueError, "height"),
        ({"height": "100"}, TypeError, "height"),
        ({"scale": 0}, ValueError, "scale"),
        ({"scale": float("nan")}, ValueError, "scale"),
        ({"scale": "2"}, TypeError, "scale"),
        ({"format": "jpeg"}, ValueError, "format"),
        ({"format": 3}, TypeError, "format"),
        ({"format": "svg"}, ValueError, "path"),  # the path ends in .png
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        save_figure(make_fig(), tmp_path / "out" / "fig.png", **kwargs)
    assert listing(tmp_path) == []  # nothing created, not even the parent


def test_bad_paths_and_figures(tmp_path):
    with pytest.raises(ValueError, match="path") as info:
        save_figure(make_fig(), tmp_path / "fig")
    assert "format" in str(info.value)
    with pytest.raises(ValueError, match="path"):
        save_figure(make_fig(), tmp_path / "fig.gif")
    with pytest.raises(ValueError, match="format"):
        save_figure(make_fig(), tmp_path / "fig", format="png")
    with pytest.raises(TypeError, match="path"):
        save_figure(make_fig(), None)
    with pytest.raises(TypeError, match="fig"):
        save_figure({"data": []}, tmp_path / "fig.html")
    assert listing(tmp_path) == []


def test_save_figures_bad_arguments(tmp_path):
    fig = make_fig()
    with pytest.raises(TypeError, match="figs"):
        save_figures([fig], tmp_path)
    with pytest.raises(TypeError, match=r"figs\['b'\]"):
        save_figures({"a": fig, "b": object()}, tmp_path, formats="html")
    with pytest.raises(ValueError, match="figs keys"):
        save_figures({"../a": fig}, tmp_path, formats="html")
    with pytest.raises(ValueError, match="formats"):
        save_figures({"a": fig}, tmp_path, formats=("html", "html"))
    with pytest.raises(ValueError, match="formats"):
        save_figures({"a": fig}, tmp_path, formats=("gif",))
    with pytest.raises(ValueError, match="formats"):
        save_figures({"a": fig}, tmp_path, formats=())
    with pytest.raises(ValueError, match="scale"):
        save_figures({"a": fig}, tmp_path, formats="html", scale=-1)
    assert listing(tmp_path) == []


# ------------------------------------------------------------------------------- pyvista


@pytest.fixture(scope="module")
def sphere_plotter():
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    pv = pytest.importorskip("pyvista")
    pv.OFF_SCREEN = True
    plotter = pv.Plotter(off_screen=True)
    plotter.add_mesh(pv.Sphere(), color="tomato")
    yield plotter
    plotter.close()


def test_save_scene_png(tmp_path, sphere_plotter, monkeypatch):
    monkeypatch.setenv("PYVISTA_OFF_SCREEN", "true")
    PIL = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")

    out = save_scene(sphere_plotter, tmp_path / "scene.png", window_size=(160, 120))
    data = out.read_bytes()
    assert png_size(data) == (160, 120)
    with PIL.open(out) as im:
        pixels = np.asarray(im)
    assert pixels.shape[:2] == (120, 160)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 10, "the screenshot is blank"
    assert pixels.std() > 5
    assert listing(tmp_path) == ["scene.png"]


def test_png_encoders_agree(sphere_plotter):
    PIL = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")
    import io

    image = np.asarray(sphere_plotter.screenshot(return_img=True, window_size=(64, 48)))
    for encoded in (export._encode_png(image), export._encode_png_vtk(image)):
        assert png_size(encoded) == (64, 48)
        with PIL.open(io.BytesIO(encoded)) as im:
            np.testing.assert_array_equal(np.asarray(im), image)


def test_save_figure_writes_a_pyvista_scene_as_offline_html(tmp_path, sphere_plotter):
    """`save_figure(plotter, "x.html")` (trame-pyvista is in the ui extra): one page holding
    vtk.js and the scene, loading nothing from the network."""
    import re

    pytest.importorskip("trame_pyvista")
    out = save_figure(sphere_plotter, tmp_path / "scene.html")
    page = out.read_text(encoding="utf-8")
    assert "<html" in page.lower() and len(page) > 100_000, "no inline vtk.js scene"
    loads = r"""<(?:script|link|img|iframe)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    remote = re.findall(loads, page, flags=re.IGNORECASE)
    assert not remote, f"the scene page loads from the network: {remote[:3]}"
    png = save_figure(sphere_plotter, tmp_path / "scene.png", width=120, height=90)
    assert png_size(png.read_bytes()) == (120, 90)
    with pytest.raises(ValueError, match="format"):
        save_figure(sphere_plotter, tmp_path / "scene.pdf")
    assert listing(tmp_path) == ["scene.html", "scene.png"]


def test_save_scene_html_and_bad_arguments(tmp_path, sphere_plotter):
    try:
        import trame_pyvista  # noqa: F401
    except ImportError:
        with pytest.raises(ExportError, match="trame-pyvista"):
            save_scene(sphere_plotter, tmp_path / "scene.html")
    else:  # pragma: no cover - only where trame-pyvista is installed
        out = save_scene(sphere_plotter, tmp_path / "scene.html")
        assert "<html" in out.read_text(encoding="utf-8").lower()
        out.unlink()
    with pytest.raises(ValueError, match="window_size"):
        save_scene(sphere_plotter, tmp_path / "s.png", window_size=(0, 10))
    with pytest.raises(ValueError, match="window_size"):
        save_scene(sphere_plotter, tmp_path / "s.png", window_size=(10, 10, 3))
    with pytest.raises(TypeError, match="window_size"):
        save_scene(sphere_plotter, tmp_path / "s.png", window_size="ab")
    with pytest.raises(TypeError, match="window_size"):
        save_scene(sphere_plotter, tmp_path / "s.png", window_size=(10.5, 10))
    with pytest.raises(ValueError, match="format"):
        save_scene(sphere_plotter, tmp_path / "s.pdf", format="pdf")
    with pytest.raises(ValueError, match="path"):
        save_scene(sphere_plotter, tmp_path / "s.svg")
    with pytest.raises(TypeError, match="plotter"):
        save_scene(object(), tmp_path / "s.png")
    assert listing(tmp_path) == []
