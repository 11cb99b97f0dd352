"""One look for every figure of the kit: palette, marker kinds, colour scales and layout.

The palette is Okabe-Ito (M. Okabe and K. Ito, "Color Universal Design", 2002), whose eight
colours stay distinct under the common colour-vision deficiencies. Every kind of critical point
gets a colour **and** a shape, so the plots read in greyscale too:

============  ===================  =========  ===========================================
kind          colour               symbol     meaning
============  ===================  =========  ===========================================
matched       bluish green         circle     critical in both, same type
spurious      vermillion           cross (+)  critical in the reconstruction only
lost          reddish purple       square     critical in the target only
changed       yellow (dark edge)   diamond    critical in both, another type
============  ===================  =========  ===========================================

The symbols exist in plotly 2D, plotly ``Scatter3d`` and (as glyph shapes: sphere, three
crossed bars, cube, octahedron) in pyvista. (``Scatter3d`` draws its symbols as font glyphs; the
``x`` symbol shows as an empty box where the font lacks it, e.g. headless Chromium, so the kit
uses ``cross``.) The target
is drawn in blue, the reconstruction in orange, everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DSL_COLOR",
    "EXACT_COLOR",
    "FIELD_COLORSCALE",
    "FONT",
    "KINDS",
    "KIND_STYLES",
    "MAP_COLORSCALE",
    "MAX_WIDTH",
    "MODEBAR_CLEARANCE",
    "OKABE_ITO",
    "RECON_COLOR",
    "SIGN_COLORS",
    "TARGET_COLOR",
    "TEMPLATE",
    "KindStyle",
    "apply_style",
    "marker_style",
    "title_lines",
    "wrap_title",
]

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""The eight Okabe-Ito colours."""

TARGET_COLOR = OKABE_ITO["blue"]
"""Colour of the target (ground truth) in every plot."""

RECON_COLOR = OKABE_ITO["orange"]
"""Colour of the reconstruction in every plot."""

DSL_COLOR = OKABE_ITO["reddish_purple"]
"""Colour of the smooth DSL terms in line and bar plots."""

EXACT_COLOR = OKABE_ITO["black"]
"""Colour of the exact (non-differentiable) count in line plots."""


@dataclass(frozen=True)
class KindStyle:
    """How one kind of critical point is drawn.

    Attributes
    ----------
    label : str
        Legend label.
    color : str
        Fill colour (hex).
    edge : str
        Outline colour on light backgrounds.
    symbol : str
        plotly marker symbol, valid in 2D and in ``Scatter3d``.
    glyph : str
        pyvista glyph shape: ``"sphere"``, ``"cross"``, ``"cube"`` or ``"octahedron"``.
    description : str
        One line for hover text and docs.
    """

    label: str
    color: str
    edge: str
    symbol: str
    glyph: str
    description: str


KINDS: tuple[str, ...] = ("matched", "spurious", "lost", "changed")
"""The kinds of critical points, in drawing order (matched first, under the others)."""

KIND_STYLES: dict[str, KindStyle] = {
    "matched": KindStyle(
        "matched", OKABE_ITO["bluish_green"], "#FFFFFF", "circle", "sphere",
        "critical in both, same type",
    ),
    "spurious": KindStyle(
        "spurious", OKABE_ITO["vermillion"], "#FFFFFF", "cross", "cross",
        "critical in the reconstruction only",
    ),
    "lost": KindStyle(
        "lost", OKABE_ITO["reddish_purple"], "#FFFFFF", "square", "cube",
        "critical in the target only",
    ),
    "changed": KindStyle(
        "changed", OKABE_ITO["yellow"], "#333333", "diamond", "octahedron",
        "critical in both, another type",
    ),
}
"""Colour and shape of each kind of critical point (see the module docstring)."""

SIGN_COLORS: dict[int, str] = {-1: OKABE_ITO["sky_blue"], 0: "#E6E6E6", 1: OKABE_ITO["yellow"]}
"""Colours of the finite-difference signs: down (-1), flat (0), up (+1)."""

FIELD_COLORSCALE: list[list[Any]] = [[0.0, "#141414"], [0.5, "#8C8C8C"], [1.0, "#F5F5F5"]]
"""Greyscale for the fields (target, reconstruction), so the coloured markers stand out."""

MAP_COLORSCALE: list[list[Any]] = [
    [0.0, "#FFFFFF"],
    [0.25, "#F9D9C2"],
    [0.6, OKABE_ITO["vermillion"]],
    [1.0, "#5C2000"],
]
"""White to dark vermillion, shared by the exact mismatch map and the DSL contribution map."""

TEMPLATE = "plotly_white"
"""The plotly template of every figure."""

FONT: dict[str, Any] = {"family": "DejaVu Sans, Arial, sans-serif", "size": 14, "color": "#222222"}
"""Base font of every figure."""

TITLE_FONT_SIZE = 18


def marker_style(kind: str, *, size: float = 9.0, on_image: bool = False) -> dict[str, Any]:
    """plotly ``marker`` dict for a kind of critical point.

    Parameters
    ----------
    kind : {"matched", "spurious", "lost", "changed"}
        The kind.
    size : float
        Marker size in px.
    on_image : bool
        True for markers over a heatmap: a white outline (dark for "changed") keeps them visible
        on dark and light pixels alike.

    Returns
    -------
    dict
        ``color``, ``symbol``, ``size`` and ``line`` entries.

    Examples
    --------
    >>> marker_style("spurious")["symbol"]
    'cross'
    """
    if kind not in KIND_STYLES:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    st = KIND_STYLES[kind]
    edge = st.edge if (on_image or kind == "changed") else "#1A1A1A"
    line = {"color": edge, "width": 1}
    return {"color": st.color, "symbol": st.symbol, "size": size, "line": line}


MAX_WIDTH = 1100
"""Widest layout width :func:`apply_style` sets (px): JupyterLab's output area in a 1280 px
window is about 1150 px, and a wider figure is cut at its right edge (legends included)."""

MODEBAR_CLEARANCE = 34
"""Space (px) kept above the title for plotly's toolbar, which appears on hover at the top."""

_CHAR_WIDTH = 0.56
"""Mean glyph width of the kit's font, in units of its size (for wrapping titles)."""


def wrap_title(text: str, width: int, *, font_size: int | None = None) -> str:
    """Break a title at its `` · `` separators (else at spaces) into lines that fit ``width``
    px, joined by ``<br>``; a title that fits is returned as it is.

    Plotly never wraps a title: a centred one longer than the figure is cut on both sides.

    Examples
    --------
    >>> wrap_title("short", 800)
    'short'
    >>> wrap_title("2D · DSL = 361.4 (sum, k=10, tanh) · exact count = 368 · critical points: "
    ...            "189 spurious, 160 lost, 34 changed", 600)
    '2D · DSL = 361.4 (sum, k=10, tanh) · exact count = 368<br>critical points: 189 spurious, 160 lost, 34 changed'
    """  # noqa: E501
    size = TITLE_FONT_SIZE if font_size is None else font_size
    per_line = max(20, int((width - 40) / (_CHAR_WIDTH * size)))
    lines: list[str] = []
    for line in text.split("<br>"):
        if len(line) <= per_line:
            lines.append(line)
            continue
        sep = " · " if " · " in line else " "
        cur = ""
        for part in line.split(sep):
            if cur and len(cur) + len(sep) + len(part) > per_line:
                lines.append(cur)
                cur = part
            else:
                cur = part if not cur else cur + sep + part
        lines.append(cur)
    return "<br>".join(lines)


def title_lines(text: str) -> int:
    """Number of lines of a plotly title (``<br>`` breaks)."""
    return text.count("<br>") + 1


def apply_style(
    fig: Any,
    *,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
    legend_top: bool = True,
    top_margin: int | None = None,
) -> Any:
    """Apply the kit's template, fonts, size and legend placement to a plotly figure (in place).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure.
    title : str, optional
        Figure title.
    width, height : int, optional
        Default export size in px; the width is capped at :data:`MAX_WIDTH`. A title wider
        than the figure is wrapped (:func:`wrap_title`) and the top margin grows with it.
    legend_top : bool
        Put the legend in one horizontal row above the plots (keeps colour bars free on the
        right); False puts it in a column on the right.
    top_margin : int, optional
        Top margin in px (default 110 with the legend on top, else 70).

    Returns
    -------
    plotly.graph_objects.Figure
        ``fig`` itself.
    """
    if width is not None:
        width = min(int(width), MAX_WIDTH)
    extra = 0
    if title is not None:
        title = wrap_title(title, width or 900)
        extra = int(1.3 * TITLE_FONT_SIZE * (title_lines(title) - 1))
    top = (top_margin or (110 if legend_top else 70)) + extra
    layout: dict[str, Any] = {
        "template": TEMPLATE,
        "font": FONT,
        "margin": {"l": 70, "r": 40, "t": top, "b": 60},
        "hoverlabel": {"font_size": 13},
    }
    if title is not None:
        # in px from the top, below the toolbar plotly shows on hover
        layout["title"] = {
            "text": title,
            "font": {"size": TITLE_FONT_SIZE},
            "x": 0.5,
            "xanchor": "center",
            "xref": "paper",
            "yref": "container",
            "y": 1.0,
            "yanchor": "top",
            "pad": {"t": MODEBAR_CLEARANCE - 16},
        }
    if width is not None:
        layout["width"] = width
    if height is not None:
        layout["height"] = height
    if not legend_top:
        layout["legend"] = {
            "orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top",
            "font": {"size": 13}, "itemsizing": "constant", "tracegroupgap": 12,
        }
        # room for the longest legend entry inside the figure's width (plotly would otherwise
        # cut it at the figure's edge: "reconstructi")
        names = [str(t.name) for t in fig.data
                 if t.name and getattr(t, "showlegend", None) is not False]
        if names:
            longest = max(len(n) for n in names)
            layout["margin"]["r"] = max(40, math.ceil(48 + 0.6 * 13 * longest))
    else:
        layout["legend"] = {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "center",
            "x": 0.5,
            "font": {"size": 13},
            "itemsizing": "constant",
        }
    fig.update_layout(**layout)
    fig.update_annotations(font_size=15)  # subplot titles
    return fig
