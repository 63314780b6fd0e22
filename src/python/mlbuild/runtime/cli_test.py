"""The runtime end to end, in-process: local runs, the container entry and bad inputs."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import pytest

from mlbuild.runtime import cli, contract, train
from mlbuild.runtime.pipeline import ADDRESS_ENV_VAR, CONFIG_ENV_VAR, MODULE_ENV_VAR

PIPELINE = """
import json, random

def load(ctx):
    return [float(line) for line in (ctx.channels["train"] / "numbers.txt").read_text().split()]

def featurize(ctx, raw):
    if ctx.hp["explode"]:
        raise ValueError("bad row 3")
    return [x * ctx.hp["scale"] for x in raw]

def train(ctx, features):
    return {"mean": sum(features) / len(features), "noise": random.random()}

def evaluate(ctx, model, features):
    return {"train:mean": model["mean"], "train:rows": len(features)}

def save(ctx, model):
    (ctx.model_dir / "model.json").write_text(json.dumps(model, sort_keys=True))
"""

CONFIG = """
hyperparameters:
  scale: 2.0
  explode: false
  seed: 7
channels:
  train: {content_type: text/plain}
"""

_names = itertools.count()


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny pipeline package on sys.path; returns its sample data folder."""
    package = f"toy_pipeline_{next(_names)}"
    root = tmp_path / "src" / package
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "pipeline.py").write_text(PIPELINE)
    (root / "pipeline.yaml").write_text(CONFIG)
    (root / "data" / "train").mkdir(parents=True)
    (root / "data" / "train" / "numbers.txt").write_text("1 2 3 4\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv(MODULE_ENV_VAR, f"{package}.pipeline")
    monkeypatch.setenv(CONFIG_ENV_VAR, "pipeline.yaml")
    monkeypatch.setenv(ADDRESS_ENV_VAR, f"src/{package}:train")
    monkeypatch.delenv(contract.BASE_DIR_ENV_VAR, raising=False)
    return root / "data"


def test_local_run_writes_model_and_metrics_and_moves_latest(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), "scale=3"]) == 0
    (run,) = [p for p in runs.glob("*/train/*") if p.name != "latest"]
    assert (run.parent / "latest").resolve() == run.resolve()
    assert json.loads((run / "model" / "metrics.json").read_text()) == {"train:mean": 7.5, "train:rows": 4.0}
    assert json.loads((run / contract.HYPERPARAMETERS_FILE).read_text()) == {
        "explode": "false",
        "scale": "3.0",
        "seed": "7",
    }
    assert json.loads((run / contract.INPUT_DATA_CONFIG_FILE).read_text())["train"]["ContentType"] == "text/plain"
    out = capsys.readouterr().out
    assert "mlbuild-metric train:mean=7.5;" in out and f"run complete: {run}" in out


def test_container_train_and_local_run_share_one_code_path(pipeline: Path, tmp_path: Path, monkeypatch) -> None:
    calls: list[Path] = []
    real = train.run_training

    def run_training(base, p):
        calls.append(Path(base))
        return real(base, p)

    monkeypatch.setattr(cli, "run_training", run_training)
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs)]) == 0
    local_run = next(runs.glob("*/train/latest")).resolve()

    # A container: a copy of the same tree at another base, entered with no arguments.
    opt_ml = tmp_path / "opt" / "ml"
    shutil.copytree(local_run / "input", opt_ml / "input", symlinks=True)
    monkeypatch.setenv(contract.BASE_DIR_ENV_VAR, str(opt_ml))
    assert cli.main([]) == 0
    assert calls[1] == opt_ml and calls[0].name.endswith(".incomplete")
    # Same seed, same inputs: the same model bytes (including the seeded "noise").
    assert (opt_ml / "model" / "model.json").read_bytes() == (local_run / "model" / "model.json").read_bytes()
    assert (opt_ml / contract.METRICS_FILE).read_bytes() == (local_run / contract.METRICS_FILE).read_bytes()


def test_pipeline_that_raises_fails_clearly_and_leaves_no_complete_run(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), "explode=true"]) == 2
    (failed,) = list(runs.glob("*/train/*"))
    assert failed.name.endswith(".failed")
    reason = (failed / contract.FAILURE_FILE).read_text()
    assert "stage featurize() raised ValueError: bad row 3" in reason and "pipeline.py:9" in reason
    assert not (failed / contract.METRICS_FILE).exists()
    assert "mlbuild: error: pipeline src/toy_pipeline" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, edit, message",
    [
        (["dpeth=3"], None, "unknown hyperparameter 'dpeth'"),
        (["scale=big"], None, "hyperparameter 'scale' must be float, got 'big'"),
        ([], lambda root: shutil.rmtree(root / "data" / "train"), "`channels.train`: local data directory"),
        (
            [],
            lambda root: (root / "pipeline.yaml").write_text("hyperparameters: {scale: 1\n"),
            "malformed YAML at line 2",
        ),
    ],
)
def test_bad_input_exits_2_and_creates_no_run(pipeline: Path, tmp_path: Path, capsys, args, edit, message) -> None:
    if edit:
        edit(pipeline.parent)
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), *args]) == 2
    assert message in capsys.readouterr().err
    assert not runs.exists()


def test_container_without_channel_data_writes_failure(pipeline: Path, tmp_path: Path, monkeypatch) -> None:
    opt_ml = tmp_path / "ml"
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / contract.INPUT_DATA_CONFIG_FILE).write_text(json.dumps({"train": {}}))
    monkeypatch.setenv(contract.BASE_DIR_ENV_VAR, str(opt_ml))
    assert cli.main(["train"]) == 2
    assert "channel 'train':" in (opt_ml / contract.FAILURE_FILE).read_text()


def test_missing_pipeline_variable_is_a_platform_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv(MODULE_ENV_VAR, raising=False)
    assert cli.main(["train"]) == 3
    assert "not built by an ml_pipeline target" in capsys.readouterr().err


def test_failure_reason_is_truncated_like_sagemaker(tmp_path: Path) -> None:
    contract.write_failure(tmp_path, "x" * 5000)
    assert len((tmp_path / contract.FAILURE_FILE).read_text()) == contract.FAILURE_REASON_LIMIT


def test_metric_lines_match_the_definitions_regex() -> None:
    import re

    from mlbuild.runtime import metrics

    line = metrics.format_line("validation:auc", 0.8123)
    (definition,) = metrics.metric_definitions(["validation:auc"])
    found = re.search(definition["Regex"], f"2026 INFO {line}")
    assert found and float(found.group(1)) == 0.8123
    assert re.search(definition["Regex"], metrics.format_line("validation:auc_x", 1.0)) is None


def test_the_runtime_trains_every_time_and_records_nothing(pipeline: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    # NB: reuse and lineage are the host's (mlbuild.lineage.host_run); the runtime ships in
    # the image and only trains, whatever the environment says.
    monkeypatch.setenv("MLBUILD_LINEAGE_DIR", str(tmp_path / "lineage"))
    runs = tmp_path / "runs"
    args = ["local", "--data-dir", str(pipeline), "--runs-dir", str(runs)]
    assert cli.main(args) == 0 and cli.main(args) == 0
    assert "lineage: " not in capsys.readouterr().out
    assert len([p for p in runs.glob("*/train/*") if p.name != "latest"]) == 2
    assert not (tmp_path / "lineage").exists()


def test_the_runtime_imports_no_lineage_module() -> None:
    # NB: in a fresh interpreter: other tests of this process may have imported lineage.
    import subprocess

    code = "import sys, mlbuild.runtime.cli; print(sorted(m for m in sys.modules if m.startswith('mlbuild.lineage')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": ":".join(sys.path)}, check=True
    )
    assert out.stdout.strip() == "[]"


LIBRARY_CALLER = """
import toylib

def load(ctx):
    return [1.0, 2.0]

def train(ctx, features):
    return toylib.fit(features)

def evaluate(ctx, model, features):
    return {"m": 1.0}
"""


def test_an_exception_inside_a_library_points_at_the_users_line(
    pipeline: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    lib = tmp_path / "site-packages"
    lib.mkdir()
    (lib / "toylib.py").write_text("def fit(rows):\n    raise ValueError('Input contains NaN')\n")
    monkeypatch.syspath_prepend(str(lib))
    (pipeline.parent / "pipeline.py").write_text(LIBRARY_CALLER)
    package = pipeline.parent.name
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs)]) == 2
    (failed,) = list(runs.glob("*/train/*"))
    reason = (failed / contract.FAILURE_FILE).read_text()
    assert "stage train() raised ValueError: Input contains NaN" in reason
    # The user's line (named by its repo path, from the target's address), then the library's.
    assert f"(at src/{package}/pipeline.py:8 in train; raised in {lib / 'toylib.py'}:2 in fit)" in reason


def _package(root: Path, module: str, config: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pipeline package under `root/src`, on sys.path, named by the pipeline variables."""
    package = f"toy_pipeline_{next(_names)}"
    (root / "src" / package).mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text("")
    (root / "src" / package / "pipeline.py").write_text(module)
    (root / "src" / package / "pipeline.yaml").write_text(config)
    monkeypatch.syspath_prepend(str(root / "src"))
    monkeypatch.setenv(MODULE_ENV_VAR, f"{package}.pipeline")
    monkeypatch.setenv(CONFIG_ENV_VAR, "pipeline.yaml")
    return package


def test_errors_name_the_repo_path_when_run_from_the_repo_root(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the repo root, as `pants run` runs there
    monkeypatch.setenv(ADDRESS_ENV_VAR, "somewhere/else:train")  # no help from the address
    monkeypatch.delenv(contract.BASE_DIR_ENV_VAR, raising=False)
    package = _package(tmp_path, PIPELINE, "hyperparameters: {scale: 1\n", monkeypatch)
    assert cli.main(["train"]) == 2
    assert f"mlbuild: error: src/{package}/pipeline.yaml: malformed YAML" in capsys.readouterr().err
    package = _package(tmp_path, "def load(ctx):\n    return []\n", CONFIG, monkeypatch)
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err
    assert (
        f"mlbuild: error: src/{package}/pipeline.py: pipeline module '{package}.pipeline' lacks train, evaluate()"
        in err
    )


def test_errors_inside_an_unzipped_pex_name_the_repo_path_from_the_address(tmp_path: Path, monkeypatch, capsys) -> None:
    package = f"toy_pipeline_{next(_names)}"
    unzipped = tmp_path / ".pex" / "unzipped_pexes" / "abc123"
    (unzipped / package).mkdir(parents=True)
    (unzipped / package / "__init__.py").write_text("")
    (unzipped / package / "pipeline.py").write_text("def load(ctx):\n    return []\n")
    (unzipped / package / "pipeline.yaml").write_text(CONFIG)
    monkeypatch.syspath_prepend(str(unzipped))
    monkeypatch.chdir(tmp_path)  # e.g. a home directory: the unzipped PEX is under it, hidden
    monkeypatch.setenv(MODULE_ENV_VAR, f"{package}.pipeline")
    monkeypatch.setenv(CONFIG_ENV_VAR, "pipeline.yaml")
    monkeypatch.setenv(ADDRESS_ENV_VAR, f"src/python/{package}:train")
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err
    assert f"mlbuild: error: src/python/{package}/pipeline.py: pipeline module" in err and ".pex" not in err
    # Nothing known about the repo: the file as it is (what ran).
    monkeypatch.setenv(ADDRESS_ENV_VAR, "elsewhere:train")
    assert cli.main(["train"]) == 2
    assert f"mlbuild: error: {unzipped / package / 'pipeline.py'}: pipeline module" in capsys.readouterr().err


def test_a_pipeline_that_fails_to_import_is_a_user_error_at_its_line(pipeline: Path, tmp_path: Path, capsys) -> None:
    package = pipeline.parent.name
    (pipeline.parent / "pipeline.py").write_text("import json\nimport no_such_module_xyz\n")
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert (
        f"mlbuild: error: src/{package}/pipeline.py:2: importing pipeline module" in err and "no_such_module_xyz" in err
    )


def test_the_run_keeps_its_log_in_the_run_directory(pipeline: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs)]) == 0
    run = next(runs.glob("*/train/latest")).resolve()
    log = (run / contract.LOG_FILE).read_text()
    assert "stage train: done" in log and "mlbuild-metric train:mean=5.0;" in log  # records and printed lines
    assert f"log:     {run / contract.LOG_FILE}" in capsys.readouterr().out
    assert cli.main(["local", "--data-dir", str(pipeline), "--runs-dir", str(runs), "explode=true"]) == 2
    (failed,) = runs.glob("*/train/*.failed")
    log = (failed / contract.LOG_FILE).read_text()
    # The console gets the message; the log keeps the traceback, down to the user's line.
    assert (
        "stage featurize: started" in log
        and "Traceback (most recent call last)" in log
        and 'raise ValueError("bad row 3")' in log
    )
    assert str(failed / contract.LOG_FILE) in capsys.readouterr().err
    assert type(sys.stdout).__name__ != "_Tee"  # the console is restored
