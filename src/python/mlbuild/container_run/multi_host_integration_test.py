"""Integration: a REAL image run on 2 and 3 local hosts under bwrap.

The hosts find each other by name (algo-1..N) on a loopback-only network, each sees its own
share of a ShardedByS3Key channel, the log is one stream prefixed per host, and one failing
host fails the job, naming it. Skips like container_run_integration_test.py.
"""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Iterator, List

import pytest

from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.container_run.testing import MULTI_HOST_TRAIN_SCRIPT, non_loopback_addresses, reaches, real_train_image
from mlbuild.runtime.config import load_config
from mlbuild.runtime.errors import DataError

ADDRESS = "src/python/pipelines/tiny:train"
CONFIG = """\
hyperparameters:
  label: run
  probe: ""
  wait_s: 60
channels:
  train: {distribution: ShardedByS3Key}
  validation: {}
sagemaker:
  instance_count: 2
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_train_image(tmp_path_factory.mktemp("image"), script=MULTI_HOST_TRAIN_SCRIPT)


@pytest.fixture(scope="module")
def rootfs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked-image cache (content-addressed): shared so each test does not unpack the base again."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def env(image: Path, rootfs_cache: Path, tmp_path: Path) -> dict:
    """A pipeline of this test's own: its config, data and runs folder."""
    root = tmp_path / "pipeline"
    (root / "data/train").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(CONFIG)
    for i in range(5):
        (root / f"data/train/part-{i}.csv").write_text("".join(f"{i},{j}\n" for j in range(i + 1)))
    (root / "data/validation").mkdir(parents=True)
    (root / "data/validation/v.csv").write_text("1\n")
    return {
        "layout_dir": image,
        "ref": None,
        "config": load_config(root / "pipeline.yaml"),
        "address": ADDRESS,
        "data_dir": root / "data",
        "runs_dir": root / "runs",
        "cache_dir": rootfs_cache,
        "use_gpus": False,
    }


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on every address of this machine, for the route-out probe."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen(16)
        yield server


def _run(env: dict, **kwargs: object) -> tuple:
    out = io.StringIO()
    overrides = kwargs.pop("overrides", {})
    outcome = run_image(RunPlan(**env, overrides=overrides, **kwargs), stream=out)  # type: ignore[arg-type]
    return outcome, out.getvalue()


def test_two_hosts_find_each_other_and_split_the_shards(env: dict) -> None:
    outcome, out = _run(env)  # instance_count from the config: 2
    assert outcome.exit_code == 0, out
    hosts = {h: json.loads((outcome.model_dir / f"{h}.json").read_text()) for h in ("algo-1", "algo-2")}
    assert hosts["algo-1"]["address"] == "127.0.1.1" and hosts["algo-2"]["address"] == "127.0.1.2"
    assert hosts["algo-2"]["hostname"] == "algo-2"
    # NB: connected by name; the source address is lo's primary one (127.0.0.1), as the kernel picks it.
    assert [name for name, peer in hosts["algo-1"]["got"]] == ["algo-2"]
    # NB: like SageMaker's platform, the runner sets no SM_* variable: the image's toolkit (mlbuild's train) does.
    assert hosts["algo-1"]["sm_free"] and hosts["algo-2"]["sm_free"]
    # ShardedByS3Key: keys 0, 2, 4 to algo-1 and 1, 3 to algo-2; disjoint, covering the channel.
    assert hosts["algo-1"]["files"] == ["part-0.csv", "part-2.csv", "part-4.csv"]
    assert hosts["algo-2"]["files"] == ["part-1.csv", "part-3.csv"]
    assert outcome.metrics == {"rows_leader": 1 + 3 + 5}
    log = (outcome.run_dir / "output/train.log").read_text()
    assert "[algo-1] host algo-1" in log and "[algo-2] host algo-2" in log and "[algo-2] host algo-1" not in log
    record = json.loads((outcome.run_dir / "output/hosts.json").read_text())
    assert record["instance_count"] == 2 and record["hosts"][1]["channels"]["train"]["keys"] == [
        "part-1.csv",
        "part-3.csv",
    ]
    resource = json.loads((outcome.run_dir / "hosts/algo-2/input/config/resourceconfig.json").read_text())
    assert resource["current_host"] == "algo-2" and resource["hosts"] == ["algo-1", "algo-2"]
    assert json.loads((outcome.run_dir / "input/config/resourceconfig.json").read_text())["current_host"] == "algo-1"


def test_no_route_out_of_the_job_network(env: dict, listener: socket.socket) -> None:
    """The hosts cannot reach a listener on this machine, by loopback or by its other addresses."""
    port = listener.getsockname()[1]
    targets = [f"{address}:{port}" for address in ["127.0.0.1", *non_loopback_addresses()]]
    # The positive control: the same probe, outside the sandbox, reaches the listener at every address.
    assert {t: reaches(t) for t in targets} == {t: True for t in targets}
    outcome, out = _run(env, overrides={"probe": " ".join(targets)})
    assert outcome.exit_code == 0, out
    for host in ("algo-1", "algo-2"):
        assert json.loads((outcome.model_dir / f"{host}.json").read_text())["reached"] == {t: False for t in targets}
    assert _accepted(listener) == len(targets)  # the control's connections, none from the hosts


def _accepted(listener: socket.socket) -> int:
    listener.setblocking(False)
    count = 0
    while True:
        try:
            listener.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


def test_a_leader_waiting_for_a_host_that_never_connects_fails_in_time(env: dict) -> None:
    outcome, out = _run(env, overrides={"label": "silent", "wait_s": "3"})
    assert outcome.exit_code == 4, out
    assert "algo-1 waited 3 s for the other hosts; only [] connected" in outcome.failure_reason


def test_the_override_flag_beats_the_config(env: dict) -> None:
    outcome, out = _run(env, instance_count=3)
    assert outcome.exit_code == 0, out
    got = json.loads((outcome.model_dir / "algo-1.json").read_text())["got"]
    assert [name for name, _ in got] == ["algo-2", "algo-3"]
    assert json.loads((outcome.model_dir / "algo-3.json").read_text())["address"] == "127.0.1.3"


def test_one_failing_host_fails_the_job_and_is_named(env: dict) -> None:
    outcome, out = _run(env, overrides={"label": "fail"})
    assert outcome.exit_code == 3, out
    assert outcome.run_dir.name.endswith(".failed")
    assert outcome.failure_reason.startswith("host algo-2 failed (exit code 3): DataError: algo-2 was told to fail")
    assert "algo-1" in outcome.failure_reason  # the leader, waiting for it, was stopped


def test_more_hosts_than_shards_is_refused_before_anything_runs(env: dict) -> None:
    with pytest.raises(DataError, match="ShardedByS3Key over 5 object.*instance_count` is 6"):
        _run(env, instance_count=6)
    assert _files(env["runs_dir"]) == []


def _files(folder: Path) -> List[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("count", [1, 2])
def test_checkpoints_survive_a_rerun_on_every_host(env: dict, tmp_path: Path, count: int) -> None:
    """Issue 12 item 5: /opt/ml/checkpoints is the job's store, kept between runs of the same job."""
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG + "  checkpoint_s3_uri: s3://bucket/ckpt/\n")
    job = {**env, "config": load_config(config), "runs_dir": tmp_path / "runs"}
    first, out = _run(job, instance_count=count)
    assert first.exit_code == 0, out
    again, out = _run(job, instance_count=count)
    assert again.exit_code == 0, out
    for host in ("algo-1", "algo-2")[:count]:
        report = json.loads((again.model_dir / f"{host}.json").read_text())
        assert report["checkpoint_runs"] == 2  # the second run saw the first run's file
        assert report["checkpoint_config"] == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://bucket/ckpt/"}
    assert (again.run_dir / "checkpoints").is_symlink()
    # N hosts: another job than one host, with its own store
    assert (again.run_dir / "checkpoints").resolve().name.endswith("-2hosts") == (count == 2)


def test_gpu_devices_and_driver_reach_the_sandbox(env: dict, tmp_path: Path) -> None:
    """Issue 12 item 6, with a fake /dev (no GPU here): the nodes and libcuda are bound in, LD_LIBRARY_PATH set."""
    from mlbuild.container_run import gpu

    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (dev / name).write_text("")
    lib = tmp_path / "libcuda.so.580"
    lib.write_text("fake driver")
    binds = gpu.discover(dev, f"\tlibcuda.so.1 (libc6,x86-64) => {lib}\n")
    outcome, out = _run({**env, "use_gpus": True}, instance_count=1, gpu_binds=binds)
    assert outcome.exit_code == 0, out
    report = json.loads((outcome.model_dir / "algo-1.json").read_text())
    assert report["gpus"] == ["nvidia0", "nvidia1", "nvidiactl"]
    assert report["libcuda"] == "fake driver" and report["ld_library_path"].endswith("/usr/local/nvidia/lib64")
    assert "GPUs: 2" in out
