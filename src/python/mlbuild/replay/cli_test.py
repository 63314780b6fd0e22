from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from mlbuild.commands import cli as commands
from mlbuild.replay import cli
from mlbuild.replay.testing import JOB, FakeRun, local_job


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    local_job(tmp_path)
    monkeypatch.setenv("MLBUILD_LINEAGE_DIR", str(tmp_path / "lineage"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def main(repo: Path, *argv: str):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = commands.main(["replay", *argv, "--local-root", str(repo / "local"), "--cache-dir", str(repo / "cache")])
    return code, out.getvalue()


def test_json_verdict_and_exit_code(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "replay", _with_run(FakeRun()))
    code, out = main(repo, JOB, "--json")
    doc = json.loads(out)
    assert (code, doc["outcome"], doc["exit_code"], doc["image_pulled"]) == (0, "identical", 0, False)
    code, out = main(repo, JOB)
    assert code == 0 and out.startswith(f"mlbuild: replay of {JOB}: identical")


def test_prints_to_the_stdout_of_the_call(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(cli, "replay", _with_run(FakeRun()))
    assert (
        commands.main(
            ["replay", JOB, "--json", "--local-root", str(repo / "local"), "--cache-dir", str(repo / "cache")]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["outcome"] == "identical"


def test_differing_replay_exits_1(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "replay", _with_run(FakeRun(metrics={"score": 1.0})))
    code, out = main(repo, JOB)
    assert code == 1 and "metrics differ" in out


@pytest.mark.parametrize("query", ["no-such-job", "abcdef12"])
def test_unknown_job_is_one_line_exit_2(repo: Path, query: str, capsys: pytest.CaptureFixture) -> None:
    code, out = main(repo, query)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert (
        err.count("\n") == 1 and err.startswith(f"mlbuild: error: '{query}': no local job") and "Traceback" not in err
    )
    assert not (repo / "local" / "replays").exists()


def test_missing_aws_credentials_is_exit_2(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(repo / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(repo / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _ = main(repo, "some-sagemaker-job", "--aws", "--region", "us-east-1")
    err = capsys.readouterr().err
    assert code == 2 and "credentials" in err and "Traceback" not in err


def _with_run(run: FakeRun):
    from mlbuild.replay.replay import replay

    return lambda job, **kwargs: replay(job, run=run, **kwargs)
