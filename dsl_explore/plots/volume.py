"""3D views: pyvista renderings (offscreen capable) and a plotly fallback, with critical-point
glyphs/markers coloured and shaped by kind."""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsl_explore._validation import check_choice
from dsl_explore.critical import METHODS, CriticalMismatch, mismatched_critical_points
from dsl_explore.plots import style
from dsl_explore.plots.compute import (
    CriticalGroups,
    as_field,
    check_same_shape,
    critical_groups,
)

__all__ = [
    "VOLUME_MODES",
    "headless_vtk",
    "load_triton_first",
    "offline_trame",
    "plot_volume_plotly",
    "plot_volume_pyvista",
]

VOLUME_MODES = ("isosurface", "volume", "slices")
"""Rendering modes of :func:`plot_volume_plotly`."""

_PANEL_KINDS = {"target": ("lost", "changed"), "recon": ("spurious", "changed")}
_PANEL_TITLES = {"target": "target", "recon": "reconstruction"}
_GLYPH_NAMES = {"sphere": "spheres", "cross": "crosses", "cube": "cubes", "octahedron": "octahedra"}


def _groups_for(
    target: np.ndarray, recon: np.ndarray, mismatch: CriticalMismatch | None, method: str
) -> CriticalGroups:
    if mismatch is None:
        check_choice(method, "method", METHODS)
        mismatch = mismatched_critical_points(recon, target, method=method)
    elif not isinstance(mismatch, CriticalMismatch):
        raise TypeError(
            f"mismatch must be a CriticalMismatch or None, got {type(mismatch).__name__}"
        )
    groups = critical_groups(mismatch)
    for kind, c in groups.coords.items():
        if c.size and (c.shape[1] != 3 or (c.max(axis=0) >= np.array(target.shape)).any()):
            raise ValueError(
                f"mismatch.{kind} holds coordinates outside the volume of shape {target.shape}"
            )
    return groups


def _subsample(n: int, cap: int | None) -> np.ndarray:
    """Evenly strided indices of at most ``cap`` of ``n`` items (all when ``cap`` is None)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.linspace(0, n - 1, cap).round().astype(np.int64)


def _kinds(panel: str, show_matched: bool) -> tuple[str, ...]:
    return (("matched",) if show_matched else ()) + _PANEL_KINDS[panel]


# --------------------------------------------------------------------------------------------
# plotly


def plot_volume_plotly(
    target: Any,
    recon: Any,
    *,
    max_size: int = 64,
    mode: str = "isosurface",
    mismatch: CriticalMismatch | None = None,
    method: str = "axis",
    show_matched: bool = False,
    slice_index: Sequence[int] | None = None,
    max_markers: int | None = 5000,
    title: str | None = None,
    width: int = 1300,
    height: int = 680,
) -> go.Figure:
    """Two rotatable 3D scenes (target | reconstruction) with markers at mismatched critical points.

    The volumes are drawn with plotly's ``Isosurface`` / ``Volume`` traces, which suit small
    volumes: larger ones are subsampled with an integer stride so no axis exceeds ``max_size``
    (coordinates stay in full-resolution index units, and the title says so). The critical
    points come from the full-resolution fields. The target scene marks *lost* and *changed*
    points, the reconstruction scene *spurious* and *changed* ones (and *matched* ones in both
    when ``show_matched``), with the colours and shapes of :mod:`dsl_explore.plots.style`.

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        3D fields of one shape (each axis >= 2); leading axes of length 1 are dropped.
    max_size : int
        Largest number of samples per axis drawn (stride subsampling above it).
    mode : {"isosurface", "volume", "slices"}
        Three isosurfaces at the 60/75/90 % quantiles of the target; a translucent volume
        rendering; or three orthogonal slices through ``slice_index``.
    mismatch : CriticalMismatch, optional
        Precomputed :func:`~dsl_explore.critical.mismatched_critical_points` ``(recon,
        target)``; computed with ``method`` when None.
    method : {"axis", "pl"}
        Critical-point classification when ``mismatch`` is None.
    show_matched : bool
        Also mark matched critical points.
    slice_index : (int, int, int), optional
        Slice positions for ``mode="slices"`` (default: the centre).
    max_markers : int or None
        At most this many markers per kind and scene (evenly strided; the legend gives the
        total); None draws all.
    title : str, optional
        Figure title.
    width, height : int
        Default size in px.

    Returns
    -------
    plotly.graph_objects.Figure
        Scenes ``scene`` (target) and ``scene2`` (reconstruction); markers are ``Scatter3d``
        traces with ``meta={"role": "critical", "kind": ..., "panel": ...}`` whose x/y/z are the
        axis 0/1/2 indices.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_volume_plotly, find_traces
    >>> g = np.indices((6, 6, 6)).sum(0).astype(float)
    >>> recon = g.copy(); recon[3, 3, 3] = 20.0   # a spurious maximum
    >>> fig = plot_volume_plotly(g, recon)
    >>> [(int(t.x[0]), int(t.y[0]), int(t.z[0])) for t in find_traces(fig, kind="spurious")]
    [(3, 3, 3)]
    """
    t = as_field(target, "target", 3)
    r = as_field(recon, "recon", 3)
    check_same_shape(t, r)
    check_choice(mode, "mode", VOLUME_MODES)
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2:
        raise ValueError(f"max_size must be an int >= 2, got {max_size!r}")
    groups = _groups_for(t, r, mismatch, method)
    stride = max(1, math.ceil(max(t.shape) / max_size))
    fig = make_subplots(
        rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
        subplot_titles=(_PANEL_TITLES["target"], _PANEL_TITLES["recon"]),
        horizontal_spacing=0.02,
    )
    lo, hi = float(min(t.min(), r.min())), float(max(t.max(), r.max()))
    for col, (panel, arr) in enumerate((("target", t), ("recon", r)), start=1):
        fig.add_trace(
            _volume_trace(arr, t, stride, mode, lo, hi, slice_index, show_scale=col == 2),
            row=1, col=col,
        )
        for kind in _kinds(panel, show_matched):
            fig.add_trace(_scatter3d(groups, kind, panel, col == 1 or kind == "spurious",
                                     max_markers), row=1, col=col)
    c = groups.counts()
    sub = f" · drawn at stride {stride}" if stride > 1 else ""
    default = (f"3D · critical points: {c['spurious']} spurious, {c['lost']} lost, "
               f"{c['changed']} changed, {c['matched']} matched{sub}")
    scene = {
        "aspectmode": "data",
        "xaxis_title": "axis 0", "yaxis_title": "axis 1", "zaxis_title": "axis 2",
        "camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.2}},
    }
    fig.update_layout(scene=scene, scene2=scene)
    style.apply_style(fig, title=title if title is not None else default,
                      width=width, height=height)
    return fig


def _volume_trace(
    arr: np.ndarray, target: np.ndarray, stride: int, mode: str, lo: float, hi: float,
    slice_index: Sequence[int] | None, *, show_scale: bool,
) -> go.Isosurface | go.Volume:
    sub = arr[::stride, ::stride, ::stride].astype(np.float32)
    # int32 coordinates: a FigureWidget sends those as binary buffers (int64 as lists)
    ii, jj, kk = np.meshgrid(*(np.arange(0, n, stride, dtype=np.int32) for n in arr.shape),
                             indexing="ij")
    common = {
        "x": ii.ravel(), "y": jj.ravel(), "z": kk.ravel(), "value": sub.ravel(),
        "colorscale": style.FIELD_COLORSCALE, "cmin": lo, "cmax": hi,
        "showscale": show_scale, "colorbar": {"title": {"text": "value"}, "len": 0.7},
        "caps": {"x_show": False, "y_show": False, "z_show": False},
        "hoverinfo": "skip", "name": "field", "showlegend": False,
        "meta": {"role": "volume"},
    }
    if mode == "volume":
        return go.Volume(isomin=lo, isomax=hi, opacity=0.08, surface_count=14, **common)
    if mode == "slices":
        idx = [n // 2 for n in arr.shape] if slice_index is None else list(slice_index)
        if len(idx) != 3:
            raise ValueError(f"slice_index must have 3 entries, got {slice_index!r}")
        # snap to the drawn grid
        loc = [min((int(i) // stride) * stride, (n - 1) // stride * stride)
               for i, n in zip(idx, arr.shape, strict=True)]
        return go.Isosurface(
            isomin=lo, isomax=hi, surface={"show": False},
            slices={"x": {"show": True, "locations": [loc[0]]},
                    "y": {"show": True, "locations": [loc[1]]},
                    "z": {"show": True, "locations": [loc[2]]}},
            **common,
        )
    q = np.quantile(target, [0.6, 0.9])
    return go.Isosurface(
        isomin=float(q[0]), isomax=float(q[1]), surface_count=3, opacity=0.25, **common
    )


def _scatter3d(groups: CriticalGroups, kind: str, panel: str, showlegend: bool,
               cap: int | None) -> go.Scatter3d:
    c = groups.coords[kind]
    keep = _subsample(c.shape[0], cap)
    c = c[keep]
    labels = [groups.labels[kind][i] for i in keep]
    shown = f", {len(keep)} drawn" if len(keep) < groups.coords[kind].shape[0] else ""
    ms = style.marker_style(kind, size={"matched": 3.5, "spurious": 7}.get(kind, 5))
    ms.pop("line")  # outlines darken Scatter3d symbols
    xyz = [c[:, j].astype(np.int32) if c.size else [None] for j in range(3)]
    return go.Scatter3d(
        x=xyz[0], y=xyz[1], z=xyz[2], mode="markers",
        name=f"{kind} ({groups.coords[kind].shape[0]}{shown})",
        legendgroup=kind, showlegend=showlegend, marker=ms, text=labels,
        hovertemplate=f"{kind} on {panel}: %{{text}}<br>(%{{x}}, %{{y}}, %{{z}})<extra></extra>",
        meta={"role": "critical", "kind": kind, "panel": panel},
    )


# --------------------------------------------------------------------------------------------
# pyvista


def load_triton_first() -> bool:
    """Load triton's compiled library before VTK opens an OpenGL window.

    Both carry an LLVM: VTK's Mesa (llvmpipe) loads ``libLLVM`` with its first window, and
    ``triton._C.libtriton`` segfaults the process when it is loaded after that. triton gets
    loaded later than a user might think: the fused DSL op is a torch custom op, and its first
    call imports ``torch._dynamo``, which imports triton where it is installed. Loading it first
    is harmless, so the kit's pyvista entry points call this before any window. Does nothing
    when triton is not installed or is already loaded.

    Returns
    -------
    bool
        True when triton's library is loaded in this process.

    Examples
    --------
    >>> from dsl_explore.plots.volume import load_triton_first
    >>> isinstance(load_triton_first(), bool)
    True
    """
    if "triton._C.libtriton" in sys.modules:
        return True
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        importlib.import_module("triton._C.libtriton")
    except ImportError:
        return False
    return True


def headless_vtk() -> str | None:
    """Without an X display, make VTK open an EGL (or OSMesa) window directly.

    VTK's default Linux window is ``vtkXOpenGLRenderWindow``: with no ``DISPLAY`` it logs a
    ``bad X server connection`` warning on stderr (pink in a notebook) before falling back to
    EGL. Setting ``VTK_DEFAULT_OPENGL_WINDOW`` before the first window is made skips that
    attempt. Leaves the variable alone when ``DISPLAY`` is set, off Linux, when it is already
    set, or when neither libEGL nor libOSMesa is found. First it loads triton's library where
    triton is installed (:func:`load_triton_first`): loaded after VTK's first window, it crashes.

    Returns
    -------
    str or None
        The window class VTK will use (the variable's value), or None when left unset.

    Examples
    --------
    >>> from dsl_explore.plots.volume import headless_vtk
    >>> headless_vtk() in (None, "vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow")
    True
    """
    load_triton_first()
    key = "VTK_DEFAULT_OPENGL_WINDOW"
    if key in os.environ:
        return os.environ[key] or None
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY"):
        return None
    for lib, window in (("EGL", "vtkEGLRenderWindow"), ("OSMesa", "vtkOSOpenGLRenderWindow")):
        if ctypes.util.find_library(lib):
            os.environ[key] = window
            return window
    return None


def offline_trame() -> bool:
    """Keep pyvista's trame from fetching VTK.wasm from the internet.

    Every pyvista HTML scene (the ``"html"`` Jupyter backend, ``Plotter.export_html``) goes
    through trame-pyvista, which starts a trame server and enables trame-vtklocal when it is
    installed (trame-pyvista requires it). trame-vtklocal's setup then downloads VTK.wasm from
    gitlab.kitware.com in the background; offline that fails with a "Task exception was never
    retrieved" traceback on stderr. The kit's scenes are vtk.js (trame-vtk) and never use
    VTK.wasm, so this marks ``trame.widgets.vtklocal`` as unavailable (``None`` in
    :data:`sys.modules`), which trame-pyvista already treats as "not installed". Does nothing
    when that module is already imported or when ``DSL_EXPLORE_VTK_WASM=1`` (for users who
    want trame-vtklocal in the same process).

    Returns
    -------
    bool
        True when trame-vtklocal is now kept out of this process.

    Examples
    --------
    >>> from dsl_explore.plots.volume import offline_trame
    >>> isinstance(offline_trame(), bool)
    True
    """
    name = "trame.widgets.vtklocal"
    if os.environ.get("DSL_EXPLORE_VTK_WASM") == "1":
        return False
    if name in sys.modules:
        return sys.modules[name] is None
    sys.modules[name] = None  # type: ignore[assignment]
    return True


def _glyph(shape: str, r: float) -> Any:
    import pyvista as pv

    if shape == "sphere":
        return pv.Sphere(radius=r, theta_resolution=12, phi_resolution=12)
    if shape == "cube":
        return pv.Cube(x_length=1.6 * r, y_length=1.6 * r, z_length=1.6 * r)
    if shape == "octahedron":
        return pv.PlatonicSolid("octahedron", radius=1.3 * r)
    # "cross": three orthogonal bars, the 3D counterpart of the "x" marker
    bar = 0.35 * r
    parts = [
        pv.Box(bounds=(-1.4 * r, 1.4 * r, -bar, bar, -bar, bar)),
        pv.Box(bounds=(-bar, bar, -1.4 * r, 1.4 * r, -bar, bar)),
        pv.Box(bounds=(-bar, bar, -bar, bar, -1.4 * r, 1.4 * r)),
    ]
    return parts[0].merge(parts[1:])


def _grid(arr: np.ndarray) -> Any:
    import pyvista as pv

    grid = pv.ImageData(dimensions=arr.shape)
    # ImageData points run x fastest: Fortran order keeps point (i, j, k) at array [i, j, k]
    grid.point_data["value"] = np.asarray(arr, dtype=np.float32).ravel(order="F")
    return grid


def plot_volume_pyvista(
    target: Any,
    recon: Any,
    *,
    mismatch: CriticalMismatch | None = None,
    slices: bool = True,
    method: str = "axis",
    show_matched: bool = False,
    slice_index: Sequence[int] | None = None,
    max_glyphs: int | None = 5000,
    glyph_size: float | None = None,
    off_screen: bool | None = None,
    window_size: Sequence[int] = (1400, 720),
    title: str | None = None,
) -> Any:
    """Side-by-side pyvista views of target and reconstruction with glyphs at mismatched
    critical points.

    Each half shows the field as three orthogonal slices (``slices=True``) or as a volume
    rendering, a bounding box, and one glyph per mismatched critical point: the target view
    marks *lost* and *changed* points, the reconstruction view *spurious* and *changed* ones
    (and *matched* ones when ``show_matched``). Glyph shapes and colours follow
    :mod:`dsl_explore.plots.style` (sphere = matched, cross = spurious, cube = lost,
    octahedron = changed). The two cameras are linked. Axis ``i`` of the array is the scene's
    x, ``j`` its y, ``k`` its z.

    pyvista (and VTK) are imported here, not at module import. Without a display the plotter
    renders off screen through EGL/OSMesa, without VTK's X-server warning
    (:func:`headless_vtk`), so :func:`dsl_explore.export.save_scene` can
    write a PNG on a headless machine; HTML scenes stay offline (:func:`offline_trame`).

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        3D fields of one shape (each axis >= 2); leading axes of length 1 are dropped.
    mismatch : CriticalMismatch, optional
        Precomputed mismatched critical points ``(recon, target)``; computed when None.
    slices : bool
        Orthogonal slices (True) or volume rendering (False).
    method : {"axis", "pl"}
        Critical-point classification when ``mismatch`` is None.
    show_matched : bool
        Also draw matched critical points (small spheres).
    slice_index : (int, int, int), optional
        Where the slices cut (default: the centre).
    max_glyphs : int or None
        At most this many glyphs per kind and view (evenly strided); None draws all.
    glyph_size : float, optional
        Glyph radius in voxels; default scales with the volume (about 1/60 of its largest side,
        at least 0.35).
    off_screen : bool, optional
        Default: True when there is no ``DISPLAY`` (or pyvista's global ``OFF_SCREEN`` is set).
    window_size : (int, int)
        Render size in px.
    title : str, optional
        Text above the left view; default lists the counts.

    Returns
    -------
    pyvista.Plotter
        Not yet shown; call ``.show()`` (in Jupyter: ``jupyter_backend="html"`` for a
        rotatable vtk.js view that needs no server, ``"static"`` for an image) or
        :func:`dsl_explore.export.save_scene`.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import plot_volume_pyvista
    >>> g = np.indices((8, 8, 8)).sum(0).astype(float)
    >>> recon = g.copy(); recon[4, 4, 4] = 30.0
    >>> pl = plot_volume_pyvista(g, recon)  # doctest: +SKIP
    >>> pl.shape  # doctest: +SKIP
    (1, 2)
    """
    headless_vtk()
    offline_trame()
    import pyvista as pv

    t = as_field(target, "target", 3)
    r = as_field(recon, "recon", 3)
    check_same_shape(t, r)
    groups = _groups_for(t, r, mismatch, method)
    if off_screen is None:
        off_screen = bool(pv.OFF_SCREEN) or not os.environ.get("DISPLAY")
    radius = glyph_size if glyph_size is not None else max(0.35, max(t.shape) / 60.0)
    lo, hi = float(min(t.min(), r.min())), float(max(t.max(), r.max()))
    pl = pv.Plotter(shape=(1, 2), off_screen=off_screen, window_size=list(window_size),
                    border=False)
    pl.set_background("white")  # type: ignore[arg-type]  # pyvista's decorator hides self
    c = groups.counts()
    for col, (panel, arr) in enumerate((("target", t), ("recon", r))):
        pl.subplot(0, col)
        grid = _grid(arr)
        bar: Any = {"title": "", "color": "black", "vertical": False, "n_labels": 3, "fmt": "%.2f",
               "position_x": 0.3, "position_y": 0.03, "width": 0.4, "height": 0.05,
               "label_font_size": 12}
        if slices:
            idx = [n // 2 for n in arr.shape] if slice_index is None else list(slice_index)
            mesh = grid.slice_orthogonal(x=idx[0], y=idx[1], z=idx[2])
            pl.add_mesh(mesh, scalars="value", cmap="gray", clim=(lo, hi),
                        scalar_bar_args=bar, show_scalar_bar=col == 1)
        else:
            pl.add_volume(grid, scalars="value", cmap="gray", clim=(lo, hi), opacity="linear",
                          scalar_bar_args=bar, show_scalar_bar=col == 1)
        pl.add_mesh(grid.outline(), color="#444444", line_width=1.5)
        legend = []
        for kind in _kinds(panel, show_matched):
            pts = groups.coords[kind][_subsample(groups.coords[kind].shape[0], max_glyphs)]
            st = style.KIND_STYLES[kind]
            legend.append((f"{kind} ({groups.coords[kind].shape[0]}): {_GLYPH_NAMES[st.glyph]}",
                           st.color if kind != "changed" else "#B8A800"))
            if pts.size == 0:
                continue
            rr = radius * (0.7 if kind == "matched" else 1.0)
            cloud = pv.PolyData(pts.astype(np.float32))
            glyphs = cloud.glyph(geom=_glyph(st.glyph, rr), scale=False, orient=False)
            pl.add_mesh(glyphs, color=st.color, smooth_shading=True, specular=0.3)
        head = _PANEL_TITLES[panel]
        if col == 0 and title is not None:
            head = f"{title}\n{head}"
        elif col == 0:
            head = (f"target: {c['lost']} lost, {c['changed']} changed")
        else:
            head = (f"reconstruction: {c['spurious']} spurious, {c['changed']} changed\n"
                    f"(slices: value, {lo:.2g} black to {hi:.2g} white)" if slices else
                    f"reconstruction: {c['spurious']} spurious, {c['changed']} changed")
        pl.add_text(head, position="upper_left", font_size=12, color="black")
        for i, (label, color) in enumerate(legend):
            pl.add_text(label, position=(0.015, 0.86 - 0.04 * i), viewport=True,
                        font_size=11, color=color, shadow=False)
        pl.show_axes()  # type: ignore[call-arg]  # pyvista's decorator hides self
        pl.camera_position = "iso"
    pl.link_views()
    return pl
