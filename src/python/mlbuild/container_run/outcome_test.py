from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.container_run.outcome import read_outcome


def _run_dir(tmp_path: Path, failure: str | None = None, metrics: str | None = None) -> Path:
    if failure is not None:
        (tmp_path / "output").mkdir()
        (tmp_path / "output/failure").write_text(failure)
    if metrics is not None:
        (tmp_path / "model").mkdir()
        (tmp_path / "model/metrics.json").write_text(metrics)
    return tmp_path


@pytest.mark.parametrize(
    "exit_code, failure, tail, expect",
    [
        (0, None, [], None),
        (0, "stale", [], None),  # SageMaker goes by the exit status
        (1, "ValueError: bad\n", [], "ValueError: bad\n"),
        (1, "x" * 2000, [], "x" * 1024),
        (3, None, ["ok", "Traceback ...", "boom", ""], "exited with code 3 and wrote no /opt/ml/output/failure"),
        (1, "  \n", ["bwrap: Can't chdir"], 'Its last output line: "bwrap: Can\'t chdir"'),
        (-9, None, [], "killed by SIGKILL"),
    ],
)
def test_failure_reason(tmp_path: Path, exit_code: int, failure: str | None, tail: list, expect: str | None) -> None:
    reason = read_outcome(_run_dir(tmp_path, failure), exit_code, tail).failure_reason
    if expect is None or exit_code != 3 and failure and failure.strip():
        assert reason == expect
    else:
        assert reason is not None and expect in reason


@pytest.mark.parametrize("text, expect", [('{"auc": 0.9}', {"auc": 0.9}), ("[1]", None), ("{", None), (None, None)])
def test_metrics(tmp_path: Path, text: str | None, expect: dict | None) -> None:
    outcome = read_outcome(_run_dir(tmp_path, metrics=text), 0)
    assert outcome.metrics == expect and outcome.succeeded
    assert outcome.model_dir == tmp_path / "model"
    if expect:
        assert json.loads(text or "") == expect
