"""LiveFigure: the comm opens with the figure's data; the loader queues and replays messages.

The loader tests run :data:`LOADER_JS` in Node (skipped without ``node``) against a fake page
model and a fake plotly module:

- plotly.js loads late, the situation that left plotly's own FigureWidget blank: updates sent
  before plotly.js is ready must reach the figure, in order;
- anywidget gave up on the model (its 2 s ``ready`` rejected), the situation that left a figure
  frozen: the loader must take over the comm, ask for a resync and redraw from the answer.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from unittest import mock

import ipywidgets
import plotly.graph_objects as go
import pytest

from dsl_explore.widgets._figure import (
    DELTA_ARRAY_LIMIT,
    LOADER_JS,
    LiveFigure,
    PlotlyBundle,
    plotly_bundle,
)


@contextlib.contextmanager
def opening_states():
    """The state of every comm opened inside the block (its first message), in order."""
    opened: list[dict] = []
    real = ipywidgets.widgets.widget.comm.create_comm

    def create_comm(**kw):
        opened.append(kw["data"]["state"])
        return real(**kw)

    with mock.patch.object(ipywidgets.widgets.widget.comm, "create_comm", create_comm):
        yield opened


def test_comm_opens_with_data_and_layout():
    PlotlyBundle.shared()  # the kernel's bundle widget opens its own comm, once
    with opening_states() as opened:
        fig = LiveFigure(go.Figure(go.Scatter(y=[1.0, 2.0]), layout={"title": {"text": "T"}}))
    assert len(opened) == 1, "the comm must open exactly once"
    state = opened[0]
    assert [t["type"] for t in state["_widget_data"]] == ["scatter"]
    assert state["_widget_layout"]["title"]["text"] == "T"
    assert state["_esm"] == LOADER_JS and len(state["_esm"]) < 10_000
    assert state["_plotly_key"] == plotly_bundle()[1]
    # plotly.js is not in the figure's state: the figure names the kernel's one bundle widget
    assert len(json.dumps(state)) < 50_000
    bundle = PlotlyBundle.shared()
    assert state["_plotly_bundle"] == f"IPY_MODEL_{bundle.model_id}"
    # the page finds the figure's model under the id in its state
    assert state["_dsl_model_id"] == fig.model_id
    assert fig.comm is not None
    fig.close()


def test_kernel_only_traces_open_without_their_data():
    traces = [go.Heatmap(z=[[0.0, 1.0]], visible=False, name="values"), go.Scatter(y=[1.0, 2.0])]
    PlotlyBundle.shared()
    with opening_states() as opened:
        fig = LiveFigure(go.Figure(traces), kernel_only=[0])
    hidden, shown = opened[0]["_widget_data"]
    assert "z" not in hidden and hidden["name"] == "values" and hidden["visible"] is False
    assert list(shown["y"]) == [1.0, 2.0]
    assert [list(r) for r in fig.data[0].z] == [[0.0, 1.0]]  # the kernel keeps the values
    assert fig.kernel_only == frozenset({0})
    sent = _recording(fig)
    fig.resync()
    assert "z" not in sent[0]["state"]["_widget_data"][0]
    fig.close()
    with pytest.raises(ValueError, match="visible=False"):
        LiveFigure(go.Figure(traces), kernel_only=[1])


def test_figures_share_one_bundle_widget():
    a, b = LiveFigure(), LiveFigure()
    assert a._plotly_bundle is b._plotly_bundle is PlotlyBundle.shared()
    assert a.model_id != b.model_id
    text, key = plotly_bundle()
    assert PlotlyBundle.shared().text == text and PlotlyBundle.shared().key == key
    a.close()
    b.close()


def _recording(fig):
    sent = []
    fig.comm.kernel = mock.Mock()  # a comm outside a kernel sends nothing
    fig.comm.send = lambda data=None, buffers=None, **kw: sent.append(data)
    return sent


def test_resync_sends_the_whole_figure_in_one_message():
    fig = LiveFigure(go.Figure(go.Heatmap(z=[[0.0, 1.0]]), layout={"title": {"text": "T"}}))
    sent = _recording(fig)
    fig.layout.title.text = "U"
    fig.data[0].z = [[2.0, 3.0]]
    edits = (fig._last_layout_edit_id, fig._last_trace_edit_id)
    sent.clear()
    fig._dsl_on_msg(fig, {"dsl_explore": "resync"}, [])
    assert len(sent) == 1 and sent[0]["method"] == "update"
    state = sent[0]["state"]
    assert set(state) == {"_widget_data", "_widget_layout", "_last_layout_edit_id",
                          "_last_trace_edit_id", "_dsl_resync"}
    assert state["_widget_layout"]["title"]["text"] == "U"
    assert [list(r) for r in state["_widget_data"][0]["z"]] == [[2.0, 3.0]]
    assert (state["_last_layout_edit_id"], state["_last_trace_edit_id"]) == edits
    assert state["_dsl_resync"] == 1
    # sent again even though nothing changed in between (the page may hold something else)
    sent.clear()
    fig.resync()
    assert len(sent) == 1 and set(sent[0]["state"]) == set(state)
    assert sent[0]["state"]["_dsl_resync"] == 2
    fig._dsl_on_msg(fig, {"something": "else"}, [])
    assert len(sent) == 1
    fig.close()


def test_plain_figurewidget_opens_empty():
    """The defect LiveFigure avoids: plotly's own FigureWidget opens with no data."""
    with opening_states() as opened:
        fig = go.FigureWidget(go.Figure(go.Scatter(y=[1.0, 2.0])))
    assert opened[0]["_widget_data"] == []
    fig.close()


def test_still_a_figurewidget():
    fig = LiveFigure(go.Figure(go.Heatmap(z=[[0.0, 1.0]])))
    assert isinstance(fig, go.FigureWidget)
    with fig.batch_update():
        fig.data[0].z = [[2.0, 3.0]]
    assert [list(r) for r in fig.data[0].z] == [[2.0, 3.0]]
    fig.close()


def _run_node(tmp_path, harness: str, *args: str):
    """Run ``harness`` in Node with the loader's URL (and ``args``); its last line, as JSON."""
    loader = tmp_path / "loader.mjs"
    loader.write_text(LOADER_JS)
    script = tmp_path / "harness.mjs"
    script.write_text(harness)
    out = subprocess.run(["node", str(script), loader.as_uri(), *args], capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


_HARNESS = r"""
const loaderUrl = process.argv[2];
const log = [];
function makeModel(state) {
  const listeners = [];
  return {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; },
    save_changes: () => {},
    send: () => {},
    on: (ev, cb) => listeners.push([ev, cb]),
    off: (ev, cb) => {},
    emit: (k, v) => { state[k] = v; for (const [ev, cb] of listeners.slice())
                                          if (ev === "change:" + k) cb(); },
  };
}
// a fake plotly widget module (FigureModel applies restyles to _widget_data; a view draws it)
const fakeModule = {
  FigureView: class { getFullData() { return []; } },
  default: () => {
    let Q;
    return {
      initialize({ model }) {
        Q = model;
        model.on("change:_py2js_restyle", () => {
          const m = model.get("_py2js_restyle");
          if (m === null) return;
          model.get("_widget_data")[0].y = m.y;
          log.push("model:" + m.id);
        });
      },
      render({ el }) {
        el.drawn = JSON.stringify(Q.get("_widget_data"));
        Q.on("change:_py2js_restyle", () => log.push("view:" + Q.get("_py2js_restyle").id));
        return () => log.push("view removed");
      },
    };
  },
};
let release;
globalThis.__dsl_explore_plotly_widget__ = {
  key: new Promise((r) => { release = () => r(fakeModule); }),
};
const widget = (await import(loaderUrl)).default();
const model = makeModel({ _plotly_key: "key", _widget_data: [{ y: [0] }] });
widget.initialize({ model });
// updates before plotly.js has loaded (what anywidget dropped after 2 s)
for (const id of [1, 2]) { model.emit("_py2js_restyle", { id, y: [id] });
                           model.emit("_py2js_restyle", null); }
const el = {};
const rendering = widget.render({ el });
release();
const cleanup = await rendering;
model.emit("_py2js_restyle", { id: 3, y: [3] }); model.emit("_py2js_restyle", null);
cleanup();
model.emit("_py2js_restyle", { id: 4, y: [4] }); model.emit("_py2js_restyle", null);
console.log(JSON.stringify({ log, drawn: el.drawn, data: model.get("_widget_data") }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_loader_replays_early_updates_in_order(tmp_path):
    r = _run_node(tmp_path, _HARNESS)
    # 1 and 2 came before plotly.js: replayed on the model before the view drew
    assert r["drawn"] == json.dumps([{"y": [2]}]).replace(" ", "")
    assert r["log"] == ["model:1", "model:2", "model:3", "view:3", "view removed", "model:4"]
    assert r["data"] == [{"y": [4]}]


_DELTA_HARNESS = r"""
const { patch } = await import(process.argv[2]);
class FigureView { getFullData() { return this.el._fullData.map((f, i) =>
                                          ({ ...f, ...this.el.data[i] })); } }
patch({ FigureView });
const big = new Float32Array(@N@), small = [1, 2, 3];
const view = new FigureView();
view.el = { _fullData: [{ type: "heatmap", z: big, x: small, uid: "u" }],
            data: [{ z: { dtype: "f4", bdata: "AAAA" }, x: small }] };
console.log(JSON.stringify(view.getFullData()));
""".replace("@N@", str(DELTA_ARRAY_LIMIT + 1))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_loader_leaves_big_arrays_out_of_trace_deltas(tmp_path):
    full = _run_node(tmp_path, _DELTA_HARNESS)
    assert full == [{"type": "heatmap", "x": [1, 2, 3], "uid": "u"}]


_REOPEN_HARNESS = r"""
const loaderUrl = process.argv[2];
const readyFails = process.argv[3] === "reject";
const log = [];
// ipywidgets' model and anywidget's subclass, whose handler waits for a `ready` that failed
class WidgetModel { _handle_comm_msg(msg) { log.push("direct:" + msg.content.data.method);
                                            return Promise.resolve(); } }
class AnyModel extends WidgetModel {
  _handle_comm_msg(msg) {
    return readyFails ? Promise.reject(new Error("[anywidget] Failed to initialize model."))
                      : super._handle_comm_msg(msg);
  }
}
const real = new AnyModel();
const original = (msg) => real._handle_comm_msg(msg);
real.comm = { handler: original, on_msg(cb) { this.handler = cb; } };
const listeners = [];
const state = { _plotly_key: "key", _dsl_model_id: "m1", _widget_data: [{ y: [0] }] };
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {},
  send: (content) => log.push("send:" + JSON.stringify(content)),
  on: (ev, cb) => listeners.push([ev, cb]), off: () => {},
  widget_manager: { get_model: async (id) => { if (id !== "m1") throw new Error(id);
                                               return real; } },
};
const emit = (k, v) => { state[k] = v; for (const [ev, cb] of listeners.slice())
                                         if (ev === "change:" + k) cb(); };
let renders = 0;
globalThis.__dsl_explore_plotly_widget__ = { key: Promise.resolve({
  FigureView: class { getFullData() { return []; } },
  default: () => ({
    initialize() {},
    render({ el }) { renders += 1; el.drawn = JSON.stringify(state._widget_data);
                     return () => log.push("view removed"); },
  }),
}) };
const widget = (await import(loaderUrl)).default();
widget.initialize({ model });
const el = { replaceChildren() { log.push("cleared"); } };
await widget.render({ el });
for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
await real.comm.handler({ content: { data: { method: "update" } } });
emit("_widget_data", [{ y: [7] }]);
emit("_dsl_resync", 1);
for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
console.log(JSON.stringify({ log, renders, drawn: el.drawn,
                             replaced: real.comm.handler !== original }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
@pytest.mark.parametrize("ready", ["reject", "resolve"])
def test_loader_takes_over_a_comm_that_anywidget_gave_up_on(tmp_path, ready):
    r = _run_node(tmp_path, _REOPEN_HARNESS, ready)
    if ready == "reject":
        # the probe was refused: the comm now goes to ipywidgets' handler, and the kernel is
        # asked for the figure; its answer redraws the view from the new data
        assert r["replaced"]
        assert r["log"][:2] == ['send:{"dsl_explore":"resync"}', "direct:update"]
        assert r["log"][2:] == ["view removed", "cleared"]
        assert r["renders"] == 2 and r["drawn"] == json.dumps([{"y": [7]}]).replace(" ", "")
    else:
        # anywidget's handler works: it keeps the comm (the probe reached ipywidgets' handler)
        assert not r["replaced"]
        assert r["log"][:2] == ["direct:dsl_explore_probe", "direct:update"]
        assert not any(e.startswith("send:") for e in r["log"])


_ASK_HARNESS = r"""
const loaderUrl = process.argv[2];
// the bundle comes back as text: import it as a data: URL (Node has no blob: imports)
globalThis.Blob = class { constructor(parts) { this.text = parts.join(""); } };
URL.createObjectURL = (b) =>
  "data:text/javascript;base64," + Buffer.from(b.text).toString("base64");
URL.revokeObjectURL = () => {};
const BUNDLE = "export class FigureView { getFullData() { return []; } }\n" +
  "export default () => ({ initialize() {}, render({ el }) { el.drawn = 'plotly'; } });";
const log = [];
const listeners = [];
const state = { _plotly_key: "fresh-key", _plotly_bundle: "IPY_MODEL_b1" };
const model = {
  get: (k) => state[k], set: () => {}, save_changes: () => {},
  on: (ev, cb) => listeners.push([ev, cb]),
  off: (ev, cb) => { const i = listeners.findIndex((l) => l[0] === ev && l[1] === cb);
                     if (i >= 0) listeners.splice(i, 1); },
  send: (content) => {
    log.push("send:" + content.dsl_explore);
    if (content.dsl_explore === "bundle")  // the kernel's answer
      setTimeout(() => { for (const [ev, cb] of listeners.slice())
        if (ev === "msg:custom") cb({ dsl_explore: "bundle", text: BUNDLE }, []); }, 0);
  },
};
const widget = (await import(loaderUrl)).default();
widget.initialize({ model });
const el = {};
await widget.render({ el });
console.log(JSON.stringify({ log, drawn: el.drawn,
                             left: listeners.filter((l) => l[0] === "msg:custom").length }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_loader_asks_the_kernel_for_plotly_without_a_widget_manager(tmp_path):
    r = _run_node(tmp_path, _ASK_HARNESS)
    assert r == {"log": ["send:bundle"], "drawn": "plotly", "left": 0}


def test_the_kernel_answers_a_bundle_request():
    fig = LiveFigure()
    sent = []
    fig.send = lambda content, buffers=None: sent.append(content)
    fig._dsl_on_msg(fig, {"dsl_explore": "bundle"}, [])
    assert sent == [{"dsl_explore": "bundle", "text": plotly_bundle()[0]}]
    fig.close()


def test_kernel_only_traces_are_not_sent():
    import plotly.basewidget as bw

    sent = []
    originals = {}
    for name in ("_send_restyle_msg", "_send_update_msg", "_send_relayout_msg"):
        originals[name] = getattr(bw.BaseFigureWidget, name)

    def recorder(name):
        def record(self, *args, **kwargs):
            sent.append((name, args[:2]))
            return originals[name](self, *args, **kwargs)
        return record

    fig = LiveFigure(go.Figure([go.Heatmap(z=[[0.0, 1.0]], visible=False),
                                go.Scatter(y=[1.0, 2.0])]))
    with pytest.raises(ValueError, match="visible=False"):
        fig.keep_in_kernel([1])
    fig.keep_in_kernel([0])
    assert fig.kernel_only == frozenset({0})
    with mock.patch.multiple(bw.BaseFigureWidget, **{n: recorder(n) for n in originals}):
        fig.data[0].z = [[5.0, 6.0]]  # kernel only: nothing goes out
        assert sent == []
        with fig.batch_update():  # the kernel-only part is dropped, the rest goes out
            fig.data[0].z = [[7.0, 8.0]]
            fig.data[1].y = [3.0, 4.0]
            fig.layout.title.text = "T"
        with fig.batch_update():  # only layout left: a relayout
            fig.data[0].z = [[9.0, 9.0]]
            fig.layout.title.text = "U"
    assert [tuple(r[0] for r in fig.data[0].z)] == [(9.0,)]  # the kernel keeps the values
    (name, (restyle, relayout)), (name2, (relayout2, _)) = sent[0], sent[1]
    assert name == "_send_update_msg" and set(restyle) == {"y"} and relayout == {"title.text": "T"}
    assert name2 == "_send_relayout_msg" and relayout2 == {"title.text": "U"}
    assert len(sent) == 2
    fig.close()
