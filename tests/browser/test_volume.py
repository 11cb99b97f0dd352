"""pyvista scenes rotate in JupyterLab, offline; the dashboard's picture (issue 11).

Notebook 03 shows its pyvista scenes with the ``html`` backend: an iframe holding vtk.js and
the scene, rendered in the page with no server and nothing from the network. This test runs
03 in a real JupyterLab + headless Chromium (quick mode), checks that no request leaves the
machine and no cell wrote to stderr, drags the mouse over the first scene and checks that the
picture changed. A second test runs 04 and screenshots the training dashboard; with
``DSL_EXPLORE_SCREENSHOTS=docs/screenshots`` the pictures are copied there
(``lab_03_pyvista.png``, ``lab_04_dashboard.png``, the README's).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from _lab import (
    CHROMIUM_ARGS,
    NOTEBOOK,
    ROOT,
    artifacts_dir,
    cell_errors,
    find_chromium,
    lab_server,
    open_notebook,
    run_all,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = ("03_volumes_3d", "04_live_training")
# WebGL without a GPU: SwiftShader (what a machine without a GPU driver falls back to)
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
REQUIRE = os.environ.get("DSL_EXPLORE_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"DSL_EXPLORE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _publish(path: Path, name: str) -> None:
    shots = os.environ.get("DSL_EXPLORE_SCREENSHOTS", "").strip()
    if shots:
        dest = Path(shots) if Path(shots).is_absolute() else ROOT / shots
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / name)


def _n_code_cells(path: Path) -> int:
    return sum(c["cell_type"] == "code" for c in json.loads(path.read_text())["cells"])


@pytest.fixture(scope="module")
def browser():
    path = find_chromium()
    if path is None:
        _unavailable("no Chromium/Chrome found (apt-get install chromium, or set BROWSER_PATH)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS + WEBGL_ARGS,
                              headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    for name in NOTEBOOKS:
        shutil.copy2(ROOT / "notebooks" / f"{name}.ipynb", root / f"{name}.ipynb")
    env = {"DSL_EXPLORE_QUICK": "1", "DSL_EXPLORE_FIGURES": "figures", "MPLBACKEND": "Agg",
           "PYVISTA_OFF_SCREEN": "true"}
    with lab_server(root, tmp, env_extra=env) as srv:
        yield srv
    shutil.copy2(srv.log_path, artifacts_dir() / "jupyterlab_volume.log")


def _open_and_run(browser, server, name: str, viewport: tuple[int, int]):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    base = urlparse(server.url()).netloc
    outside: list[str] = []

    def note(req) -> None:
        u = urlparse(req.url)
        if u.scheme in ("http", "https", "ws", "wss") and u.netloc != base:
            outside.append(req.url)

    page.on("request", note)
    open_notebook(page, server, f"{name}.ipynb", workspace=f"vol-{name[:2]}")
    run_all(page, _n_code_cells(server.root_dir / f"{name}.ipynb"), timeout_ms=400_000)
    errors = cell_errors(page)
    assert not errors, f"{name}: cell errors:\n" + "\n---\n".join(errors)
    stderr = page.locator(f"{NOTEBOOK} [data-mime-type='application/vnd.jupyter.stderr']")
    assert stderr.count() == 0, f"{name}: stderr in the page: {stderr.all_inner_texts()[:3]}"
    return context, page, outside


def _differing(a: bytes, b: bytes) -> float:
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)
    assert x.shape == y.shape
    return float((np.abs(x - y).max(axis=-1) > 24).mean())


def test_pyvista_scene_rotates_offline(browser, server):
    context, page, outside = _open_and_run(browser, server, "03_volumes_3d", (1440, 1100))
    try:
        frame_el = page.locator(f"{NOTEBOOK} iframe.pyvista").first
        frame_el.wait_for(timeout=60_000)
        frame_el.scroll_into_view_if_needed()
        inner = frame_el.content_frame
        inner.locator("canvas").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # vtk.js draws the scene after loading it
        before = frame_el.screenshot()
        (artifacts_dir() / "03_pyvista_before.png").write_bytes(before)
        box = frame_el.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, box
        # drag across the left view (the two cameras are linked)
        x0, y0 = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x0 + 14 * i, y0 + 5 * i)
            page.wait_for_timeout(30)
        page.mouse.up()
        page.wait_for_timeout(1000)
        after = frame_el.screenshot()
        path = artifacts_dir() / "03_pyvista_after.png"
        path.write_bytes(after)
        changed = _differing(before, after)
        assert changed > 0.01, f"the drag did not rotate the scene ({changed:.2%} of pixels)"
        assert not outside, f"the page loaded from outside the machine: {outside[:5]}"
        page.locator(f"{NOTEBOOK} iframe.pyvista").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        full = artifacts_dir() / "lab_03_pyvista.png"
        page.screenshot(path=str(full))
        _publish(full, "lab_03_pyvista.png")
        print(f"03: drag changed {changed:.1%} of the scene's pixels; external requests: 0")
    finally:
        context.close()
        server.delete_sessions()


def test_dashboard_screenshot(browser, server):
    context, page, outside = _open_and_run(browser, server, "04_live_training", (1440, 1500))
    try:
        status = page.locator(f"{NOTEBOOK} .dsl-status").filter(has_text="steps/s").first
        status.wait_for(timeout=120_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.dsl-status')]"
            ".some(e => /finished|stopped/.test(e.textContent))", timeout=300_000, polling=500)
        text = status.inner_text()
        assert "elapsed" in text, text
        cell = page.locator(f"{NOTEBOOK} .jp-CodeCell:has(.dsl-status)").first
        cell.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)
        n_traces = page.evaluate(
            "() => [...document.querySelectorAll('.jp-CodeCell .js-plotly-plot')]"
            ".map(p => (p.data || []).filter(t => (t.x || []).length || (t.z || []).length)"
            ".length)")
        assert n_traces and max(n_traces) > 0, f"blank dashboard figures: {n_traces}"
        path = artifacts_dir() / "lab_04_dashboard.png"
        page.screenshot(path=str(path))
        _publish(path, "lab_04_dashboard.png")
        assert not outside, f"the page loaded from outside the machine: {outside[:5]}"
        print(f"04: status: {text.splitlines()[0]}")
    finally:
        context.close()
        server.delete_sessions()
