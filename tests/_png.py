"""PNG decoding for the tests (Pillow), from bytes or a ``data:image/png;base64,`` URL."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def read_png(data: bytes | str) -> np.ndarray:
    """``(rows, cols, 3)`` uint8 pixels of a PNG file or ``data:image/png;base64,`` URL."""
    if isinstance(data, str):
        head = "data:image/png;base64,"
        assert data.startswith(head), data[:40]
        data = base64.b64decode(data[len(head):])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))
