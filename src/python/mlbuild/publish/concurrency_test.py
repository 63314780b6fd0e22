"""Concurrent local publishes: N identical ones train once and the others
reuse that job; N `--force` ones make N distinct jobs; the lineage store stays consistent.

Each publish is a separate (forked) process running the real `python -m mlbuild.publish`
entry point against one `--local-root` and one lineage store. Only the container run is
replaced: by one that stages a real run folder (local_run), takes a moment to "train" and
counts itself, because the claim is what is under test, not bubblewrap.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import List

import pytest

from mlbuild.container_run.testing import write_image, write_pipeline
from mlbuild.lineage.store import ROOT_ENV_VAR, Store
from mlbuild.oci.layer import LayerEntry
from mlbuild.publish import cli, local
from mlbuild.publish.testing import fake_run_image
from mlbuild.runtime import local_run

ADDRESS = "src/python/pipelines/tiny:train"
N = 6


def _publish(argv: List[str], barrier) -> None:  # a forked child: one `python -m mlbuild.publish`
    barrier.wait()
    os._exit(cli.main(argv))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    config, data_dir = write_pipeline(tmp_path / "pipeline")
    layout = tmp_path / "layout"
    write_image(layout, tmp_path / "blobs", [[LayerEntry.file("/usr/local/bin/train", b"#!/bin/true\n", 0o755)]])
    monkeypatch.setattr(local, "run_image", fake_run_image(tmp_path / "trainings.txt"))
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "lineage"))
    argv = [
        "--layout",
        str(layout),
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
        str(tmp_path / "local"),
    ]
    return {"tmp": tmp_path, "argv": argv}


def _publish_at_once(env: dict, *extra: str) -> List[dict]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(N)
    children = [
        ctx.Process(
            target=_publish, args=([*env["argv"], "--report-dir", str(env["tmp"] / f"report-{i}"), *extra], barrier)
        )
        for i in range(N)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * N
    return [json.loads((env["tmp"] / f"report-{i}" / "report.json").read_text()) for i in range(N)]


def _trainings(env: dict) -> int:
    path = env["tmp"] / "trainings.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _run_dirs(env: dict) -> List[Path]:
    parent = local_run.run_dir_parent(env["tmp"] / "local" / "runs", ADDRESS)
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())


def _assert_store_consistent(env: dict) -> List[str]:
    """Every record hashes to its name (a strict load fails otherwise); one publish record per job."""
    records = Store(env["tmp"] / "lineage", strict=True).records()
    jobs = [r.get("job.name") for r in records if r.kind == "publish"]
    assert len(jobs) == len(set(jobs)), jobs
    on_disk = sorted(p.stem for p in (env["tmp"] / "lineage" / "records").iterdir())
    assert on_disk == sorted(r.id for r in records)
    return jobs


def test_identical_concurrent_publishes_train_once_and_the_others_reuse_it(env: dict) -> None:
    reports = _publish_at_once(env)
    assert _trainings(env) == 1
    assert len(_run_dirs(env)) == 1
    assert len({r["job_name"] for r in reports}) == 1
    assert sorted(r["reused"] for r in reports) == [False] + [True] * (N - 1)
    assert {r["run_dir"] for r in reports} == {str(_run_dirs(env)[0])}
    job_dirs = sorted((env["tmp"] / "local" / "jobs").iterdir())
    assert len(job_dirs) == 1 and json.loads((job_dirs[0] / local.JOB_FILE).read_text())["status"] == "Completed"
    assert _assert_store_consistent(env) == [reports[0]["job_name"]]


def test_forced_concurrent_publishes_make_distinct_jobs(env: dict) -> None:
    reports = _publish_at_once(env, "--force")
    names = {r["job_name"] for r in reports}
    assert len(names) == N and not any(r["reused"] for r in reports)
    assert _trainings(env) == N and len(_run_dirs(env)) == N
    for name in names:  # NB: each job kept its own job.json and model, none overwritten
        record = json.loads((env["tmp"] / "local" / "jobs" / name / local.JOB_FILE).read_text())
        assert record["job_name"] == name and Path(record["model"]["uri"]).is_file()
        assert record["run_dir"] in {r["run_dir"] for r in reports if r["job_name"] == name}
    assert sorted(_assert_store_consistent(env)) == sorted(names)
    # NB: then N unforced ones: their job (no -r<time> suffix) is new, so trained once, and reused N-1 times
    reports = _publish_at_once(env)
    assert _trainings(env) == N + 1
    assert len({r["job_name"] for r in reports}) == 1
    assert len(_assert_store_consistent(env)) == N + 1
