"""plots.parts / plots.update / plots.recon: an in-place update shows what a fresh build shows."""

from __future__ import annotations

import numpy as np
import pytest

go = pytest.importorskip("plotly.graph_objects")

from dsl_explore.plots.recon import build_recon, recon_parts  # noqa: E402
from dsl_explore.plots.traces import as_array, heatmaps_to_typed  # noqa: E402
from dsl_explore.plots.update import index_traces, update_1d, update_2d  # noqa: E402


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    y = rng.random(shape)
    return y, y + 0.3 * rng.standard_normal(shape)


def _data(fig):
    out = []
    for tr in fig.data:
        d = tr.to_plotly_json()
        out.append({k: (as_array(v).tolist() if k in ("x", "y", "z") and v is not None else v)
                    for k, v in d.items() if k != "uid"})
    return out


@pytest.mark.parametrize("shape", [(30,), (12, 14), (6, 7, 8)])
def test_update_equals_fresh_build(shape):
    t0, r0 = _pair(shape, 0)
    t1, r1 = _pair(shape, 1)
    kw = {"k": 20.0, "weights": None, "surrogate": "tanh", "title_prefix": "p"}
    fig = go.FigureWidget(heatmaps_to_typed(build_recon(recon_parts(t0, r0, **kw))))
    new = recon_parts(t1, r1, **kw)
    idx = index_traces(fig, 1 if len(shape) == 1 else 2)
    if len(shape) == 1:
        update_1d(fig, idx, new.parts, title=new.title)
    else:
        update_2d(fig, idx, new.parts, title=new.title)
    want = heatmaps_to_typed(build_recon(new))
    assert _data(fig) == _data(want)
    assert fig.layout.title.text == want.layout.title.text
    if len(shape) > 1:
        assert fig.layout.coloraxis.cmax == pytest.approx(want.layout.coloraxis.cmax)
        assert fig.layout.coloraxis2.cmax == pytest.approx(want.layout.coloraxis2.cmax)


def test_index_traces_rejects_bad_ndim():
    t, r = _pair((10,), 0)
    fig = build_recon(recon_parts(t, r, k=5.0, weights=None, surrogate="tanh"))
    with pytest.raises(ValueError, match="ndim"):
        index_traces(fig, 3)
    with pytest.raises(LookupError):
        index_traces(fig, 2)  # a 1D figure has no heatmap fields
