"""`./pants run` on the churn pipeline in a fresh copy of the repo, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.repo import copy_repo, pants

CHURN = "src/python/pipelines/churn:train"
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.churn/train")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("repo"))


def test_run_trains_the_churn_model_and_reports_metrics(repo: Path) -> None:
    result = pants(repo, "run", CHURN)
    assert result.exit_code == 0, result.stderr[-3000:]
    latest = (repo / RUNS / "latest").resolve()
    metrics = json.loads((latest / "model" / "metrics.json").read_text())
    assert metrics["validation:auc"] >= 0.75
    assert 0.5 < metrics["validation:accuracy"] <= 1.0 and metrics["validation:log_loss"] > 0
    assert (latest / "model" / "model.pkl").stat().st_size > 1000
    assert f"mlbuild: run complete: {RUNS}/{latest.name}" in result.stdout
    assert "mlbuild-metric validation:auc=" in result.stdout


def test_same_seed_gives_the_same_model_and_overrides_pass_through(repo: Path) -> None:
    first = (repo / RUNS / "latest").resolve()
    result = pants(repo, "run", CHURN, "--", "max_depth=3", "seed=42")
    assert result.exit_code == 0, result.stderr[-3000:]
    second = (repo / RUNS / "latest").resolve()
    assert second != first
    hp = json.loads((second / "input" / "config" / "hyperparameters.json").read_text())
    assert hp["max_depth"] == "3"
    again = pants(repo, "run", CHURN, "--", "max_depth=3")
    assert again.exit_code == 0, again.stderr[-3000:]
    third = (repo / RUNS / "latest").resolve()
    assert (third / "model" / "model.pkl").read_bytes() == (second / "model" / "model.pkl").read_bytes()


@pytest.mark.parametrize(
    "args, edit, message",
    [
        (["--", "max_dpeth=3"], None, "unknown hyperparameter 'max_dpeth'"),
        (["--", "max_depth=deep"], None, "hyperparameter 'max_depth' must be int, got 'deep'"),
        ([], ("src/python/pipelines/churn/pipeline.yaml", "hyperparameters: [oops\n"), "malformed YAML at line 2"),
        ([], ("src/python/pipelines/churn/BUILD", 'python_sources()\nml_pipeline(name="train", sample_data="nodata")\n'), "local data directory src/python/pipelines/churn/nodata/train does not exist"),
        ([], ("src/python/pipelines/churn/pipeline.py", "def load(ctx):\n    raise RuntimeError('no rows')\ndef train(ctx, f): ...\ndef evaluate(ctx, m, f): ...\n"), "stage load() raised RuntimeError: no rows"),
    ],
)
def test_bad_input_fails_clearly_without_a_complete_run(tmp_path: Path, args, edit, message) -> None:
    repo = copy_repo(tmp_path / "repo")
    if edit:
        (repo / edit[0]).write_text(edit[1])
    result = pants(repo, "run", CHURN, *args)
    assert result.exit_code != 0
    assert message in result.stderr, result.stderr[-3000:]
    runs = repo / RUNS
    complete = [p for p in runs.iterdir() if not p.name.endswith(".failed")] if runs.exists() else []
    assert complete == []
