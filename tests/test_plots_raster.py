"""plots.raster: colour lookup, colouring, PNG encoding and marker stamps."""

from __future__ import annotations

import numpy as np
import pytest

from dsl_explore.plots import style
from dsl_explore.plots.raster import (
    colour_index,
    colour_lut,
    colourise,
    png_bytes,
    png_data_url,
    stamp,
    upscale,
)
from tests._png import read_png


def test_lut_hits_the_colour_scale_stops():
    lut = colour_lut(style.MAP_COLORSCALE)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].tolist() == [255, 255, 255]
    assert lut[-1].tolist() == [0x5C, 0x20, 0x00]
    assert colour_lut([[0, "rgb(0, 10, 20)"], [1, "#0A141E"]], 2).tolist() == [
        [0, 10, 20], [10, 20, 30]]
    with pytest.raises(ValueError, match="colour"):
        colour_lut([[0, "red"], [1, "blue"]])
    with pytest.raises(ValueError, match="n must"):
        colour_lut(style.MAP_COLORSCALE, 1)


def test_colourise_range_clips_and_nan():
    lut = colour_lut([[0.0, "#000000"], [1.0, "#FFFFFF"]])
    z = np.array([[-1.0, 0.0, 0.25, 1.0, 3.0, np.nan]])
    got = colourise(z, lut, cmin=0.0, cmax=1.0)[0, :, 0].tolist()
    assert got == [0, 0, 64, 255, 255, 0]
    assert colourise(z, lut, cmin=1.0, cmax=1.0).max() == 0  # empty range: first colour
    assert colour_index(z, 256, cmin=0.0, cmax=1.0).tolist() == [[0, 0, 64, 255, 255, 0]]
    with pytest.raises(ValueError, match="n must"):
        colour_index(z, 257, cmin=0.0, cmax=1.0)


def test_png_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_png(png_bytes(rgb)), rgb)
    np.testing.assert_array_equal(read_png(png_data_url(rgb)), rgb)
    with pytest.raises(ValueError, match="pixels must"):
        png_bytes(np.zeros((0, 3, 3), dtype=np.uint8))
    lut = colour_lut(style.MAP_COLORSCALE)
    idx = rng.integers(0, 256, size=(4, 6), dtype=np.uint8)
    np.testing.assert_array_equal(read_png(png_data_url(idx, palette=lut)), lut[idx])
    with pytest.raises(ValueError, match="pixels must"):
        png_bytes(rgb, palette=lut)
    with pytest.raises(ValueError, match="palette must"):
        png_bytes(idx, palette=np.zeros((300, 3), dtype=np.uint8))


def test_upscale_and_stamp_with_outline_and_clipping():
    img = upscale(np.zeros((2, 2, 3), dtype=np.uint8), 3)
    assert img.shape == (6, 6, 3)
    stamp(img, np.array([0, 5]), np.array([0, 5]), "#FF0000", half=2)
    red = (img == [255, 0, 0]).all(axis=2)
    dark = (img == [26, 26, 26]).all(axis=2)
    # centre 3x3 of each 5x5 square is red, the ring dark; both squares clipped at the edges
    assert red[:2, :2].all() and red[4:, 4:].all() and red.sum() == 8
    assert dark[2, :3].all() and dark[:3, 2].all() and dark[3, 3:].all()
    single = np.zeros((3, 3, 3), dtype=np.uint8)
    stamp(single, np.array([1]), np.array([1]), "#00FF00", half=0)
    assert (single[..., 1] > 0).sum() == 1
