"""The kit in a real browser: JupyterLab + headless Chromium (Python playwright, system browser).

For ``01_dsl_in_1d`` and ``02_heatmaps_2d``: open the notebook in JupyterLab, Run All, wait
until every cell has run without error, find the ``explore()`` widget (the output holding the
``.dsl-readout``), drag its k slider (and in 02 the axis-1 weight slider), and check that what
plotly drew (SVG paths / heatmap images / title) and the readout text both change. Screenshots go
to ``artifacts/browser/`` (or ``$DSL_EXPLORE_ARTIFACTS``); with
``DSL_EXPLORE_SCREENSHOTS=docs/screenshots`` the final ones are also copied there as
``lab_<notebook>.png`` (the README's pictures).

Skips when no Chromium or no playwright is found, unless ``DSL_EXPLORE_REQUIRE_BROWSER=1``
(CI), where that is a failure. The notebooks are copied to a temporary directory first, so the
committed ones stay without outputs; the server runs in a sandbox (see ``_lab.py``) and is always
stopped, its sessions deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from _lab import (
    CHROMIUM_ARGS,
    EXPLORER_CELL,
    GIVE_UP_AT_ONCE_JS,
    ROOT,
    artifacts_dir,
    cell_errors,
    diagnose,
    drag_slider,
    explorer,
    find_chromium,
    fingerprint,
    lab_server,
    open_notebook,
    readout_text,
    redrawn,
    run_all,
    slider,
    slider_value,
    wait_changed,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = ("01_dsl_in_1d", "02_heatmaps_2d")
VIEWPORTS = {"01_dsl_in_1d": (1440, 1180), "02_heatmaps_2d": (1440, 1420)}
K_DRAG_PX = {"01_dsl_in_1d": 40, "02_heatmaps_2d": 25}  # k: 10 -> ~70, 200 -> ~700
REQUIRE = os.environ.get("DSL_EXPLORE_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"DSL_EXPLORE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        _unavailable("no Chromium/Chrome found (apt-get install chromium, or set BROWSER_PATH)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path):
    """One JupyterLab for the module, serving copies of the notebooks, in quick mode."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    for name in NOTEBOOKS:
        shutil.copy2(ROOT / "notebooks" / f"{name}.ipynb", root / f"{name}.ipynb")
    # relative: under the kernels' working directory, the temporary copy (the Export box
    # then reads figures/<notebook>, as it does for a user)
    env = {"DSL_EXPLORE_QUICK": "1", "DSL_EXPLORE_FIGURES": "figures",
           "MPLBACKEND": "Agg", "PYVISTA_OFF_SCREEN": "true"}
    with lab_server(root, tmp, env_extra=env) as srv:
        yield srv
    shutil.copy2(srv.log_path, artifacts_dir() / "jupyterlab.log")


@pytest.fixture
def page(browser, server, request):
    name = request.node.callspec.params["name"]
    w, h = VIEWPORTS[name]
    context = browser.new_context(viewport={"width": w, "height": h})
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text[:500]}")
          if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    pg.console_errors = console  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
        server.delete_sessions()  # its kernel too: the next notebook gets the CPU


def _shot(page, name: str, stage: str) -> Path:
    """Scroll the explorer's cell to the top of the notebook panel and screenshot the page."""
    page.locator(EXPLORER_CELL).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)  # let plotly finish its transition
    path = artifacts_dir() / f"{name}_{stage}.png"
    page.screenshot(path=str(path))
    return path


def _move_and_check(page, ex, description: str, dx: float, name: str, stage: str) -> Path:
    """Drag one slider; assert the rendered figure and the readout change."""
    s = slider(ex, re.compile(rf"^\s*{re.escape(description)}\s*$"))
    assert s.count() == 1, f"no slider labelled {description!r} in the explorer of {name}"
    value0 = slider_value(s)
    readout0 = readout_text(ex)
    fig0 = fingerprint(ex)
    drag_slider(page, s, dx)
    value1 = wait_changed(page, lambda: slider_value(s), value0, timeout_s=10)
    assert value1 != value0, f"{description}: the drag did not move the slider ({value0})"
    readout1 = wait_changed(page, lambda: readout_text(ex), readout0)
    fig1 = wait_changed(page, lambda: fingerprint(ex), fig0)
    page.wait_for_timeout(500)  # the last drag position may still be on its way
    path = _shot(page, name, stage)
    assert readout1 != readout0, f"{description} {value0} -> {value1}: readout unchanged"
    drawn = redrawn(fig0, fig1)
    assert drawn, f"{description} {value0} -> {value1}: the plotly figure did not redraw"
    print(f"{name}: {description} {value0} -> {value1}; redrawn: {sorted(drawn)}")
    return path


def _n_code_cells(path: Path) -> int:
    return sum(c["cell_type"] == "code" for c in json.loads(path.read_text())["cells"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(page, server, name):
    try:
        _drive(page, server, name)
    except Exception as err:
        out = artifacts_dir()
        with contextlib.suppress(Exception):
            page.screenshot(path=str(out / f"{name}_failure.png"))
        state = json.dumps({**diagnose(page), "console": page.console_errors[-20:]}, indent=1)
        (out / f"{name}_failure.json").write_text(state)
        raise AssertionError(f"{name}: {type(err).__name__}: {err}\npage state: {state}\n"
                             f"server log:\n{server.log_tail(25)}") from err


@pytest.mark.parametrize("name", ["02_heatmaps_2d"])
def test_figures_update_after_anywidget_gave_up_on_them(page, server, name):
    """Every anywidget model misses its 2 s window; the explorer's figure must still update."""
    page.context.add_init_script(GIVE_UP_AT_ONCE_JS)
    open_notebook(page, server, f"{name}.ipynb", workspace="test-gave-up")
    run_all(page, _n_code_cells(server.root_dir / f"{name}.ipynb"))
    assert not cell_errors(page)
    ex = explorer(page)
    shrunk = page.evaluate("() => window.__windows_shrunk")
    assert shrunk >= 1, "no anywidget model was created"
    gave_up = [e for e in page.console_errors if "Failed to initialize model" in e]
    assert gave_up, f"anywidget did not give up on any model: {page.console_errors}"
    _move_and_check(page, ex, "k (sharpness)", K_DRAG_PX[name], name, "gave_up_after_k")


def _drive(page, server, name: str) -> None:
    t0 = time.perf_counter()
    open_notebook(page, server, f"{name}.ipynb", workspace=f"test-{name[:2]}")
    run_s, clicks = run_all(page, _n_code_cells(server.root_dir / f"{name}.ipynb"))
    errors = cell_errors(page)
    assert not errors, f"{name}: cell errors in the browser:\n" + "\n---\n".join(errors)
    ex = explorer(page)  # raises EmptyFigureError on a blank FigureWidget (no re-run)
    assert "DSL" in readout_text(ex) and "exact" in readout_text(ex)
    fp = fingerprint(ex)
    assert fp is not None and (fp["n_lines"] or fp["n_images"]), f"no plotly figure drawn: {fp}"
    _shot(page, name, "1_after_run_all")

    final = _move_and_check(page, ex, "k (sharpness)", K_DRAG_PX[name], name, "2_after_k")
    if name == "02_heatmaps_2d":
        final = _move_and_check(page, ex, "w axis 1", -45, name, "3_after_weight")

    shots = os.environ.get("DSL_EXPLORE_SCREENSHOTS", "").strip()
    if shots:
        dest = Path(shots)
        if not dest.is_absolute():
            dest = ROOT / dest
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(final, dest / f"lab_{name}.png")
    errs = [e for e in page.console_errors if "favicon" not in e]  # type: ignore[attr-defined]
    print(f"{name}: run all {run_s:.1f} s ({clicks} click(s)), "
          f"whole test {time.perf_counter() - t0:.1f} s; browser console errors: {len(errs)}")
