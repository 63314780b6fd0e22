from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
from typing import List

import pytest
from PIL import Image, PngImagePlugin

from mlbuild.lineage import cli, plot
from mlbuild.lineage.errors import PlatformError, UserError
from mlbuild.lineage.record import Record
from mlbuild.lineage.testing import package, publish, run

WHITE = (255, 255, 255)
LINE = (0x1F, 0x77, 0xB4)


def _records() -> List[Record]:
    pkg = package()
    runs = [
        run(pkg, f"2024-05-0{i + 1}T10:00:00Z", {"accuracy": v, "loss": 1 - v})
        for i, v in enumerate([0.8, 0.9, 0.85, 0.95])
    ]
    failed = run(pkg, "2024-05-06T10:00:00Z", {}, status="Failed")
    return [*runs, failed, publish(pkg, runs[-1], "2024-05-07T12:00:00Z")]


def _open(data: bytes) -> PngImagePlugin.PngImageFile:
    image = Image.open(io.BytesIO(data))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    image.load()  # NB: decodes every row: a truncated or corrupt PNG raises here
    return image


def _pixels(image: Image.Image):
    data = image.convert("RGB").tobytes()
    return [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()  # NB: pytest's diff of two large byte strings takes minutes


def _reddish(image: Image.Image) -> int:
    return sum(1 for r, g, b in _pixels(image) if r - g > 20 and r - b > 20)


def test_the_png_shows_labelled_runs_and_metrics() -> None:
    records = _records()
    c = plot.chart(records, ["accuracy", "loss"])
    rendered = plot.render(c, 800, 600)
    image = _open(rendered.png)
    assert image.format == "PNG" and image.size == (800, 600)
    pixels = _pixels(image)
    assert sum(p != WHITE for p in pixels) > 0.05 * len(pixels)  # not blank
    assert pixels.count(LINE) > 200  # the metric lines and markers are drawn

    # The data it was drawn from travels in the PNG: every record, oldest first, with its label.
    assert set(image.text) == {plot.CHART_KEY}  # no Software version, no creation time
    data = json.loads(image.text[plot.CHART_KEY])
    assert [r["record"] for r in data["runs"]] == [r.id for r in sorted(records, key=lambda r: r.created)]
    assert data["metrics"] == ["accuracy", "loss"]
    assert [r["status"] for r in data["runs"]].count("Failed") == 1
    assert data["runs"][0]["values"] == {"accuracy": 0.8, "loss": pytest.approx(0.2)}
    first = data["runs"][0]["label"].split("\n")
    assert first == [records[0].id[:12], "2024-05-01 10:00", records[0].get("source.revision")[:12]]

    # ... and what was drawn: the title, each metric's axis, every run's label, the legend.
    texts = rendered.texts
    assert texts[0] == "src/python/pipelines/churn:train: 6 run(s), 2024-05-01 to 2024-05-07"
    assert {"accuracy", "loss"} <= set(texts)
    assert [r["label"] for r in data["runs"]] == [t for t in texts if t.count("\n") == 2]
    assert f"Failed {records[4].id[:12]}" in texts
    assert {"local run (pants run)", "SageMaker job (pants publish)", "did not complete (status shown)"} <= set(texts)


def test_a_failed_run_is_marked_not_dropped() -> None:
    records = _records()
    marked = _open(plot.plot_metric(records, "accuracy"))
    without = _open(plot.plot_metric([r for r in records if r.status != "Failed"], "accuracy"))
    assert _reddish(marked) > 5000 and _reddish(without) == 0
    assert [r["status"] for r in json.loads(marked.text[plot.CHART_KEY])["runs"]][4] == "Failed"


def test_close_values_get_distinct_tick_labels_without_an_offset() -> None:
    pkg = package()
    records = [run(pkg, f"2024-06-{i + 1:02d}T10:00:00Z", {"auc": 0.91234 + i * 1e-6}) for i in range(5)]
    rendered = plot.render(plot.chart(records), 640, 360)
    (ticks,) = rendered.y_ticks
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks) and all(t.startswith("0.9123") for t in ticks)
    assert not any("e-" in t for t in rendered.texts)  # no offset text
    values = [t for t in rendered.texts if t.startswith("0.9123")][
        len(ticks) :
    ]  # NB: the point labels come after the ticks
    assert values == ["0.91234", "0.912341", "0.912342", "0.912343", "0.912344"]


def test_many_runs_label_as_many_as_fit_newest_included() -> None:
    assert plot.labelled(30, 640) == [5, 11, 17, 23, 29]
    assert plot.labelled(3, 640) == [0, 1, 2]
    pkg = package()
    records = [run(pkg, f"2024-06-{i + 1:02d}T10:00:00Z", {"auc": 0.5 + i / 100}) for i in range(30)]
    c = plot.chart(records)
    image = _open(plot.plot_metrics(records))
    assert image.size == plot.default_size(c) == (120 + plot.LABEL_WIDTH * 16, plot.FRAME_HEIGHT + 200)
    drawn = [t for t in plot.render(c, *image.size).texts if t.count("\n") == 2]
    assert len(drawn) == 15 and drawn[-1] == c.runs[-1].label


def test_same_records_same_bytes_whatever_the_order_cache_or_hash_seed(tmp_path) -> None:
    records = _records()
    first = _sha256(plot.plot_metrics(records))
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    assert _sha256(plot.plot_metrics(shuffled)) == first
    # NB: a fresh process with an empty font cache and another hash seed, as on another machine.
    script = (
        "import sys; from mlbuild.lineage import plot, testing; from mlbuild.lineage.plot_test import _records; "
        "sys.stdout.buffer.write(plot.plot_metrics(_records()))"
    )
    env = {
        **os.environ,
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    other = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True).stdout
    assert _sha256(other) == first


def test_a_diverged_metric_is_a_gap() -> None:
    pkg = package()
    records = [
        run(pkg, "2024-05-01T10:00:00Z", {"loss": 0.5}),
        run(pkg, "2024-05-02T10:00:00Z", {"loss": float("nan")}),
    ]
    assert [r.values for r in plot.chart(records).runs] == [(0.5,), (None,)]
    _open(plot.plot_metrics(records))


def test_the_cli_does_not_import_matplotlib() -> None:
    code = (
        f"import sys, {cli.__name__}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_matplotlib_it_says_how_to_run_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlatformError, match="plot needs matplotlib.*./pants mlbuild plot") as e:
        plot.plot_metric(_records(), "accuracy")
    assert e.value.exit_code == 3


def test_unknown_metric_lists_the_ones_seen() -> None:
    with pytest.raises(UserError, match=r"numeric metric 'f1' \(6 run\(s\); metrics seen: accuracy, loss\)"):
        plot.plot_metric(_records(), "f1")


@pytest.mark.parametrize(
    "records, width, height, message",
    [
        ([], 640, 360, "no runs to plot"),
        (None, 100, 360, "a 100x360 plot of 1 metric"),
        (None, 640, 200, r"--height from 250 \(140 \+ 110 per metric\)"),
    ],
)
def test_bad_input_is_a_user_error(records, width, height, message) -> None:
    with pytest.raises(UserError, match=message) as e:
        plot.plot_metric(_records() if records is None else records, "accuracy", width, height)
    assert e.value.exit_code == 2
