"""The explorer's controls: one object owns the parameters and their widgets; views register
callbacks (the shape of mpl-interactions' ``controller``).

:class:`ExploreControls` holds the k slider (log scale), the surrogate dropdown, one weight
slider per axis, the sample slider and, for volumes, the view toggle and the slice axis and
index. It reads the current values (:attr:`~ExploreControls.k`, ``weights``, ``surrogate``,
``sample``, ``slice``, ``mode``) and calls the callbacks registered with
:meth:`~ExploreControls.on` when a group of controls changes. A slice-axis change first fits the
index slider to the new axis, then calls the ``slice`` callbacks once more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W

from dsl_explore.widgets._common import (
    ResetButton,
    log_k_slider,
    surrogate_dropdown,
    weight_sliders,
)

__all__ = ["EVENTS", "ExploreControls"]

EVENTS = ("loss", "weights", "sample", "slice", "mode")
"""What :meth:`ExploreControls.on` listens to: k or surrogate, a weight, the sample, the slice
(axis or index), the 3D view mode."""

Callback = Callable[[Any], None]


class ExploreControls:
    """The explorer's parameters and their widgets.

    Parameters
    ----------
    spatial : tuple of int
        Sizes of the spatial axes (1-3 of them).
    n_samples : int
        Number of samples (the sample slider spans them).
    k, weights, surrogate
        Initial loss settings (checked by the caller).
    mode3d : {"slices", "3D"}
        Initial 3D view.
    continuous : bool
        Whether k, weights and the slice index update while dragging.

    Examples
    --------
    >>> c = ExploreControls((8, 9), 1, k=10.0, weights=None, surrogate="tanh")
    >>> seen = []
    >>> c.on("weights", lambda change: seen.append(c.weights))
    >>> c.weight_sliders[1].value = 0.5
    >>> seen, c.slice, c.mode
    ([(1.0, 0.5)], None, None)
    """

    def __init__(
        self,
        spatial: tuple[int, ...],
        n_samples: int,
        *,
        k: float,
        weights: Sequence[float] | None,
        surrogate: str,
        mode3d: str = "slices",
        continuous: bool = True,
    ) -> None:
        self.spatial = spatial
        self.ndim = len(spatial)
        self.n_samples = n_samples
        self._callbacks: dict[str, list[Callback]] = {e: [] for e in EVENTS}
        self.k_slider = log_k_slider(k, continuous_update=continuous)
        self.surrogate_dropdown = surrogate_dropdown(surrogate)
        self.weight_sliders = weight_sliders(
            self.ndim, weights, names=[f"axis {a}" for a in range(self.ndim)],
            continuous_update=continuous,
        )
        self.sample_slider = W.IntSlider(
            value=0, min=0, max=max(n_samples - 1, 0), description="sample",
            continuous_update=False, layout=W.Layout(width="420px"),
        )
        self.slice_axis: W.ToggleButtons | None = None
        self.slice_slider: W.IntSlider | None = None
        self.mode_toggle: W.ToggleButtons | None = None
        if self.ndim == 3:
            self._make_3d_controls(mode3d, continuous)
        self._wire()
        # k, surrogate and weights back to the values explore() was called with
        self.reset = ResetButton([self.k_slider, self.surrogate_dropdown, *self.weight_sliders])

    def _make_3d_controls(self, mode3d: str, continuous: bool) -> None:
        self.slice_axis = W.ToggleButtons(
            options=[(f"axis {a}", a) for a in range(3)], value=0, description="slice",
            style={"button_width": "64px"},
        )
        self.slice_slider = W.IntSlider(
            value=self.spatial[0] // 2, min=0, max=self.spatial[0] - 1,
            description="index", continuous_update=continuous,
            layout=W.Layout(width="360px"),
        )
        self.mode_toggle = W.ToggleButtons(
            options=["slices", "3D"], value=mode3d, description="view",
            tooltips=["2D panels of one slice", "rotatable 3D view (plotly)"],
            style={"button_width": "64px"},
        )

    def _wire(self) -> None:
        self.k_slider.observe(self._fire("loss"), names="value")
        self.surrogate_dropdown.observe(self._fire("loss"), names="value")
        for s in self.weight_sliders:
            s.observe(self._fire("weights"), names="value")
        self.sample_slider.observe(self._fire("sample"), names="value")
        if self.slice_axis is not None and self.slice_slider is not None \
                and self.mode_toggle is not None:
            self.slice_axis.observe(self._on_slice_axis, names="value")
            self.slice_slider.observe(self._fire("slice"), names="value")
            self.mode_toggle.observe(self._fire("mode"), names="value")

    def _fire(self, event: str) -> Callback:
        def fire(change: Any) -> None:
            for cb in self._callbacks[event]:
                cb(change)

        return fire

    def _on_slice_axis(self, change: Any) -> None:
        assert self.slice_slider is not None and self.slice_axis is not None
        n = self.spatial[int(self.slice_axis.value)]
        with self.slice_slider.hold_trait_notifications():
            self.slice_slider.max = n - 1
            self.slice_slider.value = min(self.slice_slider.value, n - 1)
        self._fire("slice")(None)

    def on(self, event: str, callback: Callback) -> None:
        """Call ``callback(change)`` when the controls of ``event`` (one of :data:`EVENTS`)
        change."""
        if event not in self._callbacks:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
        self._callbacks[event].append(callback)

    # ---------------------------------------------------------------- values

    @property
    def k(self) -> float:
        return float(self.k_slider.value)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(float(s.value) for s in self.weight_sliders)

    @property
    def surrogate(self) -> str:
        return str(self.surrogate_dropdown.value)

    @property
    def sample(self) -> int:
        return int(self.sample_slider.value)

    @property
    def slice(self) -> tuple[int, int] | None:
        """``(axis, index)`` of the slice shown (3D), else None."""
        if self.ndim != 3:
            return None
        assert self.slice_axis is not None and self.slice_slider is not None
        return int(self.slice_axis.value), int(self.slice_slider.value)

    @property
    def mode(self) -> str | None:
        """``"slices"`` or ``"3D"`` for volumes, else None."""
        return None if self.mode_toggle is None else str(self.mode_toggle.value)

    # ---------------------------------------------------------------- layout

    def sync_slice_controls(self) -> None:
        """Disable the slice controls while the 3D view is shown."""
        if self.slice_axis is None or self.slice_slider is None:
            return
        disabled = self.mode == "3D"
        self.slice_axis.disabled = disabled
        self.slice_slider.disabled = disabled

    def rows(self) -> list[W.Widget]:
        """The control rows, top to bottom (the sample slider only for several samples)."""
        rows: list[W.Widget] = [
            W.HBox([self.k_slider, self.surrogate_dropdown, self.reset.button]),
            W.HBox(list(self.weight_sliders)),
        ]
        if self.n_samples > 1:
            rows.append(self.sample_slider)
        if self.mode_toggle is not None and self.slice_axis is not None \
                and self.slice_slider is not None:
            rows.append(W.HBox([self.mode_toggle, self.slice_axis, self.slice_slider]))
            self.sync_slice_controls()
        return rows
