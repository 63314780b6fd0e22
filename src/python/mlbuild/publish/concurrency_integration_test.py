"""Concurrent local publishes of a REAL image (Debian python3.11 base + a `train` script) under
bubblewrap: the same claims as concurrency_test.py, with nothing replaced. Trainings are counted
by what they leave: run folders with the model `train` wrote.

Needs bubblewrap that can create namespaces and the Debian mirror or a warm .deb cache; skips
otherwise (fails under MLBUILD_REQUIRE_TOOLS=1), like container_run_integration_test.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import List

import pytest

from mlbuild.container_run.testing import real_train_image, write_pipeline
from mlbuild.lineage.store import ROOT_ENV_VAR, Store
from mlbuild.publish import cli
from mlbuild.runtime import local_run

ADDRESS = "src/python/pipelines/tiny:train"
N = 3


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_train_image(tmp_path_factory.mktemp("image"), ref="tiny:1")


def _publish(argv: List[str], barrier) -> None:  # a forked child: one `python -m mlbuild.publish`
    barrier.wait()
    os._exit(cli.main(argv))


def _publish_at_once(tmp: Path, layout: Path, round: str, *extra: str) -> List[dict]:
    config, data_dir = tmp / "pipeline" / "pipeline.yaml", tmp / "pipeline" / "sample_data"
    argv = [
        "--layout",
        str(layout),
        "--ref-name",
        "tiny:1",
        "--config",
        str(config),
        "--address",
        ADDRESS,
        "--data-dir",
        str(data_dir),
        "--pex-sha256",
        "a" * 64,
        "--git-sha",
        "0" * 40,
        "--backend",
        "local",
        "--local-root",
        str(tmp / "local"),
    ]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(N)
    reports = [tmp / f"report-{round}-{i}" for i in range(N)]
    children = [ctx.Process(target=_publish, args=([*argv, "--report-dir", str(r), *extra], barrier)) for r in reports]
    for child in children:
        child.start()
    for child in children:
        child.join(600)
    assert [child.exitcode for child in children] == [0] * N
    return [json.loads((r / "report.json").read_text()) for r in reports]


def _trainings(tmp: Path) -> List[Path]:
    """Run folders in which `train` ran to the end (it writes model/model.txt last but one)."""
    parent = local_run.run_dir_parent(tmp / "local" / "runs", ADDRESS)
    runs = [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    return [r for r in runs if (r / "model" / "model.txt").is_file()]


def test_real_concurrent_publishes(layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "lineage"))
    write_pipeline(tmp_path / "pipeline")
    reports = _publish_at_once(tmp_path, layout, "identical")
    assert len(_trainings(tmp_path)) == 1
    assert len({r["job_name"] for r in reports}) == 1 and sorted(r["reused"] for r in reports) == [False] + [True] * (
        N - 1
    )

    forced = _publish_at_once(tmp_path, layout, "forced", "--force")
    assert len({r["job_name"] for r in forced}) == N and len(_trainings(tmp_path)) == 1 + N
    for report in forced:
        assert Path(report["model"]["uri"]).is_file() and report["status"] == "Completed"

    records = Store(tmp_path / "lineage", strict=True).records()  # NB: strict: every file hashes to its name
    jobs = [r.get("job.name") for r in records if r.kind == "publish"]
    assert sorted(jobs) == sorted({r["job_name"] for r in reports + forced})
