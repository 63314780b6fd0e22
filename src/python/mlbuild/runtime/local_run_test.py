"""Run folders: claimed atomically by concurrent runs; a killed run's staging folder swept later."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlbuild.runtime import local_run
from mlbuild.runtime.config import parse_config

CONFIG = parse_config("hyperparameters: {depth: 3}\nchannels: {train: {}}\n", "pipeline.yaml")
ADDRESS = "src/python/pipelines/toy:train"


def _data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "train").mkdir(parents=True, exist_ok=True)
    return tmp_path / "data"


def _stage(tmp_path: Path, barrier, results) -> None:  # runs in a forked child
    write = local_run._write_json
    waited: list = []

    def write_after_everyone_chose(path: Path, value: object) -> None:
        # NB: widens the race on purpose: every child has picked its folder before any writes.
        if not waited:
            waited.append(barrier.wait())
        write(path, value)

    local_run._write_json = write_after_everyone_chose
    try:
        results.put(str(local_run.prepare_run(CONFIG, ADDRESS, _data(tmp_path), tmp_path / "runs", {})))
    except Exception as e:  # NB: reported to the test, which fails on it
        results.put(f"error: {e!r}")


def test_concurrent_runs_with_the_same_id_get_distinct_staging_folders(tmp_path: Path, monkeypatch) -> None:
    """Issue 11 item 4: the exists()-then-create loop let simultaneous runs share one folder."""
    frozen = time.gmtime()
    monkeypatch.setattr(local_run.time, "gmtime", lambda *a: frozen)  # NB: every run in "the same second"
    _data(tmp_path)
    ctx = multiprocessing.get_context("fork")
    n = 12
    barrier, results = ctx.Barrier(n), ctx.Queue()
    children = [ctx.Process(target=_stage, args=(tmp_path, barrier, results)) for _ in range(n)]
    for child in children:
        child.start()
    staged = sorted(results.get(timeout=30) for _ in children)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert not [s for s in staged if s.startswith("error")] and len(set(staged)) == n, staged
    first = min((Path(s).name for s in staged), key=len)[1 : -len(".incomplete")]
    assert {Path(s).name for s in staged} == {f".{first}.incomplete"} | {
        f".{first}-{i}.incomplete" for i in range(2, n + 1)
    }
    finals = {local_run.finish_run(Path(s), succeeded=True).name for s in staged}
    assert len(finals) == n and not any((Path(s) / local_run.OWNER_FILE).exists() for s in finals)


def test_a_finished_run_id_is_not_claimed_again(tmp_path: Path, monkeypatch) -> None:
    frozen = time.gmtime()
    monkeypatch.setattr(local_run.time, "gmtime", lambda *a: frozen)
    first = local_run.finish_run(
        local_run.prepare_run(CONFIG, ADDRESS, _data(tmp_path), tmp_path / "runs", {}), succeeded=False
    )
    second = local_run.prepare_run(CONFIG, ADDRESS, _data(tmp_path), tmp_path / "runs", {})
    assert first.name.endswith(".failed") and second.name == f".{first.name[: -len('.failed')]}-2.incomplete"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path: Path, capsys) -> None:
    """A run killed with -9 leaves `.<id>.incomplete` behind; the next run removes it."""
    parent = local_run.run_dir_parent(tmp_path / "runs", ADDRESS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cases = {
            "killed": (dead.pid, 120, False),  # owner gone, past the grace: removed
            "young": (dead.pid, 5, True),  # owner gone but just made: maybe another pid namespace's
            "running": (live.pid, 120, True),  # owner alive: a run in progress
            "ancient": (live.pid, local_run.STALE_SECONDS + 60, False),  # a day old: the pid was reused
            "no-owner": (None, 120, True),  # an older mlbuild's folder, young: kept
            "no-owner-old": (None, local_run.STALE_SECONDS + 60, False),
            "other-host": (
                f"{dead.pid} elsewhere.example",
                120,
                True,
            ),  # another machine's run: its pid means nothing here
            "this-host": (f"{dead.pid} {socket.gethostname()}", 120, False),
        }
        for name, (pid, age, _) in cases.items():
            staging = parent / f".{name}.incomplete"
            (staging / "input" / "data").mkdir(parents=True)
            (staging / "input" / "data" / "train").symlink_to(tmp_path / "data" / "train", target_is_directory=True)
            if pid is not None:
                (staging / local_run.OWNER_FILE).write_text(f"{pid}\n")
            _age(staging, age)
        (parent / "finished").mkdir()
        _age(parent / "finished", local_run.STALE_SECONDS + 60)
        staging = local_run.prepare_run(CONFIG, ADDRESS, _data(tmp_path), tmp_path / "runs", {})
    finally:
        live.kill()
        live.wait()
    left = {p.name for p in parent.iterdir()}
    assert left == {staging.name, "finished"} | {f".{name}.incomplete" for name, (_, _, kept) in cases.items() if kept}
    assert (tmp_path / "data" / "train").is_dir()  # NB: the channel link was removed, not followed
    err = capsys.readouterr().err
    assert f"removed {parent / '.killed.incomplete'}: a run whose process is gone" in err
    assert (staging / local_run.OWNER_FILE).read_text().strip() == f"{os.getpid()} {socket.gethostname()}"


@pytest.mark.parametrize("owner", ["", "not a pid", "-5"])
def test_an_unreadable_owner_file_counts_as_a_dead_owner(tmp_path: Path, owner: str) -> None:
    staging = tmp_path / ".x.incomplete"
    staging.mkdir()
    (staging / local_run.OWNER_FILE).write_text(owner)
    _age(staging, 120)
    assert local_run.is_stale_run(staging)
    _age(staging, 5)
    assert not local_run.is_stale_run(staging)


CHECKPOINTED = parse_config(
    "hyperparameters: {depth: 3}\nchannels: {train: {}}\nsagemaker: {checkpoint_s3_uri: 's3://bucket/ckpt/'}\n",
    "pipeline.yaml",
)


def test_checkpoints_survive_a_rerun_of_the_same_job(tmp_path: Path) -> None:
    """Issue 12 item 5: a re-run with the same hyperparameters finds the earlier run's checkpoints."""
    import json

    from mlbuild.runtime import contract

    first = local_run.prepare_run(CHECKPOINTED, ADDRESS, _data(tmp_path), tmp_path / "runs", {})
    assert json.loads((first / contract.CHECKPOINT_CONFIG_FILE).read_text()) == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": "s3://bucket/ckpt/",
    }
    (first / "checkpoints" / "checkpoint-000000001.bin").write_bytes(b"step 1")
    local_run.finish_run(first, succeeded=False)  # killed or failed: the checkpoint stays
    again = local_run.prepare_run(CHECKPOINTED, ADDRESS, _data(tmp_path), tmp_path / "runs", {})
    assert (again / "checkpoints" / "checkpoint-000000001.bin").read_bytes() == b"step 1"
    other = local_run.prepare_run(CHECKPOINTED, ADDRESS, _data(tmp_path), tmp_path / "runs", {"depth": "4"})
    assert list((other / "checkpoints").iterdir()) == []  # other hyperparameters: another job


def test_no_checkpoint_config_without_a_checkpoint_uri(tmp_path: Path) -> None:
    from mlbuild.runtime import contract

    staging = local_run.prepare_run(CONFIG, ADDRESS, _data(tmp_path), tmp_path / "runs", {})
    assert not (staging / contract.CHECKPOINT_CONFIG_FILE).exists() and not (staging / "checkpoints").exists()


def test_a_job_on_more_hosts_keeps_its_own_checkpoints(tmp_path: Path) -> None:
    one = local_run.checkpoints_store(tmp_path, "abcd1234")
    two = local_run.checkpoints_store(tmp_path, "abcd1234", host_count=2)
    assert one != two and one.is_dir() and two.name == "abcd1234-2hosts"
