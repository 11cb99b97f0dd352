"""One refresh of the dashboard as a frame: read the run, decide whether to redraw, show it.

:class:`FramePainter` keeps what was drawn last and paces redraws by their own cost: after one
that took ``c`` seconds of CPU, the next waits at least ``c / MAX_DUTY`` (and
``1 / refresh_hz``, at most :data:`MAX_REDRAW_WAIT_S`), so the dashboard never takes more than
a few percent of the interpreter from the training thread. A change of the run's state (paused,
stopped, finished, failed) is drawn at once; building a new reconstruction figure is a one-time
cost that sets no pace.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsl_explore.plots.recon import ReconParts
from dsl_explore.widgets._dashboard_views import CurvesView, ReconPanel, StatusLine
from dsl_explore.widgets._run_controls import RunControls

__all__ = ["MAX_DUTY", "MAX_REDRAW_WAIT_S", "Frame", "FramePainter"]

MAX_DUTY = 0.02
"""Redraws take at most this share of the refresher's wall time (CPU)."""

MAX_REDRAW_WAIT_S = 5.0
"""... but a new evaluation is drawn within this many seconds."""


@dataclass
class Frame:
    """One refresh: what was read from the run, and what showing it cost."""

    redraw: bool
    state: str
    step: int
    snap: dict[str, Any] | None
    snap_step: Any
    hist: Mapping[str, Any] | None
    parts: ReconParts | None
    cost: float = 0.0  # CPU seconds (reading, computing, drawing)
    built: bool = False  # a new reconstruction figure was built


class FramePainter:
    """Reads frames from the run and shows them on the dashboard's views."""

    def __init__(self, run: Any, *, curves: CurvesView, recon: ReconPanel,
                 controls: RunControls, status: StatusLine, refresh_hz: float) -> None:
        self.run, self.curves, self.recon = run, curves, recon
        self.controls, self.status, self.refresh_hz = controls, status, refresh_hz
        self.drawn: dict[str, Any] = {"snap_step": None, "state": None, "step": None}
        self.shown: dict[str, Any] = {"state": None, "step": None}
        self.next_redraw = 0.0
        self.snapshot: dict[str, Any] | None = None  # the evaluation shown
        self.n_redraws = 0
        self.cpu_seconds = 0.0  # CPU time of all refreshes so far (reading, computing, drawing)

    def read(self, now: float, force: bool) -> Frame:
        """Read the run and compute what a redraw shows (when one is due)."""
        c0 = time.thread_time()
        run = self.run
        state, step = run.state, int(run.step)
        self.status.record(now, state, step)
        snap = run.snapshot()
        snap_step = None if snap is None else snap.get("step")
        drawn = self.drawn
        changed = (
            snap_step != drawn["snap_step"]
            or state != drawn["state"]
            or (state != "running" and step != drawn["step"])
        )
        due = force or state != drawn["state"] or now >= self.next_redraw
        redraw = (changed and due) or force
        hist = run.history if redraw else None
        parts = self.recon.parts(snap) if redraw and snap is not None else None
        return Frame(redraw, state, step, snap, snap_step, hist, parts,
                     cost=time.thread_time() - c0)

    def show(self, f: Frame) -> None:
        """Show a frame (on the UI side, holding the widget lock)."""
        t0 = time.thread_time()
        if f.redraw:
            assert f.hist is not None
            self.curves.update(f.hist)
            if f.parts is not None:
                self.snapshot = f.snap
                f.built = self.recon.show(f.parts)
            self.drawn.update(snap_step=f.snap_step, state=f.state, step=f.step)
            self.n_redraws += 1
        self.shown.update(state=f.state, step=f.step)
        self.controls.sync(self.run.config)
        self.controls.update_buttons(f.state, f.step, self.run.config.steps)
        self.status.update(f.state, f.step, self.snapshot)
        f.cost += time.thread_time() - t0

    def account(self, now: float, f: Frame) -> None:
        """Add the frame's cost and set when the next redraw may come."""
        self.cpu_seconds += f.cost
        if f.redraw:
            c = 0.0 if f.built else f.cost
            wait = min(max(1.0 / self.refresh_hz, c / MAX_DUTY), MAX_REDRAW_WAIT_S)
            self.next_redraw = now + wait
