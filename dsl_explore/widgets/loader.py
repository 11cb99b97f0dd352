"""``explore_files()``: load your own arrays from the notebook UI and explore them.

:class:`ArrayLoader` is a small form: for the reconstruction and the target, a path text box
and a file upload (``.npy``/``.npz``), an optional ``.npz`` key, and a Load button. Both are
read with :func:`dsl_explore.data.load_array` (``allow_pickle=False``; its checks apply: NaN,
bad headers, shapes). A bad file gives a one-line error in the widget, never a traceback. A
good pair replaces the explorer below the form (:func:`~dsl_explore.widgets.explore`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from dsl_explore.data import load_array
from dsl_explore.widgets._common import close_tree, guarded, set_status, status_html
from dsl_explore.widgets.explore import Explorer, explore

__all__ = ["SUFFIXES", "ArrayLoader", "explore_files"]

SUFFIXES = (".npy", ".npz")
"""File types the loader reads."""

_STYLE = {"description_width": "initial"}


class _Source:
    """One array's inputs: a path box, an upload button and an ``.npz`` key box."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.path = W.Text(placeholder="path/to/file.npy or .npz", description=role,
                           style=_STYLE, layout=W.Layout(width="420px"))
        self.upload = W.FileUpload(accept=",".join(SUFFIXES), multiple=False,
                                   description="or upload", layout=W.Layout(width="130px"))
        self.key = W.Text(placeholder="npz key (if several)", layout=W.Layout(width="170px"))
        self.row = W.HBox([self.path, self.upload, self.key])

    def load(self) -> np.ndarray:
        """The array, from the upload when there is one, else from the path."""
        key = self.key.value.strip() or None
        uploaded = list(self.upload.value)
        if uploaded:
            item = uploaded[-1]
            name = str(item.get("name", "upload"))
            suffix = Path(name).suffix.lower()
            if suffix not in SUFFIXES:
                raise ValueError(f"{self.role}: {name!r} is not a .npy or .npz file")
            data = bytes(item["content"])
            fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="dsl-explore-upload-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                return _load(tmp, key, shown=name)
            finally:
                os.unlink(tmp)
        text = self.path.value.strip()
        if not text:
            raise ValueError(f"{self.role}: give a path or upload a .npy/.npz file")
        path = Path(text).expanduser()
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{self.role}: {text!r} is not a .npy or .npz file")
        return _load(path, key, shown=text)


def _load(path: str | Path, key: str | None, *, shown: str) -> np.ndarray:
    try:
        return load_array(path, key=key if str(path).endswith(".npz") else None)
    except FileNotFoundError:
        raise ValueError(f"{shown}: no such file") from None
    except (ValueError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = first.replace(str(path), shown).replace("pass key= to pick",
                                                      "type in the npz key box")
        raise ValueError(msg if shown in msg else f"{shown}: {msg}") from None


class ArrayLoader:
    """Load a reconstruction and a target from files (a path or an upload) and explore them.

    Parameters
    ----------
    on_load : callable, optional
        Called as ``on_load(x, y)`` with the two ``(N, C, *spatial)`` float32 arrays; the
        default shows ``explore(x, y, **explore_kwargs)`` below the form.
    **explore_kwargs
        Passed to :func:`~dsl_explore.widgets.explore` by the default ``on_load``.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The form, its status line and the explorer area.
    recon, target : the two inputs (``.path``, ``.upload``, ``.key``)
    button : ipywidgets.Button
    status : ipywidgets.HTML
        One line: what was loaded, or why not (class ``dsl-status``).
    explorer : Explorer or None
        The explorer of the last good pair.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> np.save(tmp / "y.npy", rng.random((16, 16))); np.save(tmp / "x.npy", rng.random((16, 16)))
    >>> loader = ArrayLoader()
    >>> loader.recon.path.value, loader.target.path.value = str(tmp / "x.npy"), str(tmp / "y.npy")
    >>> loader.button.click()
    >>> loader.explorer.state()["count"] > 0, "loaded" in loader.status.value
    (True, True)
    >>> (tmp / "bad.npy").write_bytes(b"not numpy")
    9
    >>> loader.recon.path.value = str(tmp / "bad.npy")
    >>> loader.button.click()
    >>> "bad.npy" in loader.status.value and 'data-level="error"' in loader.status.value
    True
    """

    def __init__(self, on_load: Callable[[np.ndarray, np.ndarray], Any] | None = None,
                 **explore_kwargs: Any) -> None:
        self.recon = _Source("reconstruction")
        self.target = _Source("target")
        self.button = W.Button(description="Load", icon="upload",
                               tooltip="read both arrays and explore them")
        self.status = status_html()
        self.area = W.VBox([])
        self.explorer: Explorer | None = None
        self.last_error: Exception | None = None
        self._on_load = on_load
        self._explore_kwargs = explore_kwargs
        self.button.on_click(lambda _b: self.load())
        self.widget = W.VBox([self.recon.row, self.target.row,
                              W.HBox([self.button, self.status]), self.area])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @guarded(lambda self: self.status)
    def load(self) -> bool:
        """Read both inputs; on success call ``on_load`` (or explore them). Returns whether it
        worked; the reason of a failure is one line in :attr:`status`."""
        try:
            x = self.recon.load()
            y = self.target.load()
            if x.shape != y.shape:
                raise ValueError(f"the arrays differ in shape: reconstruction {x.shape}, "
                                 f"target {y.shape}")
        except ValueError as exc:
            self.last_error = exc
            set_status(self.status, str(exc), level="error")
            return False
        self.last_error = None
        if self._on_load is not None:
            self._on_load(x, y)
        else:
            if self.explorer is not None:
                self.explorer.close()
            self.explorer = explore(x, y, **self._explore_kwargs)
            self.area.children = (self.explorer.widget,)
        set_status(self.status, f"loaded {x.shape[0]} sample(s) of shape {x.shape[2:]}",
                   level="ok")
        return True

    def close(self) -> None:
        """Close the form and the explorer."""
        if self.explorer is not None:
            self.explorer.close()
        close_tree(self.widget)


def explore_files(**explore_kwargs: Any) -> ArrayLoader:
    """A form to load a reconstruction and a target (path or upload, ``.npy``/``.npz``) and
    explore them; ``explore_kwargs`` go to :func:`~dsl_explore.widgets.explore`.

    Examples
    --------
    >>> explore_files(k=100.0).button.description
    'Load'
    """
    return ArrayLoader(**explore_kwargs)
