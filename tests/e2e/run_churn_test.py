"""`./pants run` on the churn pipeline in a fresh copy of the repo, as a user runs it.

Each test finds its own runs from the output it gets (never through `latest`, which another
test may have moved), so the tests hold in any order and alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2e.repo import Result, copy_repo, pants

CHURN = "src/python/pipelines/churn:train"
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.churn/train")
# README "Exit codes": 2 for a user error (config, data, hyperparameters, a pipeline that raises).
USER_ERROR = 2


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("repo"))


def completed_run(repo: Path, result: Result) -> Path:
    """The run directory this `pants run` reports it completed."""
    assert result.exit_code == 0, result.stderr[-3000:]
    match = re.search(rf"mlbuild: run complete: {re.escape(str(RUNS))}/(\S+)", result.stdout)
    assert match, result.stdout[-3000:]
    run = repo / RUNS / match.group(1)
    assert run.is_dir() and not run.name.endswith(".failed")
    return run


def test_run_trains_the_churn_model_and_reports_metrics(repo: Path) -> None:
    result = pants(repo, "run", CHURN)
    run = completed_run(repo, result)
    assert (repo / RUNS / "latest").resolve() == run.resolve()
    metrics = json.loads((run / "model" / "metrics.json").read_text())
    assert metrics["validation:auc"] >= 0.75
    assert 0.5 < metrics["validation:accuracy"] <= 1.0 and metrics["validation:log_loss"] > 0
    assert (run / "model" / "model.pkl").stat().st_size > 1000
    assert "mlbuild-metric validation:auc=" in result.stdout


def test_same_seed_gives_the_same_model_and_overrides_pass_through(repo: Path) -> None:
    first = completed_run(repo, pants(repo, "run", CHURN, "--", "max_depth=3", "seed=42"))
    hp = json.loads((first / "input" / "config" / "hyperparameters.json").read_text())
    assert hp["max_depth"] == "3" and hp["seed"] == "42"

    # The same resolved hyperparameters (seed defaults to 42): reused, nothing trained.
    before = sorted(p.name for p in (repo / RUNS).iterdir())
    reused = pants(repo, "run", CHURN, "--", "max_depth=3")
    assert reused.exit_code == 0, reused.stderr[-3000:]
    assert (
        "an identical run already finished (same sources and locked requirements, hyperparameters and data): "
        in reused.stdout
    )
    assert first.name in reused.stdout and "run complete" not in reused.stdout
    assert sorted(p.name for p in (repo / RUNS).iterdir()) == before

    # Forced: a second, separate training run with the same seed gives the same bytes.
    second = completed_run(repo, pants(repo, "run", CHURN, "--", "--force", "max_depth=3"))
    assert second != first
    assert json.loads((second / "input" / "config" / "hyperparameters.json").read_text()) == hp
    assert (second / "model" / "model.pkl").read_bytes() == (first / "model" / "model.pkl").read_bytes()
    assert (second / "model" / "metrics.json").read_bytes() == (first / "model" / "metrics.json").read_bytes()


@pytest.mark.parametrize(
    "args, edit, message, trained",
    [
        (["--", "max_dpeth=3"], None, "unknown hyperparameter 'max_dpeth'", False),
        (["--", "max_depth=deep"], None, "hyperparameter 'max_depth' must be int, got 'deep'", False),
        (
            [],
            ("src/python/pipelines/churn/pipeline.yaml", "hyperparameters: [oops\n"),
            "malformed YAML at line 2",
            False,
        ),
        (
            [],
            ("src/python/pipelines/churn/BUILD", 'python_sources()\nml_pipeline(name="train", sample_data="nodata")\n'),
            "local data directory src/python/pipelines/churn/nodata/train does not exist",
            False,
        ),
        # Training started, so the run is kept, marked failed (README: "a failure leaves <run id>.failed").
        (
            [],
            (
                "src/python/pipelines/churn/pipeline.py",
                "def load(ctx):\n    raise RuntimeError('no rows')\ndef train(ctx, f): ...\ndef evaluate(ctx, m, f): ...\n",
            ),
            "stage load() raised RuntimeError: no rows",
            True,
        ),
    ],
)
def test_bad_input_fails_clearly_without_a_complete_run(tmp_path: Path, args, edit, message, trained) -> None:
    repo = copy_repo(tmp_path / "repo")
    if edit:
        (repo / edit[0]).write_text(edit[1])
    result = pants(repo, "run", CHURN, *args)
    assert result.exit_code == USER_ERROR, (result.exit_code, result.stderr[-3000:])
    assert message in result.stderr, result.stderr[-3000:]
    runs = repo / RUNS
    left = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    if trained:
        (failed,) = left
        assert failed.endswith(".failed") and (runs / failed / "output" / "failure").is_file()
        assert "RuntimeError: no rows" in (runs / failed / "output" / "failure").read_text()
    else:
        # Errors in the input stop before a run directory exists.
        assert left == [], left
