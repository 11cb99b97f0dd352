"""Widget pieces shared by :func:`~dsl_explore.widgets.explore` and the training dashboard.

- :func:`log_k_slider`, :func:`weight_sliders`, :func:`surrogate_dropdown`: the loss controls.
- :func:`readout_html`, :func:`status_html`, :func:`set_status`: the text outputs, with CSS
  classes (``dsl-readout``, ``dsl-status``) that browser tests can select.
- :func:`guarded`: runs a callback and shows any exception in a status widget instead of losing
  it in the kernel log.
- :class:`ExportPanel`: directory, one toggle per format and an Export button writing every
  figure in every selected format through :func:`dsl_explore.export.save_figures` (one
  browser), in the formats of :func:`export_formats` (:class:`FiguresExportPanel`: the
  dashboard's).
- :class:`ResetButton`: puts sliders back to their starting values.

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
    "ResetButton",
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
    """Directory box, format toggles and one Export button writing figures with
    :func:`~dsl_explore.export.save_figures` (one browser for every figure and format).

    Parameters
    ----------
    figures : callable
        Returns ``{file_stem: plotly figure}`` at click time (the current views).
    export_dir : str or os.PathLike
        Initial directory (editable in the text box); created on export when missing.
    formats : sequence of str
        The formats offered, one toggle button each; the first is selected.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The controls and the status line.
    button, directory, status
        The parts.
    format_buttons : dict of str to ipywidgets.ToggleButton
        One toggle per format; every format toggled on is written by one click.
    format : ipywidgets.Dropdown
        Not shown: setting its value selects that format alone (the single-format selector
        of earlier versions); it follows the first format toggled on.
    last_paths : list of pathlib.Path
        Files written by the last successful export.
    last_error : Exception or None
        The last export error (also shown in the status line).

    Examples
    --------
    >>> import tempfile, plotly.graph_objects as go
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     panel = ExportPanel(lambda: {"demo": go.Figure()}, tmp, formats=("html", "svg"))
    ...     panel.button.click()
    ...     print([p.name for p in panel.last_paths], "wrote" in panel.status.value)
    ['demo.html'] True
    >>> panel.format_buttons["svg"].value = True
    >>> panel.selected_formats()
    ('html', 'svg')
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
        self.format_buttons = {
            f: W.ToggleButton(value=i == 0, description=f, tooltip=f"also write .{f}",
                              layout=W.Layout(width="58px"))
            for i, f in enumerate(formats)
        }
        self.format = W.Dropdown(options=list(formats), value=formats[0],
                                 layout=W.Layout(display="none"))
        self._syncing = False
        self.format.observe(self._on_format, names="value")
        for b in self.format_buttons.values():
            b.observe(self._on_toggle, names="value")
        self.button = W.Button(description="Export", icon="download",
                               tooltip="write the current figure(s) in every selected format")
        self.status = status_html()
        self.last_paths: list[Path] = []
        self.last_error: Exception | None = None
        self.button.on_click(lambda _b: self.export())
        row = [self.directory, W.Label("as"), *self.format_buttons.values(), self.format,
               self.button]
        self.widget = W.VBox([W.HBox(row), self.status])

    def selected_formats(self) -> tuple[str, ...]:
        """The formats toggled on, in the order offered."""
        return tuple(f for f, b in self.format_buttons.items() if b.value)

    def _on_format(self, change: Any) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for f, b in self.format_buttons.items():
                b.value = f == change["new"]
        finally:
            self._syncing = False

    def _on_toggle(self, _change: Any) -> None:
        if self._syncing:
            return
        chosen = self.selected_formats()
        if chosen and self.format.value != chosen[0]:
            self._syncing = True
            try:
                self.format.value = chosen[0]
            finally:
                self._syncing = False

    def export(self) -> list[Path]:
        """Write the current figures in every selected format now; returns the paths (empty on
        error, shown in the status line)."""
        from dsl_explore.export import save_figures

        fmts = self.selected_formats()
        if not fmts:
            set_status(self.status, "choose at least one format to export", level="error")
            return []
        directory = Path(self.directory.value.strip() or ".").expanduser()
        set_status(self.status, f"exporting {', '.join(fmts)} to {directory} ...", level="busy")
        try:
            paths = save_figures(dict(self._figures()), directory, formats=fmts)
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
    """The dashboard's :class:`ExportPanel`: all current figures, every selected format, one
    ``save_figures`` call."""


class ResetButton:
    """A button that puts widgets back to the values they had when it was made.

    Parameters
    ----------
    widgets : sequence of ipywidgets.ValueWidget
        The controls; their current values are the defaults.
    description : str
        The button's text.

    Attributes
    ----------
    button : ipywidgets.Button
    defaults : list
        The values restored, one per widget.

    Examples
    --------
    >>> s = W.FloatSlider(value=2.0, max=10.0)
    >>> r = ResetButton([s])
    >>> s.value = 7.5
    >>> r.button.click()
    >>> s.value
    2.0
    """

    def __init__(self, widgets: Sequence[W.ValueWidget], *, description: str = "Reset") -> None:
        self.widgets = list(widgets)
        self.defaults = [w.value for w in self.widgets]
        self.button = W.Button(description=description, icon="undo",
                               tooltip="put the sliders back to their starting values",
                               layout=W.Layout(width="100px"))
        self.button.on_click(lambda _b: self.reset())

    def reset(self) -> None:
        """Restore every widget's default (bounds widened when a default lies outside)."""
        for w, v in zip(self.widgets, self.defaults, strict=True):
            if hasattr(w, "max") and isinstance(v, (int, float)) and not isinstance(v, bool):
                if v > w.max:
                    w.max = v
                if v < w.min:
                    w.min = v
            w.value = v


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
