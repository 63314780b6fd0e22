"""The second pipeline, written by a newcomer from the README alone, runs as documented."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.repo import copy_repo, pants


def test_the_iris_pipeline_trains_with_pants_run(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    result = pants(repo, "run", "src/python/pipelines/iris:train", "--", "n_estimators=20")
    assert result.exit_code == 0, result.stderr[-3000:]
    latest = (repo / "dist/mlbuild/runs/src.python.pipelines.iris/train/latest").resolve()
    metrics = json.loads((latest / "model/metrics.json").read_text())
    assert metrics["validation:accuracy"] >= 0.8 and 0.0 < metrics["validation:macro_f1"] <= 1.0
    assert json.loads((latest / "input/config/hyperparameters.json").read_text())["n_estimators"] == "20"
