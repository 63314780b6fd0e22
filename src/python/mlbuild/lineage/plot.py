"""One metric across a pipeline's runs, as a PNG line plot (no matplotlib).

Runs are evenly spaced left to right in time order; the y axis spans the metric's range
with its bounds and three ticks between them labelled in a 3x5 pixel digit font.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from mlbuild.lineage.errors import UserError
from mlbuild.lineage.png import Canvas, Color
from mlbuild.lineage.record import Record

AXIS: Color = (0, 0, 0)
GRID: Color = (225, 225, 225)
LINE: Color = (31, 119, 180)
POINT: Color = (214, 39, 40)
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 24
Y_TICKS = 5

# NB: enough of a font for tick labels like "-1.5e-03"; each row is 3 pixels, "#" = ink.
GLYPHS: Dict[str, Tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    ".": ("...", "...", "...", "...", ".#."),
    "-": ("...", "...", "###", "...", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."),
    "e": ("...", "###", "#.#", "##.", "###"),
}


def draw_text(canvas: Canvas, x: int, y: int, text: str, color: Color = AXIS, scale: int = 1) -> int:
    """Draw `text` with its top-left at (x, y); returns the width drawn. Unknown characters are skipped."""
    start = x
    for ch in text:
        glyph = GLYPHS.get(ch)
        if glyph is None:
            continue
        for row, bits in enumerate(glyph):
            for col, bit in enumerate(bits):
                if bit == "#":
                    for dy in range(scale):
                        for dx in range(scale):
                            canvas.set(x + col * scale + dx, y + row * scale + dy, color)
        x += 4 * scale
    return x - start


def text_width(text: str, scale: int = 1) -> int:
    return sum(4 * scale for ch in text if ch in GLYPHS)


def series(records: Sequence[Record], metric: str) -> List[float]:
    """The metric's numeric values in record order; runs without it (or NaN) are skipped."""
    values = []
    for r in records:
        v = r.metrics.get(metric)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values.append(float(v))
    return values


def plot_values(values: Sequence[float], width: int = 640, height: int = 360) -> bytes:
    if not values:
        raise UserError("nothing to plot: no values.")
    if width < LEFT + RIGHT + 16 or height < TOP + BOTTOM + 16:
        raise UserError(f"a {width}x{height} plot is too small; use at least {LEFT + RIGHT + 16}x{TOP + BOTTOM + 16}.")
    canvas = Canvas(width, height)
    x0, x1, y0, y1 = LEFT, width - RIGHT, TOP, height - BOTTOM  # y0 is the top edge
    low, high = min(values), max(values)
    if low == high:  # NB: a flat series still needs a non-empty range to map onto.
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad

    def ypix(v: float) -> int:
        return round(y1 - (v - low) / (high - low) * (y1 - y0))

    def xpix(i: int) -> int:
        return (x0 + x1) // 2 if len(values) == 1 else round(x0 + i * (x1 - x0) / (len(values) - 1))

    for t in range(Y_TICKS):
        v = low + (high - low) * t / (Y_TICKS - 1)
        y = ypix(v)
        canvas.line(x0 + 1, y, x1, y, GRID)
        canvas.line(x0 - 4, y, x0, y, AXIS)
        label = f"{v:.3g}"
        draw_text(canvas, x0 - 7 - text_width(label), y - 2, label)
    canvas.line(x0, y0, x0, y1, AXIS)
    canvas.line(x0, y1, x1, y1, AXIS)
    points = [(xpix(i), ypix(v)) for i, v in enumerate(values)]
    for x, _ in points:
        canvas.line(x, y1, x, y1 + 4, AXIS)
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        canvas.line(ax, ay, bx, by, LINE)
    for x, y in points:
        canvas.square(x, y, 2, POINT)
    return canvas.png()


def plot_metric(records: Sequence[Record], metric: str, width: int = 640, height: int = 360) -> bytes:
    values = series(records, metric)
    if not values:
        seen = sorted({m for r in records for m in r.metrics})
        raise UserError(
            f"no run reported a numeric metric {metric!r} ({len(records)} run(s); metrics seen: {', '.join(seen) or 'none'})."
        )
    return plot_values(values, width, height)
