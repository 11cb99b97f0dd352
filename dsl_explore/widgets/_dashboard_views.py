"""The dashboard's views, one class each: the history curves (:class:`CurvesView`), the
reconstruction of one validation sample (:class:`ReconView`, in its slot :class:`ReconPanel`)
and the status line (:class:`StatusLine`).

The views never touch the run: the dashboard reads it and hands them what to show. Figures are
built once and updated in place inside ``batch_update``.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from dsl_explore.plots import plot_history
from dsl_explore.plots.parts import Parts1D, Parts2D
from dsl_explore.plots.recon import ReconParts, build_recon, recon_parts
from dsl_explore.plots.traces import heatmaps_to_typed
from dsl_explore.plots.update import index_traces, update_1d, update_2d
from dsl_explore.training.metrics import METRICS, metric
from dsl_explore.widgets._common import set_status, status_html
from dsl_explore.widgets._figure import LiveFigure
from dsl_explore.widgets._run_controls import RunControls

__all__ = ["EVAL_KEYS", "CurvesView", "ReconPanel", "ReconView", "StatusLine", "clock",
           "placeholder"]

EVAL_KEYS = tuple(
    m.history_key for m in METRICS if m.kind == "eval" and m.history_key and not m.per_dim
)
"""The evaluation columns of a run's history that get a curve (from the metric registry;
``betti_per_dim`` is drawn as one curve per dimension)."""

STATUS_METRICS = ("count_rate", "betti_total")
"""Evaluation metrics the status line names, with their registry label and format."""


def _column(values: Sequence[Any]) -> np.ndarray:
    """A history column as float64 (``None`` -> NaN, a gap in the line)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class CurvesView:
    """The history figure: one trace per curve, created up front, filled on every refresh.

    Parameters
    ----------
    loss_columns : sequence of str
        The step columns of the history drawn as loss curves.
    n_dims : int
        Spatial dimensions (one Betti-error curve per dimension).
    title : str
        The figure title.
    """

    def __init__(self, loss_columns: Sequence[str], n_dims: int, title: str) -> None:
        self.loss_columns = tuple(loss_columns)
        self.n_dims = n_dims
        self.title = title
        ref = plot_history(self._template([]), title=title, height=820, width=1100)
        for tr in ref.data:
            tr.x, tr.y = [], []
        self.fig = LiveFigure(ref)
        self.keys = [tr.meta["key"] for tr in self.fig.data]
        self.n_events = 0
        self._span = 0.0

    def _template(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A one-point history holding every key, so plot_history creates every trace."""
        return {
            "steps": {"step": [0], **{c: [1.0] for c in self.loss_columns}},
            "evals": {"step": [0], **{k: [1.0] for k in EVAL_KEYS},
                      "betti_per_dim": [[1.0] * self.n_dims]},
            "events": list(events),
        }

    def _series(self, key: str, hist: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        st, ev = hist.get("steps", {}), hist.get("evals", {})
        if key in self.loss_columns:
            return np.asarray(st.get("step", []), dtype=np.int32), _column(st.get(key, []))
        x = np.asarray(ev.get("step", []), dtype=np.int32)
        if key.startswith("betti_") and key != "betti_total":
            q = int(key.split("_")[1])
            rows = ev.get("betti_per_dim", [])
            return x, _column([r[q] if r is not None and q < len(r) else None for r in rows])
        return x, _column(ev.get(key, []))

    def update(self, hist: Mapping[str, Any]) -> None:
        """Show ``hist`` (a run's history): every curve, and the event lines when they changed."""
        fig = self.fig
        events = list(hist.get("events", []))
        with fig.batch_update():
            for tr, key in zip(fig.data, self.keys, strict=True):
                x, y = self._series(key, hist)
                n = min(len(x), len(y))
                tr.x, tr.y = x[:n], y[:n]
            steps = hist.get("steps", {}).get("step", [])
            span = float(steps[-1]) if len(steps) else 0.0
            if len(events) != self.n_events or (events and span > 1.5 * self._span):
                # event lines: shapes + labels from plot_history (labels of events close on
                # the current step axis merged)
                ref = plot_history(self._template(events), title=self.title, x_span=span)
                self._span = span
                fig.layout.shapes = ref.layout.shapes
                fig.layout.annotations = ref.layout.annotations
                self.n_events = len(events)

    def points(self) -> dict[str, int]:
        """Curve key -> number of points drawn."""
        return {key: len(tr.x) for tr, key in zip(self.fig.data, self.keys, strict=True)}


class ReconView:
    """The reconstruction figure of one sample; later parts of the same shape update its traces
    in place (:mod:`dsl_explore.plots.update`)."""

    def __init__(self, parts: ReconParts) -> None:
        self.ndim = parts.ndim
        self.fig = LiveFigure(heatmaps_to_typed(build_recon(parts)))
        self.idx = index_traces(self.fig, 1 if self.ndim == 1 else 2)
        self.shape = self._shape(parts)

    @staticmethod
    def _shape(parts: ReconParts) -> tuple[int, ...]:
        p = parts.parts
        return (p.target.shape[0],) if parts.ndim == 1 else tuple(p.target.shape)

    def fits(self, parts: ReconParts) -> bool:
        """Whether ``parts`` can be shown by updating this figure (same kind and shape)."""
        return parts.ndim == self.ndim and self._shape(parts) == self.shape

    def update(self, parts: ReconParts) -> None:
        """Show ``parts`` (which :meth:`fits`)."""
        p = parts.parts
        if isinstance(p, Parts1D):
            update_1d(self.fig, self.idx, p, title=parts.title)
        else:
            assert isinstance(p, Parts2D)
            update_2d(self.fig, self.idx, p, title=parts.title)


def placeholder(text: str) -> go.FigureWidget:
    """An empty figure saying ``text`` (where a figure will appear)."""
    fig = LiveFigure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 16, "color": "#666666"})
    fig.update_layout(template="plotly_white", height=260, xaxis_visible=False,
                      yaxis_visible=False, margin={"l": 20, "r": 20, "t": 20, "b": 20})
    return fig


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss`` from one hour) of a duration in seconds.

    Examples
    --------
    >>> clock(0.4), clock(75), clock(3725)
    ('0:00', '1:15', '1:02:05')
    """
    s = round(max(0.0, float(seconds)))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class StatusLine:
    """The status line (class ``dsl-status``): step, steps/s, device, state, the shown
    evaluation's numbers and the run's error.

    Attributes
    ----------
    widget : ipywidgets.HTML
        The line.
    text : str
        What it shows, as text.
    error_text : str or None
        The run's error summary, when it failed.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.widget = status_html()
        self.text = ""
        self.error_text: str | None = None
        self._rates: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self.elapsed = 0.0
        """Seconds the run has been seen running (pauses and stops not counted)."""
        self._since: float | None = None

    def record(self, now: float, state: str, step: int) -> None:
        """Note the run's step at monotonic time ``now`` (for the steps/s and the elapsed time
        while running)."""
        if state == "running":
            if self._since is not None:
                self.elapsed += max(0.0, now - self._since)
            self._since = now
            self._rates.append((now, step))
        else:
            if self._since is not None:
                self.elapsed += max(0.0, now - self._since)
            self._since = None
            self._rates.clear()

    def eta(self, step: int, total: int) -> float | None:
        """Seconds to the last step at the current rate, or None (no rate, not running)."""
        rate = self.rate()
        if rate is None or rate <= 0 or step >= total:
            return None
        return (total - step) / rate

    def rate(self) -> float | None:
        """Steps/s over the last ~5 s while running; the run's mean otherwise."""
        r = list(self._rates)
        if len(r) >= 2:
            t_end, s_end = r[-1]
            t0, s0 = next(((t, s) for t, s in r if t_end - t <= 5.0), r[0])
            if t_end - t0 > 0.2:
                return (s_end - s0) / (t_end - t0)
        sps = self.run.seconds_per_step
        return 1.0 / sps if sps == sps and sps > 0 else None

    @staticmethod
    def _evaluation(snap: Mapping[str, Any]) -> str:
        m = snap.get("metrics", {})
        loss = snap.get("loss", {})
        parts = [f"evaluation at step {snap.get('step')}"]
        if "total" in loss:
            parts.append(f"loss {loss['total']:.4g}")
        for key in STATUS_METRICS:
            if key in m:
                entry = metric(key)
                parts.append(f"{entry.label} {m[key]:{entry.fmt}}")
        if "spurious" in m:
            parts.append(f"critical points/sample: {m['spurious']:.3g} spurious, "
                         f"{m['lost']:.3g} lost, {m['changed']:.3g} changed")
        return " · ".join(parts)

    def update(self, state: str, step: int, snap: Mapping[str, Any] | None) -> None:
        """Show the run at ``state`` and ``step`` with the evaluation ``snap`` (or None)."""
        rate = self.rate()
        mean = state != "running"
        rate_txt = "–" if rate is None else f"{rate:.3g}"
        total = self.run.config.steps
        timing = f"elapsed {clock(self.elapsed)}"
        eta = self.eta(step, total) if state == "running" else None
        if eta is not None:
            timing += f" · ETA {clock(eta)}"
        line = (f"step {step} / {total} · {rate_txt} steps/s{' (mean)' if mean else ''} · "
                f"{timing} · device {self.run.device} · {state}")
        if snap is not None:
            line += "\n" + self._evaluation(snap)
        level = {"running": "busy", "finished": "ok", "failed": "error"}.get(state, "info")
        self.error_text = self.error_summary() if state == "failed" or \
            self.run.error is not None else None
        if self.error_text:
            line += "\n" + self.error_text
            level = "error"
        if line != self.text:
            self.text = line
            set_status(self.widget, line, level=level)

    def error_summary(self) -> str | None:
        """The run's error: its last line and where it was raised, or None."""
        exc = self.run.error
        if exc is None:
            return None
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            f = frames[-1]
            where = f"\n  at {Path(f.filename).name}:{f.lineno} in {f.name}: {f.line or ''}"
        head = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return f"training failed at step {self.run.step}: {head}{where}"


class ReconPanel:
    """The reconstruction slot: the figure of the sample (and 3D slice) the controls select.

    Before the run's first evaluation it shows the target in both panels (a placeholder for runs
    that keep no validation data). A figure of the same kind and shape is updated in place;
    otherwise a new one replaces it.
    """

    def __init__(self, run: Any, controls: RunControls) -> None:
        self.run, self.controls = run, controls
        self.view: ReconView | None = None
        self.box = W.Box([])
        val = getattr(run, "val_data", None)
        if val is not None:  # build the figure now, not while the run trains
            self.show(self.waiting_parts(val))
        else:
            self.box.children = (placeholder(
                "the reconstruction appears after the run's first evaluation"),)

    @property
    def figure(self) -> go.FigureWidget | None:
        return None if self.view is None else self.view.fig

    def _selection(self, n: int) -> tuple[int, int | None]:
        s = min(int(self.controls.sample_slider.value), n - 1)
        sl = self.controls.slice_slider
        return s, None if sl is None else int(sl.value)

    def parts(self, snap: Mapping[str, Any]) -> ReconParts:
        """The parts of a snapshot's selected sample, with the snapshot's live settings."""
        rec, tgt = snap["reconstruction"], snap["target"]
        s, slice_index = self._selection(rec.shape[0])
        cfg = snap.get("config") or self.run.config.to_dict()
        return recon_parts(
            tgt[s, 0], rec[s, 0], k=float(cfg["k"]), weights=cfg.get("weights"),
            surrogate=str(cfg.get("surrogate", "tanh")), slice_index=slice_index,
            title_prefix=f"step {snap['step']} · validation sample {s}", max_markers=2000,
        )

    def waiting_parts(self, val: np.ndarray) -> ReconParts:
        """Before the first evaluation: the selected validation target in both panels."""
        cfg = self.run.config
        s, slice_index = self._selection(val.shape[0])
        return recon_parts(
            val[s, 0], val[s, 0], k=cfg.k, weights=cfg.weights, surrogate=cfg.surrogate,
            slice_index=slice_index, title_prefix=f"validation sample {s} · waiting for the "
            "first evaluation: both panels show the target", max_markers=2000,
        )

    def show(self, parts: ReconParts) -> bool:
        """Draw ``parts``; returns whether a new figure was built (call with the widget lock)."""
        if self.view is not None and self.view.fits(parts):
            self.view.update(parts)
            return False
        old = self.view
        self.view = ReconView(parts)
        self.box.children = (self.view.fig,)
        if old is not None:
            old.fig.close()
        return True
