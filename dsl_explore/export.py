"""Save plotly figures and pyvista scenes to files, atomically.

- :func:`save_figure` writes one plotly figure as PNG, SVG or PDF (rendered by kaleido 1.x in a
  headless Chrome/Chromium) or as a self-contained HTML page (no browser needed).
- :func:`save_figures` writes a batch, reusing one browser through :func:`export_session`.
- :func:`save_scene` writes a pyvista plotter as PNG or as a self-contained HTML page (vtk.js
  and the scene inline, rotatable offline; needs ``trame-pyvista``, part of the ``ui`` extra).
  :func:`save_figure` passes a plotter on to it.
- :func:`atomic_write_bytes` / :func:`atomic_write_text` (from :mod:`dsl_explore.io`) are the
  writers underneath: the data
  goes to a temporary file in the target's directory, is flushed and fsynced, then renamed onto
  the target with :func:`os.replace`. A reader never sees a partial file, and on any failure the
  temporary file is removed and an existing target is left as it was.

Parent directories of a target are created when missing (``mkdir -p``).

Importing this module is cheap: plotly, kaleido, pyvista and vtk are imported inside the
functions that need them.

Static image export needs a Chrome or Chromium binary. kaleido looks at ``BROWSER_PATH``, then
``PATH``, then the usual install locations; when none is found :class:`BrowserNotFoundError` says
how to install one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from dsl_explore.io import atomic_write_bytes, atomic_write_text, check_path

__all__ = [
    "FIGURE_FORMATS",
    "SCENE_FORMATS",
    "BrowserNotFoundError",
    "ExportError",
    "atomic_write_bytes",
    "atomic_write_text",
    "browser_available",
    "export_session",
    "figure_formats",
    "save_figure",
    "save_figures",
    "save_scene",
]

PathLike = Union[str, "os.PathLike[str]"]
_T = TypeVar("_T")

FIGURE_FORMATS: tuple[str, ...] = ("png", "svg", "pdf", "html")
"""Formats :func:`save_figure` writes; ``png``, ``svg`` and ``pdf`` need a browser."""

SCENE_FORMATS: tuple[str, ...] = ("png", "html")
"""Formats :func:`save_scene` writes; ``html`` needs the ``trame-pyvista`` package."""

_IMAGE_FORMATS = ("png", "svg", "pdf")
_SUFFIX_ALIASES = {"htm": "html"}

_INSTALL_HINT = (
    "Install one: `apt-get install chromium` on Debian/Ubuntu; or from Python "
    "`kaleido.get_chrome_sync()` (shell: `plotly_get_chrome` or `kaleido_get_chrome`), which "
    "downloads Chrome for kaleido; or set the BROWSER_PATH environment variable to an existing "
    "Chrome/Chromium executable. HTML export (format='html') needs no browser."
)


class ExportError(RuntimeError):
    """An export failed for a reason other than bad arguments (browser, renderer, backend)."""


class BrowserNotFoundError(ExportError):
    """kaleido found no Chrome/Chromium to render static images with."""


# --------------------------------------------------------------------------------------------
# argument checks


def _check_positive_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int or None, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_scale(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"scale must be a positive number or None, got {type(value).__name__}")
    scale = float(value)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0, got {value!r}")
    return scale


def _resolve_format(path: Path, format: object, allowed: Sequence[str]) -> str:
    """The export format: ``format`` if given (it must match the suffix), else the suffix."""
    choices = ", ".join(repr(f) for f in allowed)
    raw_suffix = path.suffix[1:].lower()
    suffix = _SUFFIX_ALIASES.get(raw_suffix, raw_suffix)
    if format is None:
        if suffix not in allowed:
            raise ValueError(
                f"cannot infer format from path {str(path)!r} (suffix {path.suffix!r}); "
                f"use a suffix or pass format= one of {choices}"
            )
        return suffix
    if not isinstance(format, str):
        raise TypeError(f"format must be a str or None, got {type(format).__name__}")
    fmt = _SUFFIX_ALIASES.get(format.lower().lstrip("."), format.lower().lstrip("."))
    if fmt not in allowed:
        raise ValueError(f"format must be one of {choices}, got {format!r}")
    if suffix != fmt:
        raise ValueError(
            f"format={format!r} does not match the suffix of path {str(path)!r}; "
            f"name the file '*.{fmt}' or leave format=None to infer it"
        )
    return fmt


def _is_scene(obj: object) -> bool:
    """True for a pyvista plotter (checked by its module, so pyvista is not imported)."""
    return type(obj).__module__.split(".")[0] == "pyvista" and callable(
        getattr(obj, "screenshot", None)
    )


def _check_figure(fig: object) -> None:
    from plotly.basedatatypes import BaseFigure

    if not isinstance(fig, BaseFigure):
        raise TypeError(
            f"fig must be a plotly Figure or FigureWidget, got {type(fig).__name__}"
        )


# --------------------------------------------------------------------------------------------
# kaleido: one browser per session


_session_lock = threading.RLock()
_render_lock = threading.Lock()
_session_depth = 0
_session_owned = False


def _kaleido_server() -> Any:
    import kaleido

    return getattr(kaleido, "_global_server", None)


def _server_running() -> bool:
    server = _kaleido_server()
    try:
        return bool(server is not None and server.is_running())
    except Exception:  # kaleido internals changed: assume not running
        return False


def _kaleido_options() -> dict[str, Any]:
    """The Kaleido() options plotly.io.to_image would pass (plotly.js, MathJax, headers)."""
    import plotly.io as pio

    kopts: dict[str, Any] = {}
    for key in ("plotlyjs", "mathjax", "headers"):
        value = getattr(pio.defaults, key, None)
        if value:
            kopts[key] = value
    return kopts


def _browser_missing_message(detail: object = None) -> str:
    where = os.environ.get("BROWSER_PATH")
    lead = "No Chrome/Chromium browser found for static image export (kaleido 1.x needs one)"
    if where:
        lead += f"; BROWSER_PATH={where!r} is not an existing file"
    msg = f"{lead}. {_INSTALL_HINT}"
    if detail:
        msg += f" (kaleido said: {str(detail).strip()})"
    return msg


class _ChromiumByeFilter(logging.Filter):
    """Drop choreographer's traceback for Chromium's closing notice, keep every other record.

    Chromium ends its DevTools pipe with ``{bye}``, which is not JSON. choreographer (1.4) tells
    it apart only when it arrives alone in a read; when it comes in the same read as the last
    replies, it logs "JSONError decoding message. Ignoring" with a traceback (on stderr, in a
    notebook under the export cell) and carries on: the export itself is complete.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        doc = getattr(getattr(exc, "__cause__", None), "doc", None)
        return not (isinstance(doc, str) and doc.startswith("{bye}"))


def _quiet_chromium_bye() -> None:
    """Install :class:`_ChromiumByeFilter` on choreographer's pipe logger (once)."""
    logger = logging.getLogger("choreographer.channels.pipe")
    if not any(isinstance(f, _ChromiumByeFilter) for f in logger.filters):
        logger.addFilter(_ChromiumByeFilter())


def _find_browser() -> str | bool | None:
    """kaleido's browser: its path, None when there is none, True when this cannot be told."""
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # choreographer internals moved: let kaleido decide
        return True
    if not found or not Path(found).is_file():
        return None
    return str(found)


def browser_available() -> bool:
    """True when kaleido can find a Chrome/Chromium for PNG, SVG and PDF export.

    Uses kaleido's own lookup (``BROWSER_PATH``, ``PATH``, the usual install locations), so
    the answer matches what :func:`save_figure` will do.
    """
    return _find_browser() is not None


def figure_formats() -> tuple[str, ...]:
    """Formats for :func:`save_figures`: ``("png",)`` with a browser, else ``("html",)``.

    Static images are rendered by kaleido in a headless Chrome/Chromium (``BROWSER_PATH`` or
    one on ``PATH``); without one, figures still export, as self-contained HTML pages.

    Examples
    --------
    >>> figure_formats() in (("png",), ("html",))
    True
    """
    return ("png",) if browser_available() else ("html",)


@contextlib.contextmanager
def export_session() -> Iterator[None]:
    """Keep one headless browser open for all static exports inside the block.

    Every :func:`save_figure` call outside a session starts and stops its own Chromium (about
    2-3 s each); inside, the browser started on entry (``kaleido.start_sync_server()``) serves
    every call and is stopped on exit (``kaleido.stop_sync_server()``). Sessions nest: only the
    outermost one starts and stops the browser, and a kaleido server that was already running
    on entry is left running on exit. HTML export does not use the browser.

    Yields
    ------
    None

    Raises
    ------
    BrowserNotFoundError
        On entry, when no Chrome/Chromium can be found.
    ExportError
        From an export inside the block when the browser failed to start or died; the session
        then falls back to one browser per call.

    Notes
    -----
    The kaleido server is process-wide; exports are serialised by a lock, so threads may share
    a session but do not render in parallel.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> from dsl_explore.export import export_session, save_figure
    >>> figs = [go.Figure(go.Bar(y=[i, 2 * i])) for i in range(3)]
    >>> with export_session():  # doctest: +SKIP
    ...     for i, fig in enumerate(figs):
    ...         save_figure(fig, f"out/bar{i}.png", width=400, height=300)
    """
    global _session_depth, _session_owned
    import kaleido

    _quiet_chromium_bye()

    with _session_lock:
        if _session_depth == 0:
            if _server_running():  # someone else's server: use it, leave it running
                _session_owned = False
            else:
                if _find_browser() is None:
                    raise BrowserNotFoundError(_browser_missing_message())
                kaleido.start_sync_server(silence_warnings=True, **_kaleido_options())
                _session_owned = True
        _session_depth += 1
    try:
        yield
    finally:
        with _session_lock:
            _session_depth -= 1
            if _session_depth == 0 and _session_owned:
                _session_owned = False
                kaleido.stop_sync_server(silence_warnings=True)


def _call_guarded(func: Callable[[], _T]) -> _T:
    """Run ``func`` (which may call into kaleido's sync server) without hanging on a dead server.

    kaleido's sync server runs the browser in a thread; if that thread dies (the browser failed
    to start or crashed) a call waits forever on its queue. The call runs in a helper thread
    while this one watches the server thread.
    """
    server = _kaleido_server()
    thread = getattr(server, "_thread", None) if _server_running() else None
    if not isinstance(thread, threading.Thread):
        return func()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="dsl_explore-export", daemon=True)
    worker.start()
    while True:
        worker.join(0.05)
        if not worker.is_alive():
            break
        if not thread.is_alive():
            import kaleido

            # The helper stays blocked on the dead server's queue (a daemon thread, harmless).
            kaleido.stop_sync_server(silence_warnings=True)
            raise ExportError(
                "the kaleido export browser stopped: it failed to start or crashed (see its "
                "traceback on stderr). Check the browser kaleido uses (BROWSER_PATH, PATH). "
                + _INSTALL_HINT
            )
    if "error" in box:
        raise box["error"]
    return box["value"]


def _is_missing_browser(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ == "ChromeNotFoundError":
            return True
        if isinstance(e, RuntimeError) and "plotly_get_chrome" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _chrome_detail(exc: BaseException) -> str | None:
    e: BaseException | None = exc
    for _ in range(8):
        if e is None:
            break
        if type(e).__name__ == "ChromeNotFoundError":
            return " ".join(str(a) for a in e.args)
        e = e.__cause__ or e.__context__
    return None


def _render_image(
    fig: Any, fmt: str, width: int | None, height: int | None, scale: float | None
) -> bytes:
    """Render ``fig`` to PNG/SVG/PDF bytes with kaleido (the session's browser if one is open)."""
    import plotly.io as pio

    _quiet_chromium_bye()

    def call() -> bytes:
        with warnings.catch_warnings():
            # plotly passes its kaleido options on every call; a running server ignores them
            # (export_session started it with the same ones) and warns.
            warnings.filterwarnings(
                "ignore", message="The kopts argument is ignored", category=UserWarning
            )
            return pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)

    with _render_lock:
        try:
            data = _call_guarded(call)
        except ExportError:
            raise
        except Exception as exc:
            if _is_missing_browser(exc):
                raise BrowserNotFoundError(_browser_missing_message(_chrome_detail(exc))) from exc
            module = type(exc).__module__ or ""
            if module.startswith(("kaleido", "choreographer")):
                raise ExportError(f"kaleido failed to render the figure as {fmt}: {exc}") from exc
            raise
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ExportError(f"kaleido returned no {fmt} data ({type(data).__name__})")
    return bytes(data)


def _render_html(fig: Any, width: int | None, height: int | None) -> str:
    import plotly.io as pio

    return pio.to_html(
        fig,
        include_plotlyjs=True,
        full_html=True,
        default_width=f"{width}px" if width else "100%",
        default_height=f"{height}px" if height else "100%",
        validate=True,
    )


# --------------------------------------------------------------------------------------------
# public API: plotly


def save_figure(
    fig: Any,
    path: PathLike,
    *,
    format: str | None = None,
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
) -> Path:
    """Save a plotly figure as PNG, SVG, PDF or self-contained HTML, atomically.

    The content is produced in memory first and then written with :func:`atomic_write_bytes`,
    so a failed export leaves neither a partial file nor a temporary one, and an existing file at
    ``path`` is replaced only by a complete new one. Missing parent directories are created.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure or plotly.graph_objects.FigureWidget or pyvista.Plotter
        The figure. A pyvista plotter is passed on to :func:`save_scene` (PNG or HTML only;
        ``width`` and ``height`` together set its window size).
    path : str or os.PathLike
        The target file. Its suffix must be ``.png``, ``.svg``, ``.pdf`` or ``.html``
        (``.htm``), matching ``format`` when that is given.
    format : {"png", "svg", "pdf", "html"}, optional
        The format; inferred from the suffix of ``path`` when None.
    width, height : int, optional
        Size in layout pixels. For images the default is the figure's layout size, else
        plotly's default (700 x 500). For HTML they fix the plot's size in the page (default:
        fill the page).
    scale : float, optional
        Resolution factor for images: a PNG is ``width * scale`` x ``height * scale`` pixels.
        Ignored for HTML.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        If ``fig`` is not a plotly figure, or an argument has the wrong type (the message names
        it).
    ValueError
        If the format is unknown, cannot be inferred or does not match the suffix of ``path``,
        or ``width``/``height``/``scale`` are not positive.
    BrowserNotFoundError
        For PNG/SVG/PDF when kaleido finds no Chrome/Chromium; the message says how to
        install one.
    ExportError
        If kaleido fails otherwise (the browser crashed, a render error).

    See Also
    --------
    save_figures : many figures and formats with one browser.
    export_session : reuse one browser across calls.

    Examples
    --------
    HTML needs no browser; the page embeds plotly.js, so it works offline:

    >>> import tempfile, pathlib
    >>> import plotly.graph_objects as go
    >>> from dsl_explore.export import save_figure
    >>> fig = go.Figure(go.Scatter(y=[1, 3, 2], name="demo-trace"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = save_figure(fig, pathlib.Path(tmp) / "figs" / "demo.html")
    ...     page = out.read_text(encoding="utf-8")
    ...     print(out.name, "demo-trace" in page, "plotly" in page)
    demo.html True True

    Static images need Chrome/Chromium (``apt-get install chromium``):

    >>> save_figure(fig, "demo.png", width=600, height=400, scale=2)  # doctest: +SKIP
    PosixPath('demo.png')
    """
    if _is_scene(fig):
        size = None if width is None or height is None else (width, height)
        return save_scene(fig, path, format=format, window_size=size)
    target = check_path(path)
    fmt = _resolve_format(target, format, FIGURE_FORMATS)
    width = _check_positive_int(width, "width")
    height = _check_positive_int(height, "height")
    scale = _check_scale(scale)
    _check_figure(fig)
    if fmt == "html":
        return atomic_write_text(target, _render_html(fig, width, height))
    return atomic_write_bytes(target, _render_image(fig, fmt, width, height, scale))


def save_figures(
    figs: Mapping[str, Any],
    directory: PathLike,
    *,
    formats: str | Sequence[str] = ("png",),
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
) -> list[Path]:
    """Save many plotly figures in one or more formats, with one browser for all of them.

    Writes ``directory / f"{name}.{fmt}"`` for every ``name, fig`` in ``figs`` and every
    ``fmt`` in ``formats``, inside one :func:`export_session` (started only when a static
    format is asked for). Every argument is checked before anything is written; each file is
    written atomically, but a failure part-way leaves the files already written in place.

    Parameters
    ----------
    figs : Mapping[str, Figure]
        File stems (no directory separators, no suffix) to figures.
    directory : str or os.PathLike
        The output directory; created if missing.
    formats : str or sequence of str, default ("png",)
        Any of ``"png"``, ``"svg"``, ``"pdf"``, ``"html"``; no repeats.
    width, height, scale
        As for :func:`save_figure`, applied to every figure.

    Returns
    -------
    list of pathlib.Path
        The files written, figure by figure, in the order of ``figs`` then ``formats``.

    Raises
    ------
    TypeError
        If ``figs`` is not a mapping of str to plotly figures, or another argument has the
        wrong type.
    ValueError
        If a name is empty or holds a path separator, a format is unknown or repeated, or a
        size is not positive.
    BrowserNotFoundError, ExportError
        As for :func:`save_figure`.

    Examples
    --------
    >>> import tempfile
    >>> import plotly.graph_objects as go
    >>> from dsl_explore.export import save_figures
    >>> figs = {"loss": go.Figure(go.Scatter(y=[3, 2, 1])), "betti": go.Figure(go.Bar(y=[1, 2]))}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print([p.name for p in save_figures(figs, tmp, formats="html")])
    ['loss.html', 'betti.html']
    >>> save_figures(figs, "report", formats=("png", "pdf"), scale=2)  # doctest: +SKIP
    """
    if not isinstance(figs, Mapping):
        raise TypeError(f"figs must be a Mapping of name -> figure, got {type(figs).__name__}")
    out_dir = check_path(directory, "directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"directory {str(out_dir)!r} exists and is not a directory")
    if isinstance(formats, str):
        formats = (formats,)
    if not isinstance(formats, Sequence) or not formats:
        raise ValueError(f"formats must be a non-empty sequence of format names, got {formats!r}")
    fmts: list[str] = []
    for f in formats:
        if not isinstance(f, str):
            raise TypeError(f"formats must hold str, got {type(f).__name__}")
        fmt = _SUFFIX_ALIASES.get(f.lower().lstrip("."), f.lower().lstrip("."))
        if fmt not in FIGURE_FORMATS:
            allowed = ", ".join(repr(c) for c in FIGURE_FORMATS)
            raise ValueError(f"formats entries must be among {allowed}, got {f!r}")
        if fmt in fmts:
            raise ValueError(f"formats must not repeat a format, got {tuple(formats)!r}")
        fmts.append(fmt)
    width = _check_positive_int(width, "width")
    height = _check_positive_int(height, "height")
    scale = _check_scale(scale)
    for name, fig in figs.items():
        if not isinstance(name, str):
            raise TypeError(f"figs keys must be str file stems, got {type(name).__name__}")
        if name in ("", ".", "..") or "/" in name or os.sep in name or (
            os.altsep and os.altsep in name
        ):
            raise ValueError(f"figs keys must be plain file names without separators, got {name!r}")
        try:
            _check_figure(fig)
        except TypeError:
            raise TypeError(
                f"figs[{name!r}] must be a plotly Figure or FigureWidget, got {type(fig).__name__}"
            ) from None

    needs_browser = any(f in _IMAGE_FORMATS for f in fmts) and len(figs) > 0
    session = export_session() if needs_browser else contextlib.nullcontext()
    written: list[Path] = []
    with session:
        for name, fig in figs.items():
            for fmt in fmts:
                written.append(
                    save_figure(
                        fig,
                        out_dir / f"{name}.{fmt}",
                        format=fmt,
                        width=width,
                        height=height,
                        scale=scale,
                    )
                )
    return written


# --------------------------------------------------------------------------------------------
# public API: pyvista


def _encode_png(image: Any) -> bytes:
    """PNG bytes of an (H, W, 3|4) uint8 array, with Pillow if present, else VTK."""
    import numpy as np

    arr = np.ascontiguousarray(np.asarray(image))
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ExportError(f"the screenshot has an unexpected shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        return _encode_png_vtk(arr)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGBA" if arr.shape[2] == 4 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _encode_png_vtk(arr: Any) -> bytes:
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkIOImage import vtkPNGWriter

    h, w, c = arr.shape
    img = vtkImageData()
    img.SetDimensions(w, h, 1)
    # VTK images start at the bottom row.
    flat = np.ascontiguousarray(arr[::-1].reshape(-1, c))
    img.GetPointData().SetScalars(numpy_to_vtk(flat, deep=True))
    writer = vtkPNGWriter()
    writer.SetWriteToMemory(True)
    writer.SetInputData(img)
    writer.Write()
    return bytes(np.asarray(writer.GetResult()).tobytes())


def save_scene(
    plotter: Any,
    path: PathLike,
    *,
    format: str | None = None,
    window_size: Sequence[int] | None = None,
) -> Path:
    """Save a pyvista scene as PNG (a screenshot) or HTML, atomically.

    PNG takes ``plotter.screenshot()`` in memory (this renders the scene; use
    ``pv.Plotter(off_screen=True)`` or ``PYVISTA_OFF_SCREEN=true`` without a display), encodes
    it with Pillow (or VTK's PNG writer when Pillow is missing) and writes it with
    :func:`atomic_write_bytes`. HTML uses the plotter's ``trame`` component, which the
    ``trame-pyvista`` package provides (pyvista 0.49 moved ``export_html`` there).

    Parameters
    ----------
    plotter : pyvista.Plotter
        The plotter; it must not be closed (a closed one yields its last image, if any).
    path : str or os.PathLike
        The target file, ``.png`` or ``.html``.
    format : {"png", "html"}, optional
        Inferred from the suffix of ``path`` when None.
    window_size : (int, int), optional
        Render at this ``(width, height)`` for the screenshot; the PNG has that size. Ignored
        for HTML.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        If ``plotter`` has no ``screenshot`` method or ``window_size`` is not two ints.
    ValueError
        For an unknown or mismatched format, or a non-positive ``window_size``.
    ExportError
        If the scene cannot be rendered, or for HTML when ``trame-pyvista`` is not installed
        (``pip install trame-pyvista``).

    Examples
    --------
    >>> from dsl_explore.export import SCENE_FORMATS, save_scene
    >>> SCENE_FORMATS
    ('png', 'html')
    >>> import pyvista as pv  # doctest: +SKIP
    >>> pl = pv.Plotter(off_screen=True)  # doctest: +SKIP
    >>> _ = pl.add_mesh(pv.Sphere())  # doctest: +SKIP
    >>> save_scene(pl, "sphere.png", window_size=(400, 300))  # doctest: +SKIP
    PosixPath('sphere.png')
    """
    target = check_path(path)
    fmt = _resolve_format(target, format, SCENE_FORMATS)
    size: tuple[int, int] | None = None
    if window_size is not None:
        if isinstance(window_size, (str, bytes)) or not isinstance(window_size, Sequence):
            raise TypeError(
                f"window_size must be a (width, height) pair of ints, got {window_size!r}"
            )
        if len(window_size) != 2:
            raise ValueError(f"window_size must have 2 entries, got {len(window_size)}")
        w = _check_positive_int(window_size[0], "window_size[0]")
        h = _check_positive_int(window_size[1], "window_size[1]")
        assert w is not None and h is not None
        size = (w, h)
    if not callable(getattr(plotter, "screenshot", None)):
        raise TypeError(f"plotter must be a pyvista Plotter, got {type(plotter).__name__}")

    if fmt == "html":
        component = getattr(plotter, "trame", None)
        if component is None or not callable(getattr(component, "export_html", None)):
            raise ExportError(
                "HTML export of a pyvista scene needs the trame-pyvista package "
                "(pip install trame-pyvista); PNG export works without it"
            )
        try:
            result = component.export_html(None)
        except ImportError as exc:
            raise ExportError(
                f"HTML export of a pyvista scene failed: {exc} (pip install trame-pyvista)"
            ) from exc
        text = result.getvalue() if hasattr(result, "getvalue") else result
        if not isinstance(text, str) or not text:
            raise ExportError("pyvista's trame export_html returned no HTML")
        return atomic_write_text(target, text)

    try:
        image = plotter.screenshot(filename=None, return_img=True, window_size=size)
    except (RuntimeError, AttributeError) as exc:
        raise ExportError(f"could not render the pyvista scene: {exc}") from exc
    if image is None:
        raise ExportError("the pyvista plotter returned no image (closed before rendering?)")
    return atomic_write_bytes(target, _encode_png(image))
