from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from mlbuild import names
from mlbuild.lineage import host_run
from mlbuild.lineage.store import Store

PIPELINE = """
def load(ctx):
    return [float(x) for x in (ctx.channels["train"] / "numbers.txt").read_text().split()]

def train(ctx, features):
    return {"mean": sum(features) / len(features) * ctx.hp["scale"]}

def evaluate(ctx, model, features):
    return {"train:mean": model["mean"]}
"""

CONFIG = """
hyperparameters:
  scale: 2.0
channels:
  train: {content_type: text/plain}
"""

_names = itertools.count()


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny pipeline package on sys.path and a lineage store; returns its sample data folder."""
    package = f"host_run_pipeline_{next(_names)}"
    root = tmp_path / "src" / package
    (root / "data" / "train").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "pipeline.py").write_text(PIPELINE)
    (root / "pipeline.yaml").write_text(CONFIG)
    (root / "data" / "train" / "numbers.txt").write_text("1 2 3 4\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv(names.PIPELINE_MODULE_ENV, f"{package}.pipeline")
    monkeypatch.setenv(names.PIPELINE_CONFIG_ENV, "pipeline.yaml")
    monkeypatch.setenv(names.PIPELINE_ADDRESS_ENV, f"src/{package}:train")
    monkeypatch.setenv(names.LINEAGE_DIR_ENV, str(tmp_path / "lineage"))
    monkeypatch.setenv(names.LINEAGE_INBOX_ENV, str(tmp_path / "inbox"))
    monkeypatch.delenv(names.ML_BASE_DIR_ENV, raising=False)
    return root / "data"


def _runs(runs: Path) -> list:
    return [p for p in runs.glob("*/train/*") if p.name != "latest"]


def test_an_identical_finished_run_is_reused_unless_forced(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    args = [
        "local",
        "--data-dir",
        str(pipeline),
        "--runs-dir",
        str(runs),
        "--sources-sha256",
        "a" * 64,
        "--requirements-sha256",
        "b" * 64,
    ]
    assert host_run.main(args) == 0
    assert "lineage: " in capsys.readouterr().out
    assert host_run.main(args) == 0
    # NB: `pants run` runs the sources on the locked requirements, no PEX: it says so.
    assert (
        "an identical run already finished (same sources and locked requirements, hyperparameters and data)"
        in capsys.readouterr().out
    )
    assert len(_runs(runs)) == 1
    assert host_run.main([*args, "scale=5"]) == 0  # other hyperparameters: trains
    (pipeline / "train" / "numbers.txt").write_text("1 2 3 5\n")
    assert host_run.main(args) == 0  # other data: trains
    assert host_run.main([*args, "--force"]) == 0  # forced: trains
    edited = [a if a != "a" * 64 else "c" * 64 for a in args]
    assert host_run.main(edited) == 0  # other sources: trains
    assert len(_runs(runs)) == 5


def test_the_record_pins_what_the_arguments_say(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    image = "sha256:" + "e" * 64
    assert (
        host_run.main(
            [
                "local",
                "--data-dir",
                str(pipeline),
                "--runs-dir",
                str(runs),
                "--pex-sha256",
                "d" * 64,
                "--image-digest",
                image,
            ]
        )
        == 0
    )
    record_id = capsys.readouterr().out.split("lineage: ")[1].split()[0]
    record = Store(tmp_path / "lineage").get(record_id)
    assert record.get("pex.sha256") == "d" * 64 and record.get("image.manifest_digest") == image
    assert json.loads((_runs(runs)[0] / "model" / "metrics.json").read_text()) == {"train:mean": 5.0}


def test_a_failed_run_is_recorded_and_exits_2(pipeline: Path, tmp_path: Path, capsys) -> None:
    (pipeline.parent / "pipeline.py").write_text(
        PIPELINE.replace('return {"mean"', 'raise ValueError("bad row")\n    return {"mean"')
    )
    runs = tmp_path / "runs"
    code = host_run.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), "--pex-sha256", "d" * 64])
    assert code == names.EXIT_USER_ERROR
    (failed,) = _runs(runs)
    assert failed.name.endswith(".failed") and "training failed" in capsys.readouterr().err
    (record,) = [r for r, _ in Store(tmp_path / "lineage").mentioning("d" * 64)]
    assert record.get("extra.run_dir") and record.kind == "run"


def test_a_typo_stops_before_any_run_directory(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert (
        host_run.main(
            ["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), "--pex-sha256", "d" * 64, "scal=3"]
        )
        == names.EXIT_USER_ERROR
    )
    assert not runs.exists() and "scal" in capsys.readouterr().err
