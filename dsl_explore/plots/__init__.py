"""Figures of the kit: plain arrays in, plotly figures (or a pyvista plotter) out.

- :func:`plot_1d`: target and reconstruction lines, critical points by kind, difference signs
  and the per-difference DSL term.
- :func:`plot_2d`: heatmaps of target, reconstruction, exact mismatch map and DSL contribution.
- :func:`plot_volume_pyvista` / :func:`plot_volume_plotly`: 3D views with glyphs at the
  mismatched critical points (pyvista is imported only when called).
- :func:`plot_history`: loss terms and metrics of a training run over steps.
- :func:`plot_k_sweep` / :func:`k_sweep`: DSL against the sharpness k, with the exact count.
- :func:`plot_pareto`: Betti error against MSE per objective of a reproduction suite.

Colours and marker kinds come from :mod:`dsl_explore.plots.style`. There is no widget code
here; :mod:`dsl_explore.widgets` builds on these functions.
"""

from __future__ import annotations

from dsl_explore.plots.curves import KSweep, k_sweep, plot_history, plot_k_sweep
from dsl_explore.plots.image import plot_2d
from dsl_explore.plots.pareto import plot_pareto
from dsl_explore.plots.signal import plot_1d
from dsl_explore.plots.traces import find_traces, trace_index
from dsl_explore.plots.volume import plot_volume_plotly, plot_volume_pyvista

__all__ = [
    "KSweep",
    "find_traces",
    "k_sweep",
    "plot_1d",
    "plot_2d",
    "plot_history",
    "plot_k_sweep",
    "plot_pareto",
    "plot_volume_plotly",
    "plot_volume_pyvista",
    "trace_index",
]
