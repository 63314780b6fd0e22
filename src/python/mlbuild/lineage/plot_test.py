from __future__ import annotations

import io
import struct
import zlib

import pytest

from mlbuild.lineage import plot, png
from mlbuild.lineage.errors import UserError
from mlbuild.lineage.testing import package, run


def _decode(data: bytes):
    chunks = list(png.read_chunks(data))  # checks signature, lengths and CRCs
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    stride = 1 + 3 * width
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type 0 on every row
    return width, height, lambda x, y: tuple(raw[y * stride + 1 + 3 * x : y * stride + 4 + 3 * x])


def _records():
    pkg = package()
    return [run(pkg, f"2024-05-0{i + 1}T00:00:00Z", {"accuracy": v}) for i, v in enumerate([0.8, 0.9, 0.85, 0.95])] + [
        run(pkg, "2024-05-09T00:00:00Z", {"loss": 1.0})
    ]


def test_metric_plot_is_a_valid_png(tmp_path) -> None:
    data = plot.plot_metric(_records(), "accuracy", 320, 200)
    width, height, pixel = _decode(data)
    assert (width, height) == (320, 200)
    # first point: lowest value, at the left edge of the plot area, bottom row
    assert pixel(plot.LEFT, height - plot.BOTTOM) == plot.POINT
    # last point: highest value, right edge, top row
    assert pixel(width - plot.RIGHT, plot.TOP) == plot.POINT
    assert pixel(plot.LEFT, plot.TOP + 40) == plot.AXIS
    assert data == plot.plot_metric(_records(), "accuracy", 320, 200)  # deterministic


def test_a_single_or_flat_series_still_plots() -> None:
    _decode(plot.plot_values([1.0]))
    _decode(plot.plot_values([0.0, 0.0, 0.0]))


def test_a_corrupt_png_is_caught() -> None:
    data = bytearray(plot.plot_values([1.0, 2.0], 64 + 40, 60))
    data[20] ^= 1  # inside IHDR
    with pytest.raises(ValueError, match="CRC"):
        list(png.read_chunks(bytes(data)))


def test_unknown_metric_lists_the_ones_seen() -> None:
    with pytest.raises(UserError, match="metrics seen: accuracy, loss"):
        plot.plot_metric(_records(), "f1")


@pytest.mark.parametrize("x0, y0, x1, y1", [(0, 0, 9, 3), (9, 3, 0, 0), (2, 0, 3, 9), (0, 9, 9, 0), (4, 4, 4, 4)])
def test_bresenham_connects_both_ends(x0, y0, x1, y1) -> None:
    canvas = png.Canvas(10, 10)
    canvas.line(x0, y0, x1, y1, (0, 0, 0))
    inked = {(x, y) for x in range(10) for y in range(10) if canvas.get(x, y) == (0, 0, 0)}
    assert (x0, y0) in inked and (x1, y1) in inked
    assert len(inked) == max(abs(x1 - x0), abs(y1 - y0)) + 1


def test_pillow_can_open_it_when_installed() -> None:
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.open(io.BytesIO(plot.plot_metric(_records(), "accuracy", 320, 200)))
    image.load()
    assert image.size == (320, 200) and image.mode == "RGB"
