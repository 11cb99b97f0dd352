"""Atomic writes (dsl_explore.io): the bottom layer every file of the kit goes through."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import dsl_explore.io as dsl_io
from dsl_explore.export import atomic_write_bytes as export_bytes
from dsl_explore.io import atomic_write_bytes, atomic_write_json, atomic_write_text, jsonable


def test_atomic_write_helpers(tmp_path):
    out = atomic_write_bytes(tmp_path / "x" / "y" / "blob.bin", bytearray(b"abc"))
    assert out.read_bytes() == b"abc"
    assert atomic_write_bytes(str(out), memoryview(b"de")).read_bytes() == b"de"

    out.chmod(0o600)  # the mode of a replaced file is kept
    atomic_write_bytes(out, b"new")
    assert out.stat().st_mode & 0o777 == 0o600

    text = atomic_write_text(tmp_path / "h.json", "línea\n", encoding="utf-8")
    assert text.read_bytes() == "línea\n".encode()
    fresh_mode = text.stat().st_mode & 0o777
    assert fresh_mode == 0o666 & ~dsl_io._current_umask()

    with pytest.raises(TypeError, match="data"):
        atomic_write_bytes(tmp_path / "a.bin", "not bytes")
    with pytest.raises(TypeError, match="text"):
        atomic_write_text(tmp_path / "a.txt", b"bytes")
    with pytest.raises(TypeError, match="path"):
        atomic_write_bytes(3, b"")
    with pytest.raises(IsADirectoryError):
        atomic_write_bytes(tmp_path / "x", b"")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blob.bin", "h.json", "x", "y"]


def test_export_keeps_the_atomic_writers_importable():
    assert export_bytes is atomic_write_bytes


def test_atomic_write_json_and_jsonable(tmp_path):
    out = atomic_write_json(tmp_path / "d" / "m.json",
                            {"a": (1, math.nan), "b": np.float32(0.25), 3: np.arange(2)})
    assert out.read_text().endswith("\n")
    assert json.loads(out.read_text()) == {"a": [1, None], "b": 0.25, "3": [0, 1]}
    assert jsonable([np.int64(2), -math.inf]) == [2, None]
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["m.json"]
