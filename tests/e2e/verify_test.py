"""`verify` for real: package a committed repo, rebuild it from a clean checkout, compare.

Also the failure a user meets after editing a source file: that build is of a dirty tree,
which no clean checkout can reproduce, and verify says so instead of rebuilding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.repo import copy_repo, pants

CHURN = "src/python/pipelines/churn:train"
SUMMARY = Path("dist/src.python.pipelines.churn/train.image.json")
# README "Exit codes": 2 for a user error (here: a build of a dirty tree cannot be verified).
USER_ERROR = 2


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def lineage(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBUILD_LINEAGE", "PANTS_"))}
    env["PYTHONPATH"] = str(repo / "src/python")
    return subprocess.run(
        [sys.executable, "-m", "mlbuild.commands.cli", *args], cwd=repo, env=env, capture_output=True, text=True
    )


@dataclass(frozen=True)
class Committed:
    repo: Path
    digest: str  # the image packaged from the commit, before any test edits the tree


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Committed:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    (repo / ".gitignore").write_text("/dist/\n/.mlbuild/\n/.pants.d/\n/.pids/\n__pycache__/\n")
    git(repo, "init", "--quiet")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "churn")
    result = pants(repo, "package", CHURN)
    assert result.exit_code == 0, result.stderr[-4000:]
    return Committed(repo, json.loads((repo / SUMMARY).read_text())["manifest_digest"])


def test_a_clean_build_rebuilds_to_the_same_bytes(committed: Committed) -> None:
    repo, digest = committed.repo, committed.digest
    out = lineage(repo, "verify", digest[len("sha256:") :][:12], "--json")
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout)
    assert result["verified"] is True and digest in result["message"]
    assert "its provenance's subject is" in result["message"]
    assert "identical to the recorded" in result["message"]  # the statement rebuilt byte for byte too


def test_after_a_source_edit_verify_refuses_the_dirty_build(committed: Committed) -> None:
    repo = committed.repo
    train = repo / "src/python/pipelines/churn/pipeline.py"
    clean = train.read_text()
    train.write_text(clean + "\n# an uncommitted edit\n")
    try:
        result = pants(repo, "package", CHURN)
        assert result.exit_code == 0, result.stderr[-4000:]
        dirty = json.loads((repo / SUMMARY).read_text())["manifest_digest"]
        assert dirty != committed.digest
        out = lineage(repo, "verify", dirty)
        assert out.returncode == USER_ERROR, (out.returncode, out.stderr[-4000:])
        assert "uncommitted changes" in out.stderr and "commit and package again" in out.stderr
    finally:
        # NB: the module's other test verifies the committed tree; leave it as found, in any order.
        train.write_text(clean)
        assert not git(repo, "status", "--porcelain", "--untracked-files=no")
