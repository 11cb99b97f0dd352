"""Issue 11, point 4: labels that misled (titles cut, legends cut, crowded log ticks, piled-up
event labels, a fractional "exact count")."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("plotly")

from dsl_explore.plots import plot_history, plot_k_sweep, style
from dsl_explore.plots.curves import event_groups

TITLE_PX_PER_CHAR = 0.56 * style.TITLE_FONT_SIZE


def _longest_line(text: str) -> int:
    return max(len(line) for line in text.split("<br>"))


def test_long_titles_wrap_to_the_figure_and_clear_the_toolbar():
    import plotly.graph_objects as go

    long = " · ".join(f"part {i} with some words" for i in range(12))
    fig = style.apply_style(go.Figure(go.Scatter(y=[1, 2])), title=long, width=800)
    text = fig.layout.title.text
    assert "<br>" in text, "a title wider than the figure must wrap (plotly cuts it)"
    assert _longest_line(text) * TITLE_PX_PER_CHAR <= 800 - 40
    assert text.replace("<br>", " · ") == long  # nothing lost
    # placed in px from the top, below the hover toolbar, with room for every line
    assert fig.layout.title.yref == "container" and fig.layout.title.y == 1.0
    assert fig.layout.title.pad.t + 16 >= style.MODEBAR_CLEARANCE
    lines = style.title_lines(text)
    assert fig.layout.margin.t >= 110 + (lines - 1) * style.TITLE_FONT_SIZE


def test_width_is_capped_to_the_notebook_and_the_right_legend_fits():
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(y=[1, 2], name="target"),
                     go.Scatter(y=[2, 1], name="reconstruction")])
    style.apply_style(fig, title="Betti curves", width=1200, legend_top=False)
    assert fig.layout.width == style.MAX_WIDTH <= 1150
    # 13 px legend font: "reconstruction" needs ~ 14 * 7.8 px plus the line sample
    assert fig.layout.margin.r >= 48 + 0.6 * 13 * len("reconstruction")


def test_explorer_title_shows_the_integer_count_and_the_weighted_value_labelled():
    from dsl_explore.counting import sign_mismatch_count
    from dsl_explore.widgets import explore

    rng = np.random.default_rng(0)
    y = rng.random((24, 24)).astype(np.float32)
    x = (y + 0.2 * rng.standard_normal(y.shape)).astype(np.float32)
    ex = explore(x, y)
    for s in ex.weight_sliders:
        s.value = 0.1
    count = int(sign_mismatch_count(x, y, dims=(0, 1)))
    weighted = float(sign_mismatch_count(x, y, dims=(0, 1), weights=(0.1, 0.1)))
    title = ex.figure.layout.title.text.replace("<br>", " · ")
    assert f"exact count = {count} " in title, title
    assert f"(weighted {weighted:.4g})" in title, title
    assert _longest_line(ex.figure.layout.title.text) * TITLE_PX_PER_CHAR <= 1100


def test_log_axes_label_one_tick_per_decade():
    fig = plot_k_sweep(np.array([0.0, 1.0, 0.5, 2.0]), np.array([0.0, 0.8, 0.9, 1.5]))
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis.dtick == 1, "2-and-5 labels over five decades crowd the axis"
    h = {"steps": {"step": list(range(1, 101)), "mse": list(np.logspace(0, -3, 100))}}
    fig = plot_history(h)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1
    # one decade or less (the live dashboard's loss): 1-2-5 labels, not every digit
    h = {"steps": {"step": list(range(1, 101)), "mse": list(np.linspace(0.9, 0.1, 100))}}
    assert plot_history(h).layout.yaxis.dtick == "D2"


def test_close_events_share_one_label_in_the_history():
    events = [{"step": s, "kind": "set", "changes": {"k": float(s)}} for s in (100, 101, 102,
                                                                               103, 104)]
    events.append({"step": 600, "kind": "set", "changes": {"lam": 0.5}})
    h = {"steps": {"step": list(range(0, 1001, 10)), "mse": [1.0] * 101}, "events": events}
    fig = plot_history(h)
    labels = [a for a in fig.layout.annotations if a.textangle == -90]
    assert len(labels) == 2, [a.text for a in labels]  # was one per event: 6 stacked labels
    assert labels[0].text.startswith("5 changes") and "k=100" in labels[0].text
    assert "step 104" in labels[0].hovertext
    assert len(fig.layout.shapes) == 6  # every event keeps its line
    assert [g[0] for g in event_groups(events, 1000)] == [100.0, 600.0]
