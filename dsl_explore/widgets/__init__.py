"""Interactive widgets (ipywidgets 8 + plotly ``FigureWidget``).

- :func:`explore` / :class:`Explorer`: sliders for k, the axis weights and the surrogate next to
  the 1D/2D/3D views of a reconstruction and its target.
- :class:`TrainingDashboard`: live curves, the current reconstruction and the controls of a
  :class:`~dsl_explore.training.TrainingRun` training in the background.
- :func:`explore_files` / :class:`ArrayLoader`: load your own ``.npy``/``.npz`` arrays (a path
  or an upload) and explore them.

Shared pieces for other widgets live in :mod:`dsl_explore.widgets._common`.
"""

from __future__ import annotations

from dsl_explore.widgets.dashboard import TrainingDashboard
from dsl_explore.widgets.explore import Explorer, explore
from dsl_explore.widgets.loader import ArrayLoader, explore_files

__all__ = ["ArrayLoader", "Explorer", "TrainingDashboard", "explore", "explore_files"]
