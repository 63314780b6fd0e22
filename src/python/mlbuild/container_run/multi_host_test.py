from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.container_run import host_group, multi_host
from mlbuild.container_run.sandbox import SandboxSpec, bwrap_argv
from mlbuild.runtime.config import parse_config
from mlbuild.runtime.errors import DataError, UserError

CONFIG = parse_config(
    "channels:\n  train: {distribution: ShardedByS3Key}\n  validation: {}\nsagemaker: {checkpoint_s3_uri: 's3://bucket/c/'}\n",
    "src/python/pipelines/x/pipeline.yaml",
)


def _channels(tmp_path: Path, n: int) -> dict[str, Path]:
    for i in range(n):
        (tmp_path / "train/sub").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"train/sub/p{i}.csv").write_text(str(i))
    (tmp_path / "validation").mkdir(exist_ok=True)
    (tmp_path / "validation/v.csv").write_text("v")
    return {"train": tmp_path / "train", "validation": tmp_path / "validation"}


def test_plan_and_lay_out_hosts(tmp_path: Path) -> None:
    channels = _channels(tmp_path, 3)
    plans = multi_host.plan_hosts(CONFIG, channels, 2)
    assert [p.shares["train"] for p in plans] == [("sub/p0.csv", "sub/p2.csv"), ("sub/p1.csv",)]
    assert plans[1].shares["validation"] == ("v.csv",)
    job = tmp_path / "job"
    (job / "input/config").mkdir(parents=True)
    (job / "input/config/hyperparameters.json").write_text("{}")
    ml = multi_host.lay_out_host(job, plans[1], ["algo-1", "algo-2"], CONFIG)
    assert json.loads((ml / "input/config/resourceconfig.json").read_text())["current_host"] == "algo-2"
    assert (ml / "input/config/hyperparameters.json").read_text() == "{}"
    assert (ml / "input/data/train/sub/p1.csv").read_bytes() == b""  # a stand-in to bind over
    assert not (ml / "input/data/train/sub/p0.csv").exists() and (ml / "checkpoints").is_dir()
    spec = multi_host.host_sandbox(
        SandboxSpec(tmp_path / "root", job, ("/t",), {"PATH": "/bin"}, checkpoints=tmp_path / "store"),
        job,
        plans[1],
        CONFIG,
        channels,
    )
    argv = " ".join(bwrap_argv(spec))
    assert f"--ro-bind {ml}/input/data/train /opt/ml/input/data/train" in argv
    assert f"--ro-bind {channels['train']}/sub/p1.csv /opt/ml/input/data/train/sub/p1.csv" in argv
    assert "p0.csv" not in argv and f"--ro-bind {channels['validation']} /opt/ml/input/data/validation" in argv
    assert f"--bind {tmp_path}/store /opt/ml/checkpoints" in argv and "/etc/hosts" in argv
    assert "--hostname algo-2" in argv and "--setenv HOSTNAME algo-2" in argv and "--share-net" in argv


def test_more_hosts_than_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="pipeline.yaml: `channels.train.distribution` is ShardedByS3Key over 1 object"):
        multi_host.plan_hosts(CONFIG, _channels(tmp_path, 1), 2)


def test_instance_count_bounds() -> None:
    with pytest.raises(UserError, match="--instance-count: instance count 0.*Fix"):
        multi_host.check_instance_count(0, "--instance-count")


def _hosts(job: Path, models: dict[str, dict[str, bytes]]) -> list[multi_host.HostPlan]:
    plans = [multi_host.HostPlan(i, name, f"127.0.1.{i + 1}", {}) for i, name in enumerate(models)]
    for plan in plans:
        for rel, data in models[plan.name].items():
            path = plan.ml_dir(job) / "model" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return plans


def test_models_merge_and_the_leader_gives_the_metrics(tmp_path: Path) -> None:
    plans = _hosts(
        tmp_path,
        {
            "algo-1": {"model.txt": b"m", "metrics.json": b'{"a": 1}'},
            "algo-2": {"model.txt": b"m", "metrics.json": b'{"a": 2}', "extra/w2.bin": b"2"},
        },
    )
    assert multi_host.merge_models(tmp_path, plans) is None
    assert (tmp_path / "model/metrics.json").read_bytes() == b'{"a": 1}'
    assert (tmp_path / "model/extra/w2.bin").read_bytes() == b"2" and (
        tmp_path / "model/model.txt"
    ).read_bytes() == b"m"


def test_a_model_conflict_names_both_hosts_and_the_fix(tmp_path: Path) -> None:
    plans = _hosts(tmp_path, {"algo-1": {"model.txt": b"a"}, "algo-2": {"model.txt": b"b"}})
    problem = multi_host.merge_models(tmp_path, plans)
    assert (
        problem is not None
        and "hosts algo-1 and algo-2 both wrote /opt/ml/model/model.txt" in problem
        and "ctx.is_leader" in problem
    )


def test_host_failure_names_the_host(tmp_path: Path) -> None:
    plans = _hosts(tmp_path, {"algo-1": {}, "algo-2": {}})
    (plans[1].ml_dir(tmp_path) / "output").mkdir(parents=True)
    (plans[1].ml_dir(tmp_path) / "output/failure").write_text("ValueError: bad shard\n")
    results = {"algo-1": {"exit_code": -9, "stopped": True}, "algo-2": {"exit_code": 2, "stopped": False}}
    code, reason = multi_host.host_failure(tmp_path, plans, results, 1)  # type: ignore[misc]
    assert code == 2 and reason.startswith("host algo-2 failed (exit code 2): ValueError: bad shard.")
    assert "(algo-1) were stopped" in reason
    assert multi_host.host_failure(tmp_path, plans, {"algo-1": {"exit_code": 0}, "algo-2": {"exit_code": 0}}, 0) is None
    code, reason = multi_host.host_failure(tmp_path, plans, None, 1, ["bwrap: Unexpected capabilities but not setuid", ""])  # type: ignore[misc]
    assert code == 1 and "'bwrap: Unexpected capabilities but not setuid'" in reason and "--instance-count 1" in reason


def test_prefix_lines() -> None:
    out, rest = host_group.prefix_lines("algo-2", b"one\ntwo\nthr", b"")
    assert out == b"[algo-2] one\n[algo-2] two\n" and rest == b"thr"
    out, rest = host_group.prefix_lines("algo-2", b"ee\n", rest)
    assert out == b"[algo-2] three\n" and rest == b""
