"""explore_files / ArrayLoader: your own arrays from a path or an upload, errors as one line."""

from __future__ import annotations

import datetime
import html
import io
import re

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from dsl_explore.counting import sign_mismatch_count
from dsl_explore.widgets import ArrayLoader, explore_files


def _plain(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", value))


def _pair(shape=(20, 20), seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(shape).astype(np.float32)
    return (y + 0.2 * rng.standard_normal(shape)).astype(np.float32), y


def _upload(name: str, data: bytes) -> tuple[dict, ...]:
    return ({"name": name, "type": "application/octet-stream", "size": len(data),
             "content": memoryview(data),
             "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)


def test_paths_load_and_explore(tmp_path):
    x, y = _pair()
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "y.npz", target=y)
    loader = explore_files(k=50.0)
    loader.recon.path.value = str(tmp_path / "x.npy")
    loader.target.path.value = str(tmp_path / "y.npz")
    loader.button.click()
    assert loader.explorer is not None, loader.status.value
    st = loader.explorer.state()
    assert st["k"] == pytest.approx(50.0)
    # load_array min-max normalises each sample; the count is invariant to that
    assert st["count"] == int(sign_mismatch_count(x, y, dims=(0, 1)))
    assert loader.area.children == (loader.explorer.widget,)
    assert "loaded 1 sample(s) of shape (20, 20)" in _plain(loader.status.value)


def test_uploads_load_and_replace_the_explorer(tmp_path):
    x, y = _pair(seed=1)
    bx, by = io.BytesIO(), io.BytesIO()
    np.save(bx, x)
    np.savez(by, a=y, b=y)  # two arrays: the key is needed
    loader = ArrayLoader()
    loader.recon.upload.value = _upload("recon.npy", bx.getvalue())
    loader.target.upload.value = _upload("target.npz", by.getvalue())
    loader.button.click()
    msg = _plain(loader.status.value)
    assert loader.explorer is None and "target.npz" in msg and "'a'" in msg, msg
    assert "\n" not in msg and "<br>" not in loader.status.value  # one line
    loader.target.key.value = "b"
    loader.button.click()
    first = loader.explorer
    assert first is not None and loader.last_error is None, loader.status.value
    loader.button.click()  # a second load replaces the explorer
    assert loader.explorer is not first and len(loader.area.children) == 1


@pytest.mark.parametrize("content,name,expect", [
    (b"not numpy at all", "bad.npy", "bad.npy"),
    (None, "missing.npy", "no such file"),
    (b"", "notes.txt", "not a .npy or .npz file"),
])
def test_bad_files_give_one_line_in_the_widget(tmp_path, content, name, expect):
    x, _ = _pair()
    np.save(tmp_path / "ok.npy", x)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    loader = ArrayLoader()
    loader.recon.path.value = str(tmp_path / name)
    loader.target.path.value = str(tmp_path / "ok.npy")
    assert loader.load() is False
    msg = _plain(loader.status.value)
    assert expect in msg and "Traceback" not in msg and "<br>" not in loader.status.value, msg
    assert 'data-level="error"' in loader.status.value and loader.explorer is None


def test_shape_mismatch_and_nothing_given(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((8, 8)))
    np.save(tmp_path / "b.npy", np.random.default_rng(0).random((9, 8)))
    loader = ArrayLoader()
    assert loader.load() is False and "give a path or upload" in _plain(loader.status.value)
    loader.recon.path.value = str(tmp_path / "a.npy")
    loader.target.path.value = str(tmp_path / "b.npy")
    assert loader.load() is False and "differ in shape" in _plain(loader.status.value)
