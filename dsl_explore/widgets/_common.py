"""Widget pieces shared by :func:`~dsl_explore.widgets.explore` and the training dashboard.

- :func:`log_k_slider`, :func:`weight_sliders`, :func:`surrogate_dropdown`: the loss controls.
- :func:`readout_html`, :func:`status_html`, :func:`set_status`: the text outputs, with CSS
  classes (``dsl-readout``, ``dsl-status``) that browser tests can select.
- :func:`guarded`: runs a callback and shows any exception in a status widget instead of losing
  it in the kernel log.
- :class:`ExportPanel`: directory, format and an Export button writing figures through
  :func:`dsl_explore.export.save_figure`; :class:`FiguresExportPanel` writes them all through
  :func:`dsl_explore.export.save_figures` (one browser), in the formats of
  :func:`export_formats`.

Only ipywidgets is imported here (plotly and the export module when an export runs).
"""

from __future__ import annotations

import functools
import html
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as W

from dsl_explore.loss import SURROGATES

__all__ = [
    "READOUT_CLASS",
    "STATUS_CLASS",
    "ExportPanel",
    "FiguresExportPanel",
    "close_tree",
    "export_formats",
    "guarded",
    "log_k_slider",
    "readout_html",
    "set_status",
    "status_html",
    "surrogate_dropdown",
    "weight_sliders",
]

READOUT_CLASS = "dsl-readout"
"""CSS class of the readout widgets (loss, count, critical points)."""

STATUS_CLASS = "dsl-status"
"""CSS class of the status lines (export results, errors)."""

_F = TypeVar("_F", bound=Callable[..., Any])

_STYLE = {"description_width": "initial"}
_LEVEL_COLORS = {"info": "#444444", "ok": "#007A55", "busy": "#0072B2", "error": "#B23A00"}


def log_k_slider(
    value: float = 10.0,
    *,
    min_exp: float = -1.0,
    max_exp: float = 4.0,
    step: float = 0.01,
    description: str = "k (sharpness)",
    continuous_update: bool = True,
) -> W.FloatLogSlider:
    """A base-10 log slider for the sharpness k; the range widens to include ``value``.

    Examples
    --------
    >>> s = log_k_slider(10.0)
    >>> (s.min, s.max, s.value)
    (-1.0, 4.0, 10.0)
    >>> log_k_slider(1e6).max
    6.0
    """
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"k must be finite and > 0, got {value!r}")
    e = math.log10(value)
    lo, hi = min(min_exp, math.floor(e)), max(max_exp, math.ceil(e))
    return W.FloatLogSlider(
        value=float(value), base=10, min=lo, max=hi, step=step, description=description,
        readout_format=".3g", continuous_update=continuous_update, style=_STYLE,
        layout=W.Layout(width="420px"),
    )


def weight_sliders(
    n_axes: int,
    values: Sequence[float] | None = None,
    *,
    names: Sequence[str] | None = None,
    max_value: float = 2.0,
    step: float = 0.05,
    continuous_update: bool = True,
) -> list[W.FloatSlider]:
    """One ``FloatSlider`` (0 .. ``max_value``) per axis for the directional weights.

    Examples
    --------
    >>> [s.description for s in weight_sliders(2, (1.0, 0.5))]
    ['w axis 0', 'w axis 1']
    """
    values = [1.0] * n_axes if values is None else [float(v) for v in values]
    if len(values) != n_axes:
        raise ValueError(f"need one weight per axis ({n_axes}), got {len(values)}")
    names = [f"axis {i}" for i in range(n_axes)] if names is None else list(names)
    top = max([max_value, *values])
    return [
        W.FloatSlider(
            value=v, min=0.0, max=top, step=step, description=f"w {name}",
            readout_format=".2f", continuous_update=continuous_update, style=_STYLE,
            layout=W.Layout(width="300px"),
        )
        for v, name in zip(values, names, strict=True)
    ]


def surrogate_dropdown(value: str = "tanh", *, description: str = "surrogate") -> W.Dropdown:
    """A dropdown over :data:`dsl_explore.loss.SURROGATES`."""
    if value not in SURROGATES:
        raise ValueError(f"surrogate must be one of {', '.join(map(repr, SURROGATES))}, "
                         f"got {value!r}")
    return W.Dropdown(options=list(SURROGATES), value=value, description=description,
                      style=_STYLE, layout=W.Layout(width="220px"))


def readout_html() -> W.HTML:
    """An ``HTML`` widget with the class ``dsl-readout``."""
    w = W.HTML(value="", layout=W.Layout(margin="4px 0 4px 0"))
    w.add_class(READOUT_CLASS)
    return w


def status_html() -> W.HTML:
    """An ``HTML`` status line with the class ``dsl-status``."""
    w = W.HTML(value="")
    w.add_class(STATUS_CLASS)
    return w


def set_status(widget: W.HTML, message: str, *, level: str = "info") -> None:
    """Show ``message`` (escaped) in ``widget``, coloured by ``level`` (info/ok/busy/error).

    Examples
    --------
    >>> w = status_html()
    >>> set_status(w, "wrote a <b>.png", level="ok")
    >>> "wrote a &lt;b&gt;.png" in w.value
    True
    """
    color = _LEVEL_COLORS.get(level, _LEVEL_COLORS["info"])
    text = html.escape(message).replace("\n", "<br>")
    widget.value = f'<span style="color:{color}" data-level="{level}">{text}</span>'


def guarded(status: Callable[[Any], W.HTML | None]) -> Callable[[_F], _F]:
    """Decorate a widget callback (a method) so an exception shows in a status line.

    ``status(owner)`` returns the status widget of the method's owner (its first argument),
    looked up at call time. The exception is kept as ``owner.last_error`` and its last line goes
    to the status line; the callback then returns None. Without this, ipywidgets sends callback
    exceptions to the kernel log, where JupyterLab users never see them.

    Examples
    --------
    >>> class Demo:
    ...     last_error = None
    ...     status = status_html()
    ...     @guarded(lambda self: self.status)
    ...     def on_change(self, change):
    ...         raise ValueError("bad value")
    >>> d = Demo(); d.on_change(None)
    >>> type(d.last_error).__name__, "bad value" in d.status.value
    ('ValueError', True)
    """

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(owner: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(owner, *args, **kwargs)
            except Exception as exc:  # shown to the user, not swallowed silently
                if hasattr(owner, "last_error"):
                    owner.last_error = exc
                w = status(owner)
                if w is not None:
                    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                    set_status(w, f"error in {fn.__name__}: {tb}", level="error")
                return None

        return wrapper  # type: ignore[return-value]

    return deco


def close_tree(widget: W.Widget) -> None:
    """Close ``widget`` and every widget inside it (children first); others are untouched.

    Examples
    --------
    >>> box = W.VBox([W.Label("a")])
    >>> close_tree(box)
    >>> box.comm is None
    True
    """
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class ExportPanel:
    """Directory box, format selector and Export button writing figures with ``save_figure``.

    Parameters
    ----------
    figures : callable
        Returns ``{file_stem: plotly figure}`` at click time (the current views).
    export_dir : str or os.PathLike
        Initial directory (editable in the text box); created on export when missing.
    formats : sequence of str
        The formats offered; the first is selected.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The controls and the status line.
    button, directory, format, status
        The parts.
    last_paths : list of pathlib.Path
        Files written by the last successful export.
    last_error : Exception or None
        The last export error (also shown in the status line).

    Examples
    --------
    >>> import tempfile, plotly.graph_objects as go
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     panel = ExportPanel(lambda: {"demo": go.Figure()}, tmp, formats=("html",))
    ...     panel.button.click()
    ...     print([p.name for p in panel.last_paths], "wrote" in panel.status.value)
    ['demo.html'] True
    """

    def __init__(
        self,
        figures: Callable[[], Mapping[str, Any]],
        export_dir: str | Path = "figures",
        *,
        formats: Sequence[str] = ("png", "svg", "pdf", "html"),
    ) -> None:
        self._figures = figures
        self.directory = W.Text(value=str(export_dir), description="export to",
                                style=_STYLE, layout=W.Layout(width="320px"))
        self.format = W.Dropdown(options=list(formats), value=formats[0], description="as",
                                 style=_STYLE, layout=W.Layout(width="120px"))
        self.button = W.Button(description="Export", icon="download",
                               tooltip="write the current figure(s) to the directory")
        self.status = status_html()
        self.last_paths: list[Path] = []
        self.last_error: Exception | None = None
        self.button.on_click(lambda _b: self.export())
        self.widget = W.VBox([W.HBox([self.directory, self.format, self.button]), self.status])

    def export(self) -> list[Path]:
        """Write the current figures now; returns the paths (empty on error, shown in status)."""
        from dsl_explore.export import save_figure

        fmt = self.format.value
        directory = Path(self.directory.value.strip() or ".").expanduser()
        set_status(self.status, f"exporting {fmt} to {directory} ...", level="busy")
        try:
            figs = dict(self._figures())
            paths = [save_figure(fig, directory / f"{name}.{fmt}") for name, fig in figs.items()]
        except Exception as exc:  # shown in the widget: the user sees why
            self.last_error = exc
            set_status(self.status, f"export failed: {type(exc).__name__}: {exc}",
                       level="error")
            return []
        self.last_paths = paths
        self.last_error = None
        set_status(self.status, "wrote " + ", ".join(str(p) for p in paths), level="ok")
        return paths


class FiguresExportPanel(ExportPanel):
    """An :class:`ExportPanel` writing all current figures with one ``save_figures`` call."""

    def export(self) -> list[Path]:
        """Write the current figures now; returns the paths (empty on error, shown in status)."""
        from dsl_explore.export import save_figures

        fmt = self.format.value
        directory = Path(self.directory.value.strip() or ".").expanduser()
        set_status(self.status, f"exporting {fmt} to {directory} ...", level="busy")
        try:
            paths = save_figures(dict(self._figures()), directory, formats=(fmt,))
        except Exception as exc:  # shown in the widget
            self.last_error = exc
            set_status(self.status, f"export failed: {type(exc).__name__}: {exc}",
                       level="error")
            return []
        self.last_paths = paths
        self.last_error = None
        set_status(self.status, "wrote " + ", ".join(str(p) for p in paths), level="ok")
        return paths


def export_formats() -> tuple[str, ...]:
    """The export formats offered, PNG first when a browser for kaleido is found.

    Examples
    --------
    >>> sorted(export_formats())
    ['html', 'pdf', 'png', 'svg']
    """
    from dsl_explore.export import figure_formats

    rest = ("svg", "pdf")
    return ("png", *rest, "html") if figure_formats() == ("png",) else ("html", "png", *rest)
