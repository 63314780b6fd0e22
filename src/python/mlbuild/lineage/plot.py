"""Metrics across a pipeline's runs, as a labelled PNG chart (matplotlib, Agg backend).

One panel per metric, runs left to right oldest first. Each run's x tick names it the way
`runs` does: record id, UTC time and git revision (`*`: uncommitted changes), so a point leads
to `inspect` and `diff`. Local runs are circles, SageMaker jobs squares; a run that did not
complete (Failed, Stopped, ...) is shaded red with its status in every panel, not dropped.

The PNG is byte-reproducible: a fixed size and DPI, matplotlib's default style (never the
user's matplotlibrc), no Software or time metadata. It carries the data it was drawn from
(JSON in the PNG text chunk `CHART_KEY`), so the picture leads back to its records.

NB: matplotlib is imported in `render` only. The CLI imports this module for every command,
and `inspect` or `runs` must not pay matplotlib's import (or its font cache on first use).
Its imports are marked `no-infer-dep`: the mlbuild tool that Pants rules run never plots, so
only the lineage CLI's PEX and the tests depend on matplotlib (see this folder's BUILD).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mlbuild.lineage.errors import PlatformError, UserError
from mlbuild.lineage.inspect import SHORT
from mlbuild.lineage.record import SUCCESS, Record

CHART_KEY = "mlbuild:chart"  # the PNG text chunk holding Chart.to_json()
DPI = 100  # NB: fixed, so width x height in pixels is the figure size in inches x 100.
MIN_WIDTH, PANEL_HEIGHT, FRAME_HEIGHT, MAX_PIXELS = 320, 110, 140, 4000
LABEL_WIDTH = 96  # pixels one three-line run label needs; more runs than fit are thinned
LINE_COLOR, NOT_COMPLETED_COLOR = "#1f77b4", "#d62728"
MARKERS = {"run": ("o", "local run (pants run)"), "publish": ("s", "SageMaker job (pants publish)")}
ANNOTATE_UP_TO = 12  # runs; with more, value labels would overlap


@dataclass(frozen=True)
class Run:
    """One record as the chart shows it; `values` follow `Chart.metrics` (None: not reported)."""

    record: str
    kind: str
    created: str
    revision: Optional[str]
    status: Optional[str]
    values: Tuple[Optional[float], ...]

    @property
    def completed(self) -> bool:
        return self.status in (None, SUCCESS)

    @property
    def label(self) -> str:
        when = self.created[:16].replace("T", " ")
        return f"{self.record[:SHORT]}\n{when}\n{self.revision or 'no revision'}"


@dataclass(frozen=True)
class Chart:
    title: str
    metrics: Tuple[str, ...]
    runs: Tuple[Run, ...]

    def to_json(self) -> Dict[str, Any]:
        return {
            "title": self.title,
            "metrics": list(self.metrics),
            "runs": [
                {
                    "record": r.record,
                    "kind": r.kind,
                    "created": r.created,
                    "revision": r.revision,
                    "status": r.status,
                    "label": r.label,
                    "values": dict(zip(self.metrics, r.values)),
                }
                for r in self.runs
            ],
        }


@dataclass(frozen=True)
class Rendered:
    """The PNG and every text drawn on it (title, axis labels, tick labels, notes, legend)."""

    png: bytes
    texts: Tuple[str, ...]
    y_ticks: Tuple[Tuple[str, ...], ...]  # each panel's y tick labels


def _value(value: Any) -> Optional[float]:
    """A finite number, else None (records keep a diverged metric as "nan"/"inf")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def value_format(values: Sequence[float]) -> str:
    """The fewest significant digits (4 to 12) that still tell the distinct values apart."""
    distinct = set(values)
    return next(
        (f"{{:.{d}g}}" for d in range(4, 12) if len({f"{v:.{d}g}" for v in distinct}) == len(distinct)), "{:.12g}"
    )


def _revision(record: Record) -> Optional[str]:
    revision = record.get("source.revision")
    return revision[:SHORT] + ("*" if record.get("source.dirty") else "") if revision else None


def chart(records: Sequence[Record], metrics: Sequence[str] = ()) -> Chart:
    """The runs (oldest first) and metrics to draw; every numeric metric when none are named."""
    if not records:
        raise UserError("no runs to plot. Fix: `./pants run <pipeline target>` records one; `runs` lists them.")
    seen = sorted({m for r in records for m, v in r.metrics.items() if _value(v) is not None})
    wanted = tuple(dict.fromkeys(metrics)) or tuple(seen)
    missing = [m for m in wanted if m not in seen]
    if missing or not wanted:
        raise UserError(
            f"no run reported a numeric metric {', '.join(map(repr, missing)) or '(any)'} ({len(records)} run(s); "
            f"metrics seen: {', '.join(seen) or 'none'}). Fix: --metric with one of those."
        )
    ordered = sorted(records, key=lambda r: (r.created, r.id))
    runs = tuple(
        Run(r.id, r.kind, r.created, _revision(r), r.status, tuple(_value(r.metrics.get(m)) for m in wanted))
        for r in ordered
    )
    pipelines = sorted({r.pipeline for r in records})
    span = ordered[0].created[:10] if len(ordered) == 1 else f"{ordered[0].created[:10]} to {ordered[-1].created[:10]}"
    title = f"{pipelines[0] if len(pipelines) == 1 else f'{len(pipelines)} pipelines'}: {len(runs)} run(s), {span}"
    return Chart(title, wanted, runs)


def default_size(c: Chart) -> Tuple[int, int]:
    """Wide enough to label up to 16 runs, and one panel height per metric."""
    width = min(max(640, 120 + LABEL_WIDTH * len(c.runs)), 120 + LABEL_WIDTH * 16)
    return width, FRAME_HEIGHT + 200 * len(c.metrics)


def _check_size(c: Chart, width: int, height: int) -> None:
    low_height = FRAME_HEIGHT + PANEL_HEIGHT * len(c.metrics)
    if not (MIN_WIDTH <= width <= MAX_PIXELS and low_height <= height <= MAX_PIXELS):
        raise UserError(
            f"a {width}x{height} plot of {len(c.metrics)} metric(s) does not fit. Fix: --width from {MIN_WIDTH} and "
            f"--height from {low_height} ({FRAME_HEIGHT} + {PANEL_HEIGHT} per metric), each at most {MAX_PIXELS}."
        )


def labelled(count: int, width: int) -> List[int]:
    """Which runs get a tick label: every k-th, counted back from the newest, as many as fit."""
    fit = max(1, (width - 120) // LABEL_WIDTH)
    step = -(-count // fit)
    return sorted(range(count - 1, -1, -step))


def _matplotlib():
    try:
        import matplotlib  # pants: no-infer-dep
        import matplotlib.style  # pants: no-infer-dep
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # pants: no-infer-dep
        from matplotlib.figure import Figure  # pants: no-infer-dep
    except ImportError as e:
        raise PlatformError(
            f"plot needs matplotlib, which this Python lacks ({e}). Fix: run it from the lineage PEX, "
            "`./pants mlbuild plot …` (3rdparty/python/default.lock has it)."
        ) from None
    return matplotlib, Figure, FigureCanvasAgg


def _panel(ax: Any, c: Chart, m: int, shown: Sequence[int]) -> None:
    """Metric `m`: completed runs joined by a line, runs that did not complete shaded."""
    from matplotlib.ticker import ScalarFormatter  # pants: no-infer-dep

    points = [(i, v) for i, r in enumerate(c.runs) if r.completed and (v := r.values[m]) is not None]
    ax.plot([i for i, _ in points], [v for _, v in points], color=LINE_COLOR, linewidth=1.2, zorder=2)
    for kind, (marker, _) in MARKERS.items():
        mine = [(i, v) for i, v in points if c.runs[i].kind == kind]
        ax.plot([i for i, _ in mine], [v for _, v in mine], linestyle="none", marker=marker, color=LINE_COLOR, zorder=3)
    for i, r in enumerate(c.runs):
        if not r.completed:
            ax.axvspan(i - 0.4, i + 0.4, color=NOT_COMPLETED_COLOR, alpha=0.15, linewidth=0, zorder=1)
            ax.text(
                i,
                0.5,
                f"{r.status} {r.record[:SHORT]}",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="center",
                color=NOT_COMPLETED_COLOR,
            )
            if r.values[m] is not None:
                ax.plot([i], [r.values[m]], linestyle="none", marker="X", color=NOT_COMPLETED_COLOR, zorder=3)
    if len(c.runs) <= ANNOTATE_UP_TO:
        fmt = value_format([v for _, v in points])
        for i, v in points:
            ax.annotate(fmt.format(v), (i, v), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7)
    ax.set_ylabel(c.metrics[m])
    # NB: plain numbers with as many digits as the ticks need to differ; an offset
    # ("1e-5+9.123e-1") is exact but nobody reads it.
    ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.margins(x=0.5 / len(c.runs), y=0.2)
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    ax.set_xticks(range(len(c.runs)), minor=True)
    ax.set_xticks(shown, [c.runs[i].label for i in shown])
    ax.tick_params(axis="x", which="both", labelsize=7)


def _legend(fig: Any, c: Chart) -> None:
    from matplotlib.lines import Line2D  # pants: no-infer-dep
    from matplotlib.patches import Patch  # pants: no-infer-dep

    kinds = {r.kind for r in c.runs}
    handles: List[Any] = [
        Line2D([], [], color=LINE_COLOR, marker=mk, linestyle="none", label=text)
        for k, (mk, text) in MARKERS.items()
        if k in kinds
    ]
    if not all(r.completed for r in c.runs):
        handles.append(Patch(color=NOT_COMPLETED_COLOR, alpha=0.3, label="did not complete (status shown)"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def render(c: Chart, width: int, height: int) -> Rendered:
    _check_size(c, width, height)
    matplotlib, Figure, FigureCanvasAgg = _matplotlib()
    # NB: the built-in defaults, not the user's matplotlibrc, so the same records give the same
    # bytes on every machine; the font is the DejaVu Sans matplotlib ships.
    with matplotlib.style.context("default"), matplotlib.rc_context({"font.family": "DejaVu Sans", "font.size": 8}):
        fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(c.metrics), 1, sharex=True, squeeze=False)[:, 0]
        fig.suptitle(c.title, fontsize=10)
        shown = labelled(len(c.runs), width)
        for m, ax in enumerate(axes):
            _panel(ax, c, m, shown)
        axes[-1].set_xlabel("run: record id / created (UTC) / git revision (* uncommitted changes)")
        _legend(fig, c)
        fig.canvas.draw()
        texts = [fig.get_suptitle()]
        for ax in axes:
            texts += [ax.get_ylabel(), ax.get_xlabel(), ax.yaxis.get_offset_text().get_text()]
            texts += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts)]
        texts += [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        y_ticks = tuple(tuple(t.get_text() for t in ax.get_yticklabels()) for ax in axes)
        out = io.BytesIO()
        # NB: metadata replaces matplotlib's "Software" (its version) and adds no time: the
        # chart's data is the only text, ASCII JSON with sorted keys.
        meta = {"Software": None, CHART_KEY: json.dumps(c.to_json(), sort_keys=True, separators=(",", ":"))}
        fig.savefig(out, format="png", dpi=DPI, metadata=meta)
    return Rendered(out.getvalue(), tuple(t for t in texts if t), y_ticks)


def plot_metrics(
    records: Sequence[Record], metrics: Sequence[str] = (), width: Optional[int] = None, height: Optional[int] = None
) -> bytes:
    """PNG bytes: one panel per metric (all numeric ones when `metrics` is empty)."""
    c = chart(records, metrics)
    auto_width, auto_height = default_size(c)
    return render(c, width or auto_width, height or auto_height).png


def plot_metric(records: Sequence[Record], metric: str, width: int = 640, height: int = 360) -> bytes:
    return plot_metrics(records, [metric], width, height)
