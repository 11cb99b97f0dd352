"""Helpers for the real-browser tests: a JupyterLab server in a sandbox, and JupyterLab selectors.

The server is started through ``scripts/lab`` (the same command as ``make lab``: 127.0.0.1, a
token) on a free loopback port, with ``JUPYTER_CONFIG_DIR``, ``JUPYTER_RUNTIME_DIR``,
``JUPYTER_DATA_DIR`` and ``IPYTHONDIR`` in a temporary directory, and a user setting there that
turns off JupyterLab's news toast (it would cover the page). Nothing is written to ``~`` or to the
virtual environment.

Selectors (JupyterLab 4.6, ipywidgets 8.1, plotly 6-7):

- notebook ready: ``.jp-Notebook .jp-Cell``; kernel connected and idle: the status bar's
  kernel item reads ``<kernel name> | Idle`` (the toolbar's
  ``.jp-Notebook-ExecutionIndicator[data-status='idle']`` also holds before a kernel exists);
- Run All: the ``Run`` menu, then ``li.lm-Menu-item[data-command='runmenu:run-all']``;
- done: every code cell's prompt reads ``[n]:``;
- the explorer: the output area that holds the readout ``.dsl-readout`` (a CSS class the
  library sets); inside it a slider is the ``.widget-slider`` whose ``.widget-label`` is its
  description (``k (sharpness)``, ``w axis 0``...), moved by dragging its ``.noUi-handle``;
- the figure: the ``.js-plotly-plot`` inside the explorer; "rendered" means its SVG (line and
  bar paths, heatmap images, title) which plotly.js redraws on every update.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
"""Flags for the system Chromium (without the networking ones it keeps dialling out)."""

USER_SETTINGS = {
    # no news toast over the page, no update check
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # render every cell (the default windowing attaches only the cells near the viewport, so
    # the prompts of the others could not be read)
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
"""JupyterLab user settings written into the sandbox (``<plugin dir>/<plugin>``: values)."""

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
"""The notebook on screen (a restored workspace may hold hidden ones too)."""
READOUT = ".dsl-readout"
EXPLORER = f"{NOTEBOOK} .jp-OutputArea-child:has({READOUT})"
EXPLORER_CELL = f"{NOTEBOOK} .jp-CodeCell:has({READOUT})"
PLOT = ".js-plotly-plot"
# what plotly drew: lines, bars, heatmap images and layout images (the explorer's 2D panels)
DRAWN = ".scatterlayer .js-line, .barlayer path, .heatmaplayer image, image.hm, .imagelayer image"


def find_chromium() -> str | None:
    """A Chrome/Chromium executable: ``BROWSER_PATH``, else the usual names on PATH."""
    env = os.environ.get("BROWSER_PATH", "").strip()
    if env and Path(env).is_file() and os.access(env, os.X_OK):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class LabServer:
    """A running JupyterLab; ``url(path)`` adds the token."""

    proc: subprocess.Popen
    port: int
    token: str
    root_dir: Path
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        status, body = _request(self.url(f"api/{path}"), method)
        if status >= 400:
            raise RuntimeError(f"{method} /api/{path} -> {status}: {body[:200]!r}")
        return json.loads(body) if body else None

    def delete_sessions(self) -> int:
        """Shut down every session (and its kernel); returns how many there were."""
        try:
            sessions = self.api("sessions")
        except (OSError, RuntimeError):
            return 0
        for s in sessions:
            with contextlib.suppress(OSError, RuntimeError):
                self.api(f"sessions/{s['id']}", method="DELETE")
        return len(sessions)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def sandbox_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for the server and its kernels: Jupyter dirs in ``tmp``, no news toast."""
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        d = tmp / var.lower()
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    env.pop("JUPYTER_TOKEN", None)
    # user settings live under $JUPYTER_CONFIG_DIR/lab/user-settings (LabApp.user_settings_dir)
    user_settings = Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings"
    for plugin, values in USER_SETTINGS.items():
        path = user_settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # kernels run `python` from PATH (the venv's kernelspec): put this interpreter first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["VENV"] = sys.prefix
    env.update(extra)
    return env


@contextlib.contextmanager
def lab_server(root_dir: Path, tmp: Path, *, env_extra: dict[str, str] | None = None,
               timeout_s: float = 60.0) -> Iterator[LabServer]:
    """Start ``scripts/lab`` on a free port with a token; always stop it (sessions first)."""
    token = hashlib.sha256(os.urandom(32)).hexdigest()[:48]
    port = free_port()
    env = sandbox_env(tmp, PORT=str(port), TOKEN=token, NOTEBOOK_DIR=str(root_dir),
                      **(env_extra or {}))
    log_path = tmp / "jupyterlab.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "lab")], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = LabServer(proc, port, token, root_dir, log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n"
                                   f"{server.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = _request(server.url("api/status"))
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab not ready after {timeout_s:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            server.delete_sessions()
            proc.send_signal(signal.SIGTERM)  # the jupyter process itself (scripts/lab execs)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def artifacts_dir() -> Path:
    """``artifacts/browser`` or ``$DSL_EXPLORE_ARTIFACTS/browser``: screenshots, logs, failures."""
    out = Path(os.environ.get("DSL_EXPLORE_ARTIFACTS") or ROOT / "artifacts") / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


# ------------------------------------------------------------------------------ in the page

_ALL_PROMPTS_JS = f"""
() => [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt')]
        .map(e => e.textContent.trim())
"""

_ERRORS_JS = f"""
() => [...document.querySelectorAll(
        '{NOTEBOOK} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')]
        .map(e => e.innerText.slice(0, 2000))
"""

# A digest of what plotly drew: the paths of lines and bars, the heatmap images, the title.
FINGERPRINT_JS = """
(root) => {
  const gd = root.querySelector('.js-plotly-plot');
  if (!gd) return null;
  const h = (s) => { let x = 5381; for (let i = 0; i < s.length; i++) {
      x = ((x << 5) + x + s.charCodeAt(i)) | 0; } return (x >>> 0).toString(16); };
  const attrs = (sel, a) => [...gd.querySelectorAll(sel)].map(e => e.getAttribute(a) || '');
  const lines = attrs('.scatterlayer .js-line', 'd').join('|');
  const bars = attrs('.barlayer path', 'd').join('|');
  const images = [...gd.querySelectorAll('.heatmaplayer image, image.hm, .imagelayer image')]
      .map(e => e.getAttribute('href') || e.getAttribute('xlink:href') || '').join('|');
  const title = [...gd.querySelectorAll('.gtitle')].map(e => e.textContent).join('|');
  return {lines: h(lines), bars: h(bars), images: h(images), title: title,
          n_lines: attrs('.scatterlayer .js-line', 'd').length,
          n_bars: attrs('.barlayer path', 'd').length,
          n_images: gd.querySelectorAll('.heatmaplayer image, image.hm, .imagelayer image').length};
}
"""


# anywidget (0.11) gives each model 2 s (``AbortSignal.timeout(2000)``) to load its module and
# run its initialize, then rejects its ``ready`` and drops every later comm message to it. Under
# load a model can miss that window whatever its module costs (seen once in CI: a figure that
# drew its first state and then stayed frozen). This makes every model miss it.
GIVE_UP_AT_ONCE_JS = """
(() => {
  const timeout = AbortSignal.timeout.bind(AbortSignal);
  window.__windows_shrunk = 0;
  AbortSignal.timeout = (ms) => {
    if (ms !== 2000) return timeout(ms);
    window.__windows_shrunk += 1;
    return timeout(0);
  };
})();
"""
"""An init script for a page: every anywidget model misses its window (``window.__windows_shrunk``
counts them)."""


def open_notebook(page: Any, server: LabServer, name: str, *, workspace: str,
                  timeout_ms: int = 60_000) -> None:
    """Open ``name`` alone in a fresh workspace; wait until it shows and its kernel is idle.

    A workspace of its own (``/lab/workspaces/<workspace>/tree/<name>?reset``) keeps JupyterLab
    from restoring the documents an earlier test opened. The left sidebar is collapsed.
    """
    page.goto(server.url(f"lab/workspaces/{workspace}/tree/{name}?reset"),
              wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=timeout_ms)
    # The toolbar's execution indicator reads "idle" before any kernel exists ("No Kernel |
    # Initializing", then Connecting, Unknown, Busy); the status bar's kernel item names the
    # kernel and says Idle only once it is connected.
    wait_kernel_idle(page, timeout_ms=timeout_ms)
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()  # clicking the open panel's tab collapses the sidebar
    # give the notebook the focus again (menu commands act on the active notebook)
    page.locator(f"{NOTEBOOK} .jp-Cell").first.click()


def wait_kernel_idle(page: Any, *, timeout_ms: int = 60_000) -> None:
    """Wait until the status bar's kernel item reads ``<kernel> | Idle``."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /^(?!No Kernel).+ \\| Idle$/.test(e.textContent.trim()))",
        timeout=timeout_ms, polling=200,
    )


def run_all(page: Any, n_code_cells: int, *, timeout_ms: int = 180_000) -> tuple[float, int]:
    """Run > Run All Cells; wait until all ``n_code_cells`` code cells show ``[n]:``.

    Returns the seconds it took and the number of Run All clicks it needed (1 normally).
    """
    # cells are attached progressively (on idle), even with windowing off: wait for all
    try:
        page.wait_for_function(f"() => ({_ALL_PROMPTS_JS})().length === {n_code_cells}",
                               timeout=30_000, polling=250)
    except Exception as err:
        shown = len(page.evaluate(_ALL_PROMPTS_JS))
        raise AssertionError(
            f"{shown} code cells rendered, the notebook has {n_code_cells}") from err
    t0 = time.perf_counter()
    attempts = 0
    for attempt in range(3):
        # a Run All sent while the kernel is still connecting can be dropped: retry
        page.locator("div.lm-MenuBar-itemLabel:text-is('Run')").click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        attempts = attempt + 1
        try:  # it started: some prompt left "[ ]:"
            page.wait_for_function(f"() => ({_ALL_PROMPTS_JS})().some(t => t !== '[ ]:')",
                                   timeout=10_000, polling=250)
            break
        except Exception as err:
            if attempt == 2:
                raise AssertionError("Run > Run All Cells did not start the notebook") from err
            page.keyboard.press("Escape")
    page.wait_for_function(
        f"""() => {{
            const p = ({_ALL_PROMPTS_JS})();
            return p.length === {n_code_cells} && p.every(t => /^\\[\\d+\\]:$/.test(t));
        }}""",
        timeout=timeout_ms, polling=500,
    )
    wait_kernel_idle(page, timeout_ms=timeout_ms)
    return time.perf_counter() - t0, attempts


def run_new_cell(page: Any, code: str, *, timeout_ms: int = 120_000) -> None:
    """Add a code cell with ``code`` below the last cell, run it, wait until it shows ``[n]:``."""
    n_code = len(page.evaluate(_ALL_PROMPTS_JS))
    # the prompt column selects a cell without clicking into its outputs (widgets, buttons)
    page.locator(f"{NOTEBOOK} .jp-Cell").last.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, in command mode
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code)  # no key events: no auto-closed brackets
    page.keyboard.press("Control+Enter")  # run it in place (Shift+Enter would add another)
    page.wait_for_function(
        f"""() => {{
            const p = ({_ALL_PROMPTS_JS})();
            return p.length === {n_code + 1} && /^\\[\\d+\\]:$/.test(p[p.length - 1]);
        }}""",
        timeout=timeout_ms, polling=250,
    )


def cell_errors(page: Any) -> list[str]:
    return list(page.evaluate(_ERRORS_JS))


_DIAGNOSE_JS = f"""
() => {{
  const q = (sel) => [...document.querySelectorAll(sel)];
  const out = q('{EXPLORER}')[0];
  const gd = out ? out.querySelector('{PLOT}') : null;
  return {{
    prompts: ({_ALL_PROMPTS_JS})(),
    readouts: q('{NOTEBOOK} {READOUT}').map(e => e.innerText.slice(0, 300)),
    explorer_text: out ? out.innerText.slice(0, 600) : null,
    plots_in_explorer: out ? out.querySelectorAll('{PLOT}').length : 0,
    drawn: gd ? gd.querySelectorAll('{DRAWN}').length : null,
    title: gd ? [...gd.querySelectorAll('.gtitle')].map(e => e.textContent).join('|') : null,
    gd_traces: gd && gd.data ? gd.data.length : null,
    gd_height: gd && gd.layout ? gd.layout.height : null,
    widget_errors: q('{NOTEBOOK} .jp-OutputArea-output').map(e => e.innerText)
        .filter(t => /Error displaying widget|model not found/i.test(t)).map(t => t.slice(0, 300)),
    status_bar: q('.jp-StatusBar-TextItem').map(e => e.textContent.trim()).filter(t => t),
  }};
}}
"""


def diagnose(page: Any) -> dict[str, Any]:
    """What the page shows (prompts, readouts, the explorer's figure): for failure reports."""
    try:
        return dict(page.evaluate(_DIAGNOSE_JS))
    except Exception as err:  # the page may be gone
        return {"error": repr(err)}


class EmptyFigureError(AssertionError):
    """The explorer's FigureWidget was drawn without its data (see :func:`explorer`)."""


_EMPTY_FIGURE_JS = f"""
() => {{
    const gd = document.querySelector('{EXPLORER} {PLOT}');
    return !!(gd && gd.layout && gd.data && gd.data.length === 0 && gd.layout.height === 360);
}}
"""


def explorer(page: Any, *, timeout_ms: int = 120_000) -> Any:
    """The output area of the ``explore()`` widget, once its readout and figure are drawn.

    Raises :class:`EmptyFigureError` when the FigureWidget's view rendered without its data (an
    empty plot at plotly's fallback height of 360 px that never fills in). With plotly's own
    FigureWidget that happened under CPU load (anywidget drops the messages of a model whose
    5 MB module took over 2 s to load); :class:`dsl_explore.widgets._figure.LiveFigure` fixes
    it, so here it is a failure.
    """
    loc = page.locator(EXPLORER).first
    loc.locator(f"{PLOT} .main-svg").first.wait_for(state="attached", timeout=timeout_ms)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if not page.evaluate(_EMPTY_FIGURE_JS):
            break
        page.wait_for_timeout(500)
    else:
        raise EmptyFigureError("the explorer's plotly FigureWidget rendered without its data "
                               "(0 traces, fallback height 360 px) and stayed empty for 20 s")
    # plotly.js adds the SVG first and the traces and title after: wait for those too
    page.wait_for_function(
        f"""() => {{
            const r = document.querySelector('{EXPLORER} {READOUT}');
            const gd = document.querySelector('{EXPLORER} {PLOT}');
            if (!r || !r.innerText.includes('DSL') || !gd) return false;
            const drawn = gd.querySelectorAll('{DRAWN}').length;
            const title = [...gd.querySelectorAll('.gtitle')].map(e => e.textContent).join('');
            return drawn > 0 && title.length > 0;
        }}""",
        timeout=timeout_ms, polling=250,
    )
    return loc


def slider(explorer_loc: Any, description: Any) -> Any:
    """The ``.widget-slider`` of the explorer whose label is ``description`` (exact text)."""
    label = explorer_loc.page.locator(".widget-label", has_text=description)
    return explorer_loc.locator(".widget-slider").filter(has=label).first


def slider_value(slider_loc: Any) -> str:
    """The slider's own readout (``.widget-readout``), e.g. ``10`` or ``1.00``."""
    return slider_loc.locator(".widget-readout").first.inner_text().strip()


def drag_slider(page: Any, slider_loc: Any, dx: float) -> None:
    """Drag the slider's handle ``dx`` pixels (a user's drag; the widget syncs while moving)."""
    handle = slider_loc.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    assert box is not None, "slider handle not visible"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    steps = 8
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y)
        page.wait_for_timeout(40)
    page.mouse.up()


def press_slider(slider_loc: Any, key: str, times: int) -> None:
    """Focus the handle and press ``key`` (ArrowRight / ArrowLeft) ``times`` times."""
    handle = slider_loc.locator(".noUi-handle").first
    handle.focus()
    for _ in range(times):
        handle.press(key)


def redrawn(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """What plotly redrew between two :func:`fingerprint` s: lines, bars, images, title."""
    return {k for k in ("lines", "bars", "images", "title") if after[k] != before[k]}


def readout_text(explorer_loc: Any) -> str:
    return explorer_loc.locator(READOUT).first.inner_text()


def fingerprint(explorer_loc: Any) -> dict[str, Any]:
    return explorer_loc.evaluate(FINGERPRINT_JS)


def wait_changed(page: Any, read: Any, before: Any, *, timeout_s: float = 30.0) -> Any:
    """Poll ``read()`` until it differs from ``before``; returns the new value (or the last)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        value = read()
    return value
