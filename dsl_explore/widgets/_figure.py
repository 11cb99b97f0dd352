"""``LiveFigure``: plotly's ``FigureWidget`` that never stays blank or frozen and updates cheaply.

plotly >= 6 ships its ``FigureWidget`` as an anywidget whose front-end module (``_esm``) is the
whole plotly.js bundle, about 5 MB. Three things went wrong in JupyterLab with it:

Blank figures (1 in 3-5 loaded runs). anywidget (0.11) gives each model 2 s from its creation
in the page to import its ``_esm`` and run its ``initialize``: after that the model's ``ready``
promise is rejected and every later comm message to the model is dropped
(``AnyModel._handle_comm_msg`` awaits ``ready``). Evaluating 5 MB of plotly.js, once per figure,
takes longer than 2 s on a loaded 2-core machine, so the figure's data (sent by plotly.py as an
update right after the comm opens) and all its later updates never reached the page model; the
view still rendered, from the empty opening state: default axes, 360 px high, forever.

Frozen figures (seen once in CI, after the blank ones were fixed). Any model created while the
page's main thread is busy for 2 s (evaluating plotly.js for another figure, drawing, parsing a
big comm message) misses the same window, whatever its own module costs. A figure whose data
came in its opening message then draws that first state and never changes again.

Slow updates (13 s per k change at 512^2). After every ``restyle``/``update`` plotly's view
deep-merges ``_fullData`` with ``data`` for *every* trace (lodash ``mergeWith``, heatmap ``z``
included) and sends the differences back to the kernel as JSON (``_js2py_traceDeltas``); the
cost grows with the pixels of all heatmaps on the figure, whatever changed.

``LiveFigure`` fixes them at their cause:

- its ``_esm`` is a small loader (:data:`LOADER_JS`) whose ``initialize`` returns at once; comm
  messages that arrive while plotly.js loads are queued and replayed in order, the views render
  once it has loaded. plotly.js is evaluated once per page (cached on ``globalThis`` under a key
  naming the bundle's version) and sent once per kernel: it travels in one shared, view-less
  widget (:class:`PlotlyBundle`), which each figure names, not in every figure's state. (The
  loader reads it through the page's widget manager, which anywidget 0.9-0.11 hands to a
  module as ``model.widget_manager``; without one it asks the kernel for the text in a message
  to the figure.)
- if anywidget rejected the model anyway, the loader sees it (a no-op message handed to
  anywidget's handler is refused), takes over the comm's message handler from then on (the
  ipywidgets one, without anywidget's wait) and asks the kernel for the figure as it is now
  (:meth:`LiveFigure.resync`); its views redraw from that. To find its own page model the
  loader needs the comm id, so the kernel chooses it before opening the comm.
- the loader patches the view's trace-delta report to skip data arrays longer than
  :data:`DELTA_ARRAY_LIMIT` (the kernel keeps what it set; only plotly's defaults, such as
  colours and uids, come back).
- the comm opens with the figure's data and layout in its first message (plotly.py opens it
  empty and sends them in a second one); traces kept in the kernel (hidden ones that hold
  values for Python, :meth:`LiveFigure.keep_in_kernel`) open without their data arrays. The
  explorer's figure at 512^2 opens with 2.1 MB of state, where it took 7.7 MB plus the 5 MB
  bundle before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import uuid
from collections.abc import Iterable
from copy import deepcopy
from pathlib import Path
from typing import Any

import ipywidgets
import numpy as np
import plotly
import plotly.graph_objects as go
import traitlets
from ipywidgets import widget_serialization
from plotly.basedatatypes import Undefined

__all__ = ["DELTA_ARRAY_LIMIT", "LOADER_JS", "LiveFigure", "PlotlyBundle", "plotly_bundle"]

DELTA_ARRAY_LIMIT = 256
"""Data arrays longer than this are left out of the view's trace-delta report to the kernel."""

_BUNDLE_PATH = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


@functools.cache
def plotly_bundle() -> tuple[str, str]:
    """plotly's widget bundle (the JS text) and a key naming its version (read once).

    Examples
    --------
    >>> text, key = plotly_bundle()
    >>> len(text) > 100_000, key.startswith("plotly-")
    (True, True)
    """
    text = _BUNDLE_PATH.read_text(encoding="utf-8")
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    return text, f"plotly-{importlib.metadata.version('plotly')}-{digest}"


LOADER_JS = """
const CACHE = "__dsl_explore_plotly_widget__";
const LIMIT = @LIMIT@;
const PY2JS = ["_py2js_addTraces", "_py2js_deleteTraces", "_py2js_moveTraces",
  "_py2js_restyle", "_py2js_relayout", "_py2js_update", "_py2js_animate",
  "_py2js_removeLayoutProps", "_py2js_removeTraceProps"];
const REF = "IPY_MODEL_";
// a message that ipywidgets' handler ignores: handed to anywidget's, it settles with `ready`
const PROBE = {content: {data: {method: "dsl_explore_probe"}}, buffers: []};

function isBig(v) {
  if (v === null || typeof v !== "object") return false;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return v.length > LIMIT;
  return typeof v.bdata === "string";
}

function light(trace) {
  const out = {};
  for (const k in trace) if (!isBig(trace[k])) out[k] = trace[k];
  return out;
}

export function patch(mod) {
  const proto = mod.FigureView.prototype;
  const fullData = proto.getFullData;
  proto.getFullData = function () {
    const el = this.el;
    return fullData.call({el: {_fullData: (el._fullData || []).map(light),
                               data: (el.data || []).map(light)}});
  };
  return mod;
}

async function pageModel(model, ref) {
  if (ref && typeof ref === "object" && typeof ref.get === "function") return ref;
  if (typeof ref !== "string" || !ref) throw new Error("no model reference: " + ref);
  return model.widget_manager.get_model(ref.startsWith(REF) ? ref.slice(REF.length) : ref);
}

function askKernel(model) {
  return new Promise((resolve) => {
    const onMsg = (msg) => {
      if (!msg || msg.dsl_explore !== "bundle") return;
      model.off("msg:custom", onMsg);
      resolve(msg.text);
    };
    model.on("msg:custom", onMsg);
    model.send({dsl_explore: "bundle"});
  });
}

// plotly.js: from the kernel's bundle widget through the page's widget manager, or where the
// host does not hand that to the module, from the kernel in a message to this figure
async function bundleText(model) {
  if (model.widget_manager) {
    try {
      return (await pageModel(model, model.get("_plotly_bundle"))).get("text");
    } catch (err) {
      console.warn("[dsl_explore] no plotly bundle widget in the page, asking the kernel", err);
    }
  }
  return askKernel(model);
}

function plotlyModule(model) {
  const cache = (globalThis[CACHE] = globalThis[CACHE] || {});
  const key = model.get("_plotly_key");
  if (!cache[key]) {
    cache[key] = bundleText(model).then((text) => {
      const url = URL.createObjectURL(new Blob([text], {type: "text/javascript"}));
      return import(/* webpackIgnore: true */ url).then((mod) => {
        URL.revokeObjectURL(url);
        return patch(mod);
      });
    });
    cache[key].catch(() => { delete cache[key]; });
  }
  return cache[key];
}

// If anywidget rejected this model (not ready within its 2 s), its handler drops every comm
// message: hand the comm to ipywidgets' own handler and return true (messages may be lost).
export async function reopen(model) {
  const id = model.get("_dsl_model_id");
  if (!id || !model.widget_manager) return false;
  const real = await model.widget_manager.get_model(id);
  const gated = real._handle_comm_msg;
  let proto = Object.getPrototypeOf(real);
  while (proto && proto._handle_comm_msg === gated) proto = Object.getPrototypeOf(proto);
  if (!proto || !real.comm || typeof real.comm.on_msg !== "function") return false;
  const open = await Promise.resolve(gated.call(real, PROBE)).then(() => true, () => false);
  if (open) return false;
  const direct = proto._handle_comm_msg;
  real.comm.on_msg((msg) => direct.call(real, msg));
  return true;
}

export default () => {
  let inner = null;
  let proxy = null;
  let loaded = null;
  const views = new Set();   // {el, owner, cleanup}
  const draw = (view) => {
    view.owner = {};
    proxy._setOwner(view.owner);
    try { view.cleanup = inner.render({ el: view.el }); } finally { proxy._setOwner(null); }
  };
  const undraw = (view) => {
    proxy._dropOwner(view.owner);
    if (typeof view.cleanup === "function") view.cleanup();
    view.cleanup = null;
  };
  return {
    initialize({ model }) {
      const handlers = [];   // [event, callback, owner]
      const queue = [];      // py2js messages that came before plotly.js
      let override = null;   // the message being dispatched
      let owner = null;      // the view registering handlers
      const dispatch = (name, value) => {
        override = {[name]: value};
        try {
          for (const [ev, cb] of handlers.slice()) if (ev === "change:" + name) cb();
        } finally { override = null; }
      };
      for (const name of PY2JS) {
        model.on("change:" + name, () => {
          const value = model.get(name);
          if (value === null || value === undefined) return;
          if (inner === null) queue.push([name, value]); else dispatch(name, value);
        });
      }
      proxy = {
        get: (k) => (override !== null && k in override) ? override[k] : model.get(k),
        set: (k, v) => model.set(k, v),
        save_changes: () => model.save_changes(),
        send: (...a) => model.send(...a),
        on: (ev, cb) => {
          const name = ev.startsWith("change:") ? ev.slice(7) : null;
          if (name !== null && PY2JS.includes(name)) handlers.push([ev, cb, owner]);
          else model.on(ev, cb);
        },
        off: (ev, cb) => {
          for (let i = handlers.length - 1; i >= 0; i--)
            if (handlers[i][0] === ev && handlers[i][1] === cb) handlers.splice(i, 1);
          model.off(ev, cb);
        },
        _dropOwner: (o) => {
          for (let i = handlers.length - 1; i >= 0; i--)
            if (handlers[i][2] === o) handlers.splice(i, 1);
        },
        _setOwner: (o) => { owner = o; },
      };
      loaded = plotlyModule(model).then((mod) => {
        inner = mod.default();
        inner.initialize({ model: proxy });
        for (const [name, value] of queue.splice(0)) dispatch(name, value);
      });
      loaded.catch((err) => console.error("[dsl_explore] plotly widget failed to load", err));
      // the kernel's answer to a resync: the figure as it is now; redraw every view from it
      model.on("change:_dsl_resync", () => loaded.then(() => {
        for (const view of views) { undraw(view); view.el.replaceChildren(); draw(view); }
      }));
      // not awaited: anywidget's `ready` settles only after initialize has returned
      reopen(model).then((lost) => { if (lost) model.send({dsl_explore: "resync"}); })
        .catch((err) => console.error("[dsl_explore] figure comm check failed", err));
    },
    async render({ el }) {
      await loaded;
      const view = {el, owner: null, cleanup: null};
      draw(view);
      views.add(view);
      return () => { views.delete(view); undraw(view); };
    },
  };
};
""".replace("@LIMIT@", str(DELTA_ARRAY_LIMIT))
"""The ``_esm`` of :class:`LiveFigure` (see the module docstring)."""

def _is_array(value: Any) -> bool:
    """A data array as plotly holds it: a list, a numpy array or a typed-array spec (``bdata``)."""
    return isinstance(value, (list, tuple, np.ndarray)) or (
        isinstance(value, dict) and "bdata" in value)


class PlotlyBundle(ipywidgets.Widget):
    """plotly.js for the page, in a widget without a view: sent once per kernel, not per figure.

    Every :class:`LiveFigure` names the kernel's one instance (:meth:`shared`); the page loads the
    text from it the first time a figure needs plotly.js and caches the module under ``key``.

    Examples
    --------
    >>> b = PlotlyBundle.shared()
    >>> b is PlotlyBundle.shared(), b.key == plotly_bundle()[1], len(b.text) > 100_000
    (True, True, True)
    """

    text = traitlets.Unicode().tag(sync=True)
    key = traitlets.Unicode().tag(sync=True)

    @classmethod
    def shared(cls) -> PlotlyBundle:
        """The kernel's instance (a new one if there is none or it was closed)."""
        current = _SHARED.get("bundle")
        if current is None or current.comm is None:
            text, key = plotly_bundle()
            current = _SHARED["bundle"] = cls(text=text, key=key)
        return current


_SHARED: dict[str, PlotlyBundle] = {}
_BUNDLE_KEY = plotly_bundle()[1]


class LiveFigure(go.FigureWidget):
    """A ``plotly.graph_objects.FigureWidget`` for live views (see the module docstring).

    Built and used as a ``FigureWidget`` (it is one): ``LiveFigure(fig)``, ``batch_update``,
    ``fig.data[i].z = ...``. The front end loads plotly.js once per page, draws the data the
    figure was built with however long that takes, and applies every update in order.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> fig = LiveFigure(go.Figure(go.Scatter(y=[1, 2, 3])))
    >>> isinstance(fig, go.FigureWidget), len(fig.data), fig._widget_data[0]["type"]
    (True, 1, 'scatter')
    >>> len(fig._esm) < 10_000, fig._plotly_bundle is PlotlyBundle.shared()
    (True, True)
    >>> fig._dsl_model_id == fig.model_id
    True
    """

    _esm = LOADER_JS
    _plotly_bundle = traitlets.Instance(PlotlyBundle).tag(sync=True, **widget_serialization)
    _plotly_key = traitlets.Unicode(_BUNDLE_KEY).tag(sync=True)
    _dsl_model_id = traitlets.Unicode().tag(sync=True)
    _dsl_resync = traitlets.Integer(0).tag(sync=True)

    def __init__(self, *args: Any, kernel_only: Iterable[int] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_in_kernel(kernel_only)
        if self.kernel_only:  # plotly.py's _widget_data is a copy of all traces, arrays included
            self._widget_data = self._page_data()
        # plotly.py has now set _widget_data and _widget_layout: open the comm with them, under
        # an id chosen here and named in the state, by which the page's loader finds its model
        # (ipywidgets' ``Widget(model_id=...)`` stores it where ``open`` reads it; plotly's
        # constructor does not pass that keyword on)
        self._plotly_bundle = PlotlyBundle.shared()
        self._dsl_model_id = uuid.uuid4().hex
        self._model_id = self._dsl_model_id
        self._dsl_can_open = True
        self.open()
        self.on_msg(self._dsl_on_msg)

    def open(self) -> None:
        """Open the comm, once the figure's data is in the widget state (not earlier)."""
        if self.__dict__.get("_dsl_can_open"):
            super().open()

    def _dsl_on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        request = content.get("dsl_explore") if isinstance(content, dict) else None
        if request == "resync":
            self.resync()
        elif request == "bundle":  # a page without access to the bundle widget
            self.send({"dsl_explore": "bundle", "text": self._plotly_bundle.text})

    def resync(self) -> None:
        """Send the page the whole figure as the kernel holds it; the page's views redraw.

        The loader asks for this when anywidget dropped messages to the figure's page model
        (see the module docstring). Data, layout and plotly's edit counters go in one message,
        with ``_dsl_resync`` counted up, each sent even when it equals its last sent value.
        """
        with self.hold_sync():
            # through a value that cannot be the current one, so each is sent (traitlets sends
            # only changes, and the page may hold something else than what was last sent)
            self._widget_data = [{"_dsl_resync": None}]
            self._widget_layout = {"_dsl_resync": None}
            self._widget_data = self._page_data()
            self._widget_layout = deepcopy(self._layout)
            for name in ("_last_layout_edit_id", "_last_trace_edit_id"):
                value = getattr(self, name)
                setattr(self, name, -1)
                setattr(self, name, value)
            self._dsl_resync += 1

    @property
    def kernel_only(self) -> frozenset[int]:
        """Hidden traces whose updates stay in the kernel (see :meth:`keep_in_kernel`)."""
        return frozenset(self.__dict__.get("_dsl_kernel_only", ()))

    def _page_data(self) -> list[dict[str, Any]]:
        """The traces as the page gets them: kernel-only ones without their data arrays."""
        quiet = self.kernel_only
        return [{k: v for k, v in t.items() if not _is_array(v)} if i in quiet else deepcopy(t)
                for i, t in enumerate(self._data)]

    def keep_in_kernel(self, indices: Iterable[int]) -> None:
        """Keep later updates of these traces in the kernel: they are not sent to the page.

        For traces hidden in the page (``visible=False`` when the figure was built) that hold
        data for Python only, e.g. the values behind an image drawn in their place: plotly.js
        recomputes every trace on any trace update, so an update of such a trace would cost a
        full redraw for nothing. The page keeps the values they were built with; the traces
        must stay hidden. Named at construction (``LiveFigure(fig, kernel_only=...)``), their
        data arrays are not sent at all.

        Raises
        ------
        ValueError
            If an index is not that of a trace with ``visible=False``.
        """
        idx = {int(i) for i in indices}
        bad = [i for i in idx if not 0 <= i < len(self.data) or self.data[i].visible is not False]
        if bad:
            raise ValueError(f"indices must be those of traces with visible=False, got {bad}")
        self.__dict__["_dsl_kernel_only"] = set(self.kernel_only) | idx

    def _drop_kernel_only(self, restyle_data: Any, trace_indexes: Any) -> tuple[Any, Any]:
        quiet = self.kernel_only
        traces = self._normalize_trace_indexes(trace_indexes)
        if not quiet or not restyle_data or not quiet.intersection(traces):
            return restyle_data, trace_indexes
        keep = [j for j, t in enumerate(traces) if t not in quiet]
        out = {}
        for prop, values in restyle_data.items():
            if isinstance(values, list) and len(values) == len(traces):
                values = [values[j] for j in keep]
                if all(v is Undefined for v in values):  # set on kernel-only traces only
                    continue
            out[prop] = values
        if not keep or not out:
            return {}, []
        return out, [traces[j] for j in keep]

    def _send_restyle_msg(self, restyle_data: Any, trace_indexes: Any = None,
                          source_view_id: Any = None) -> None:
        restyle_data, trace_indexes = self._drop_kernel_only(restyle_data, trace_indexes)
        if trace_indexes == []:
            return
        super()._send_restyle_msg(restyle_data, trace_indexes, source_view_id)

    def _send_update_msg(self, restyle_data: Any, relayout_data: Any, trace_indexes: Any = None,
                         source_view_id: Any = None) -> None:
        restyle_data, trace_indexes = self._drop_kernel_only(restyle_data, trace_indexes)
        if trace_indexes == []:
            if relayout_data:
                self._send_relayout_msg(relayout_data, source_view_id)
            return
        super()._send_update_msg(restyle_data, relayout_data, trace_indexes, source_view_id)
