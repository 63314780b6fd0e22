"""The pull-request workflow publishes exactly the pipelines a change affects.

`build-support/changed_pipelines.py` on a committed copy of the repo (four pipelines: churn, iris and
lightgbm_dist in the default resolve, mlp in the torch one; all on the one Debian base), one
kind of change at a time, each undone before the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from e2e.repo import commit_copy, copy_repo, stop_pantsd

CHURN, IRIS, LIGHTGBM, MLP = (
    f"src/python/pipelines/{name}:train" for name in ("churn", "iris", "lightgbm_dist", "mlp")
)
DEFAULT_RESOLVE = [CHURN, IRIS, LIGHTGBM]
EVERY = [CHURN, IRIS, LIGHTGBM, MLP]


def append(path: str, text: str) -> Callable[[Path], object]:
    return lambda repo: (repo / path).write_text((repo / path).read_text() + text)


def first(pattern: str) -> Callable[[Path], None]:
    """Append a line to the first file matching `pattern` (sample data: a row as the file has them)."""

    def change(repo: Path) -> None:
        path = sorted(repo.glob(pattern))[0]
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines + [lines[-1]]) + "\n")

    return change


CHANGES: Dict[str, tuple] = {
    "a pipeline's code": (append("src/python/pipelines/iris/pipeline.py", "\n# edited\n"), [IRIS]),
    "a pipeline's config": (append("src/python/pipelines/churn/pipeline.yaml", "\n# edited\n"), [CHURN]),
    "a pipeline's sample data": (first("src/python/pipelines/churn/data/**/*.csv"), [CHURN]),
    "a shared module": (append("src/python/mlbuild/runtime/metrics.py", "\n# edited\n"), EVERY),
    "the default lockfile": (append("3rdparty/python/default.lock", "\n// edited\n"), DEFAULT_RESOLVE),
    "the torch lockfile": (append("3rdparty/python/torch.lock", "\n// edited\n"), [MLP]),
    "the Debian base image's lock": (append("docker/debian-python3.11/packages.lock.json", "\n"), EVERY),
    "nothing a pipeline is built from": (append("bench/README.md", "\nedited\n"), []),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo = copy_repo(tmp_path_factory.mktemp("changed") / "repo")
    (repo / "bench/README.md").write_text("benchmarks\n")
    commit_copy(repo)
    yield repo
    stop_pantsd(repo)


def decisions(repo: Path) -> List[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    done = subprocess.run(
        [
            sys.executable,
            "build-support/changed_pipelines.py",
            "--since",
            "HEAD",
            "--json",
            "--markdown",
            "dist/selection.md",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["pipelines"]


@pytest.mark.parametrize("kind", list(CHANGES))
def test_exactly_the_affected_pipelines_publish(repo: Path, kind: str) -> None:
    change, expected = CHANGES[kind]
    change(repo)
    try:
        found = decisions(repo)
    finally:
        subprocess.run(["git", "checkout", "--", "."], cwd=repo, check=True)
    assert [d["address"] for d in found] == EVERY
    assert [d["address"] for d in found if d["publish"]] == expected, found
    summary = (repo / "dist/selection.md").read_text()
    assert f"publishing {len(expected)} of {len(EVERY)} pipelines" in summary
    for d in found:  # the skipped ones are listed too, with their reason
        assert f"`{d['address']}`: {'published' if d['publish'] else 'skipped'}: {d['reason']}" in summary


def test_a_base_commit_the_clone_lacks_is_an_error_with_the_fix(repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "build-support/changed_pipelines.py", "--since", "0" * 40],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "names no commit" in done.stderr and "fetch-depth: 0" in done.stderr
