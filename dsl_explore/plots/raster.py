"""2D maps as PNG images, coloured in the kernel: what the explorer draws instead of heatmaps.

plotly.js redraws a heatmap by filling a canvas pixel by pixel and encoding it as PNG in the
page, for every heatmap of a figure on every data update. A map sent as a ready PNG
(``layout.images[i].source``, a ``data:`` URL) is only decoded by the browser, and changing it
redraws that image alone. :func:`colour_lut` turns a plotly colour scale into a lookup table,
:func:`colour_index` / :func:`colourise` apply it to an array with numpy, :func:`png_data_url`
encodes indexed or RGB pixels as a PNG ``data:`` URL (Pillow's encoder).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LUT_SIZE", "colour_index", "colour_lut", "colourise", "png_bytes", "png_data_url",
           "stamp", "upscale"]

LUT_SIZE = 256
"""Entries of a colour lookup table (the colour resolution of an image)."""


def _rgb(colour: str) -> tuple[float, float, float]:
    c = colour.strip()
    if c.startswith("#") and len(c) == 7:
        return float(int(c[1:3], 16)), float(int(c[3:5], 16)), float(int(c[5:7], 16))
    if c.startswith("rgb(") and c.endswith(")"):
        r, g, b = (float(v) for v in c[4:-1].split(","))
        return r, g, b
    raise ValueError(f"colour must be '#rrggbb' or 'rgb(r, g, b)', got {colour!r}")


def colour_lut(colorscale: Sequence[Sequence[Any]], n: int = LUT_SIZE) -> np.ndarray:
    """A ``(n, 3)`` uint8 lookup table interpolating a plotly colour scale linearly in RGB.

    Parameters
    ----------
    colorscale : sequence of (position, colour)
        Positions from 0 to 1, increasing; colours ``"#rrggbb"`` or ``"rgb(r, g, b)"``.
    n : int
        Entries (>= 2).

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` uint8; entry ``i`` is the colour at position ``i / (n - 1)``.

    Raises
    ------
    ValueError
        If ``n`` < 2 or a colour is not in one of the two forms.

    Examples
    --------
    >>> colour_lut([[0.0, "#000000"], [1.0, "rgb(255, 255, 255)"]], 3).tolist()
    [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n!r}")
    pos = np.array([float(p) for p, _ in colorscale])
    rgb = np.array([_rgb(str(c)) for _, c in colorscale])
    t = np.linspace(0.0, 1.0, n)
    out = np.stack([np.interp(t, pos, rgb[:, j]) for j in range(3)], axis=1)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def colour_index(z: np.ndarray, n: int, *, cmin: float, cmax: float) -> np.ndarray:
    """Indices into an ``n``-entry lookup table of ``z`` (uint8, so ``n <= 256``),
    ``[cmin, cmax]`` spanning the table.

    Values outside the range take the end entries; NaN takes the first one (so does every
    value when ``cmax <= cmin``).

    Examples
    --------
    >>> colour_index(np.array([[-1.0, 0.0, 0.5, 1.0, np.nan]]), 3, cmin=0.0, cmax=1.0).tolist()
    [[0, 0, 1, 2, 0]]
    """
    if not 2 <= n <= 256:
        raise ValueError(f"n must be in 2..256, got {n!r}")
    span = float(cmax) - float(cmin)
    zf = np.asarray(z, dtype=np.float32)
    if span <= 0:
        return np.zeros(zf.shape, dtype=np.uint8)
    scaled = (zf - np.float32(cmin)) * np.float32((n - 1) / span) + np.float32(0.5)
    np.nan_to_num(scaled, copy=False, nan=0.0, posinf=n - 1, neginf=0.0)
    np.clip(scaled, 0, n - 1, out=scaled)
    return scaled.astype(np.uint8)


def colourise(z: np.ndarray, lut: np.ndarray, *, cmin: float, cmax: float) -> np.ndarray:
    """RGB pixels of ``z`` through ``lut`` (from :func:`colour_lut`), ``[cmin, cmax]`` spanning it.

    ``lut[colour_index(z, len(lut), cmin=cmin, cmax=cmax)]`` (see :func:`colour_index`).

    Parameters
    ----------
    z : numpy.ndarray
        ``(rows, cols)`` values.
    lut : numpy.ndarray
        ``(n, 3)`` uint8, ``n <= 256``.
    cmin, cmax : float
        The values of the first and last entry.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 3)`` uint8.

    Examples
    --------
    >>> lut = colour_lut([[0.0, "#000000"], [1.0, "#FFFFFF"]])
    >>> colourise(np.array([[0.0, 0.5, 2.0]]), lut, cmin=0.0, cmax=1.0)[0, :, 0].tolist()
    [0, 128, 255]
    """
    return lut[colour_index(z, lut.shape[0], cmin=cmin, cmax=cmax)]


def png_bytes(pixels: np.ndarray, *, palette: np.ndarray | None = None,
              level: int = 1) -> bytes:
    """A PNG file (encoded by Pillow): 8-bit RGB from ``(rows, cols, 3)`` uint8 pixels, or
    8-bit indexed colour from ``(rows, cols)`` uint8 indices into ``palette`` (``(n, 3)``
    uint8, ``n <= 256``), at zlib ``level``. Indexed images are a third the size and quicker
    to encode.

    Raises
    ------
    ValueError
        If the shapes do not match one of the two forms.

    Examples
    --------
    >>> data = png_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    >>> import struct
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n", struct.unpack(">II", data[16:24])
    (True, (3, 2))
    >>> lut = np.array([[0, 0, 0], [255, 0, 0]], dtype=np.uint8)
    >>> png_bytes(np.ones((2, 3), dtype=np.uint8), palette=lut)[25]  # IHDR colour type
    3
    """
    from PIL import Image

    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    indexed = palette is not None
    want = 2 if indexed else 3
    if a.ndim != want or a.shape[0] < 1 or a.shape[1] < 1 or (not indexed and a.shape[2] != 3):
        form = "(rows, cols) with a palette" if indexed else "(rows, cols, 3)"
        raise ValueError(f"pixels must be a non-empty {form} array, got shape {a.shape}")
    if palette is not None:
        pal = np.ascontiguousarray(palette, dtype=np.uint8)
        if pal.ndim != 2 or pal.shape[1] != 3 or not 1 <= pal.shape[0] <= 256:
            raise ValueError(f"palette must be (n <= 256, 3), got shape {pal.shape}")
        img = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
        img.putpalette(pal.tobytes(), rawmode="RGB")
    else:
        img = Image.frombytes("RGB", (a.shape[1], a.shape[0]), a.tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def png_data_url(pixels: np.ndarray, *, palette: np.ndarray | None = None) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes` (what ``layout.images`` take).

    Examples
    --------
    >>> png_data_url(np.zeros((1, 1, 3), dtype=np.uint8))[:22]
    'data:image/png;base64,'
    """
    return "data:image/png;base64," + base64.b64encode(
        png_bytes(pixels, palette=palette)).decode("ascii")


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel (of a ``(rows, cols, ...)`` array) as a ``factor x factor`` block (nearest
    neighbour): crisp pixels when the browser stretches a small image over a large panel.

    Examples
    --------
    >>> upscale(np.arange(2, dtype=np.uint8).reshape(1, 2, 1), 2)[..., 0].tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    if factor <= 1:
        return rgb
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def stamp(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray, colour: str, *,
          half: int) -> None:
    """Paint ``(2 half + 1)``-pixel squares of ``colour`` centred on ``(rows, cols)``, in place
    (a dark 1-pixel outline when ``half >= 2``); squares are clipped at the edges, ``half=0``
    paints single pixels.

    Examples
    --------
    >>> img = np.zeros((3, 3, 3), dtype=np.uint8)
    >>> stamp(img, np.array([0]), np.array([0]), "#FF0000", half=1)
    >>> img[..., 0].tolist()
    [[255, 255, 0], [255, 255, 0], [0, 0, 0]]
    """
    h, w = rgb.shape[:2]
    r0, c0 = np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
    if r0.size == 0:
        return
    fill = np.array(_rgb(colour), dtype=np.uint8)
    edge = np.array((26, 26, 26), dtype=np.uint8)
    for dr in range(-half, half + 1):
        for dc in range(-half, half + 1):
            r, c = r0 + dr, c0 + dc
            ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            border = half >= 2 and max(abs(dr), abs(dc)) == half
            rgb[r[ok], c[ok]] = edge if border else fill
