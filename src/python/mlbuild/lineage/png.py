"""A minimal PNG writer: 8-bit RGB, no interlace, filter 0 on every row.

NB: matplotlib and Pillow are not in the lockfile; a plot needs only this much of
the format (https://www.w3.org/TR/png/): signature, IHDR, one IDAT, IEND.
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterator, Tuple

SIGNATURE = b"\x89PNG\r\n\x1a\n"
Color = Tuple[int, int, int]


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_rgb(width: int, height: int, pixels: bytes) -> bytes:
    """`pixels` is `height` rows of `width` RGB triples, top row first."""
    if width <= 0 or height <= 0 or len(pixels) != width * height * 3:
        raise ValueError(f"expected {width}x{height}x3 = {width * height * 3} bytes, got {len(pixels)}")
    stride = width * 3
    raw = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, truecolour, deflate, filter 0, no interlace
    # NB: level 9 and no timestamps (no tIME chunk): the same plot gives the same bytes.
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def read_chunks(data: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """(type, data) of each chunk; raises ValueError on a bad signature, length or CRC."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG: bad signature")
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"truncated chunk at byte {pos}")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if len(body) != length or zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"chunk {kind!r} at byte {pos}: bad length or CRC")
        yield kind, body
        pos += 12 + length


class Canvas:
    """An RGB raster with the few drawing operations a line plot needs."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def get(self, x: int, y: int) -> Color:
        i = (y * self.width + x) * 3
        return (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Bresenham's line, all octants."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.set(x0, y0, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def square(self, x: int, y: int, radius: int, color: Color) -> None:
        for yy in range(y - radius, y + radius + 1):
            for xx in range(x - radius, x + radius + 1):
                self.set(xx, yy, color)

    def png(self) -> bytes:
        return encode_rgb(self.width, self.height, bytes(self.pixels))
