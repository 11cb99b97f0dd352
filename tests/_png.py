"""A minimal PNG reader for the tests: 8-bit RGB or indexed, filter 0 rows (what
plots.raster writes)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def read_png(data: bytes | str) -> np.ndarray:
    """``(rows, cols, 3)`` uint8 pixels of a PNG file or ``data:image/png;base64,`` URL."""
    if isinstance(data, str):
        head = "data:image/png;base64,"
        assert data.startswith(head), data[:40]
        data = base64.b64decode(data[len(head):])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size, palette = 8, b"", (0, 0), None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        if kind == b"IHDR":
            cols, rows, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 3)
            size = (rows, cols)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(size[0], -1)
    assert (raw[:, 0] == 0).all()  # filter "None" on every row
    if palette is not None:  # indexed colour
        return palette[raw[:, 1:]]
    return raw[:, 1:].reshape(size[0], size[1], 3)
