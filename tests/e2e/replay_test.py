"""Publish churn with the local backend, then replay the job by its name and by a model
sha256 prefix (identical), and a job made to fail (the same failure)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from e2e.publish_lineage_test import CHURN, NO_AWS
from e2e.repo import copy_repo, pants
from mlbuild.commands import cli
from mlbuild.replay.verdict import archive_files
from mlbuild.tools_required import require_tool

REPORT = Path("dist/mlbuild/publish/src.python.pipelines.churn/train/report.json")

pytestmark = require_tool("bwrap", "bubblewrap")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    result = pants(repo, "publish", CHURN, env=NO_AWS)
    assert result.exit_code == 0, result.stderr[-4000:]
    return repo


def replay(repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple:
    """The replay CLI in this process, from the repo root (its default local root and store)."""
    monkeypatch.chdir(repo)
    monkeypatch.delenv("MLBUILD_LINEAGE_DIR", raising=False)
    capsys.readouterr()
    start = time.monotonic()
    code = cli.main(["replay", *args, "--json", "--cache-dir", str(repo.parent / "cache")])
    seconds = time.monotonic() - start
    captured = capsys.readouterr()
    assert captured.out, captured.err[-4000:]
    return code, json.loads(captured.out), captured.err, seconds


def test_replay_by_job_name_through_pants_is_identical(repo: Path) -> None:
    job = json.loads((repo / REPORT).read_text())["job_name"]
    result = pants(repo, "mlbuild", "replay", job, "--json", env=NO_AWS)
    assert result.exit_code == 0, result.stderr[-4000:]
    verdict = json.loads(result.stdout[result.stdout.index("{") :])
    assert verdict["outcome"] == "identical" and verdict["job"] == job
    assert any("byte-identical" in note for note in verdict["notes"])
    assert verdict["image_pulled"] is False


def test_replay_by_model_sha256_prefix_is_identical_and_reuses_everything(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    report = json.loads((repo / REPORT).read_text())
    first = replay(repo, monkeypatch, capsys, report["model"]["sha256"][:12])
    assert first[0] == 0 and first[1]["outcome"] == "identical" and first[1]["job"] == report["job_name"], first[2][
        -3000:
    ]
    second = replay(repo, monkeypatch, capsys, report["model"]["sha256"][:12])
    assert second[0] == 0 and second[1]["outcome"] == "identical"
    # NB: the second call unpacks nothing and downloads nothing (README "Reproduce a job")
    assert "reused" in second[2] and "unpacked in" not in second[2] and not second[1]["image_pulled"]
    print(f"replay wall seconds: first {first[3]:.1f}, second {second[3]:.1f}; phases {second[1]['seconds']}")
    # The replay is recorded under the job's record.
    inspect = pants(repo, "mlbuild", "inspect", report["job_name"], "--json")
    assert inspect.exit_code == 0, inspect.stderr[-3000:]
    assert second[1]["record_id"] in inspect.stdout


def test_publishing_again_reuses_the_job_and_force_trains_a_new_job_with_the_same_model(repo: Path) -> None:
    """README Publishing: the model lands in `.mlbuild/local/jobs/<job>/output/model.tar.gz`; the
    same image, hyperparameters and data reuse the finished job; `--mlbuild-force` trains anyway."""
    again = pants(repo, "publish", CHURN, env=NO_AWS)
    assert again.exit_code == 0, again.stderr[-4000:]
    reused = json.loads((repo / REPORT).read_text())
    job = reused["job_name"]
    archive = repo / ".mlbuild/local/jobs" / job / "output/model.tar.gz"
    assert reused["reused"] is True and reused["status"] == "Completed", reused
    assert archive.is_file() and Path(reused["model"]["uri"]).resolve() == archive.resolve()

    forced = pants(repo, "--mlbuild-force", "publish", CHURN, env=NO_AWS)
    assert forced.exit_code == 0, forced.stderr[-4000:]
    new = json.loads((repo / REPORT).read_text())
    assert new["reused"] is False and new["status"] == "Completed" and new["job_name"].startswith(f"{job}-r"), new
    new_archive = repo / ".mlbuild/local/jobs" / new["job_name"] / "output/model.tar.gz"
    assert new_archive.is_file() and Path(new["model"]["uri"]).resolve() == new_archive.resolve()
    # Trained again from the same seed: the same files, and the same archive bytes (the archive
    # writer pins names, order and times).
    assert archive_files(new_archive) == archive_files(archive) and archive_files(archive)
    assert new_archive.read_bytes() == archive.read_bytes()


def test_a_job_made_to_fail_replays_the_same_failure(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    pipeline = repo / "src/python/pipelines/churn/pipeline.py"
    text = pipeline.read_text()
    pipeline.write_text(
        text.replace(
            "def train(ctx, features):\n",
            "def train(ctx, features):\n    raise ValueError('made to fail for the replay test')\n",
            1,
        )
    )
    try:
        failed = pants(repo, "publish", CHURN, env=NO_AWS)
        assert failed.exit_code == 2, failed.stderr[-4000:]
        job = json.loads((repo / REPORT).read_text())["job_name"]
        code, verdict, err, _ = replay(repo, monkeypatch, capsys, job, "--expect-failure")
        assert (code, verdict["outcome"]) == (0, "same failure"), err[-3000:]
        assert "made to fail" in verdict["job_failure"] and verdict["job_failure"] == verdict["replay_failure"]
        code, verdict, _, _ = replay(repo, monkeypatch, capsys, job)
        assert (code, verdict["outcome"]) == (
            1,
            "same failure",
        )  # NB: without --expect-failure a failure is not success
    finally:
        pipeline.write_text(text)


def test_unknown_job_is_a_one_line_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(repo)
    assert cli.main(["replay", "no-such-job"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no local job by that name" in err
