from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.runtime import contract
from mlbuild.runtime.contract import TrainingEnvironment
from mlbuild.runtime.errors import UserError

# What SageMaker writes on the second host of a 3-instance job (hosts unsorted, as it may list them).
SAGEMAKER_RESOURCE_CONFIG = {
    "current_host": "algo-2",
    "current_instance_type": "ml.p3.8xlarge",
    "current_group_name": "homogeneousCluster",
    "hosts": ["algo-10", "algo-2", "algo-1"],
    "instance_groups": [
        {
            "instance_group_name": "homogeneousCluster",
            "instance_type": "ml.p3.8xlarge",
            "hosts": ["algo-2", "algo-10", "algo-1"],
        }
    ],
    "network_interface_name": "ethwe",
}


def _env(tmp_path: Path, resource: object, checkpoint: object = None) -> TrainingEnvironment:
    config = tmp_path / "input/config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(json.dumps(resource))
    if checkpoint is not None:
        (config / "checkpointconfig.json").write_text(json.dumps(checkpoint))
    return TrainingEnvironment.load(tmp_path)


def test_hosts_are_read_as_sagemaker_writes_them(tmp_path: Path) -> None:
    env = _env(tmp_path, SAGEMAKER_RESOURCE_CONFIG)
    assert env.hosts == ["algo-1", "algo-2", "algo-10"]  # numeric order: algo-2 before algo-10
    assert env.current_host == "algo-2" and env.host_index == 1 and not env.is_leader
    assert env.network_interface == "ethwe"
    assert env.current_instance_type == "ml.p3.8xlarge"
    assert env.instance_groups[0]["instance_group_name"] == "homogeneousCluster"


def test_the_first_sorted_host_leads(tmp_path: Path) -> None:
    env = _env(tmp_path, {**SAGEMAKER_RESOURCE_CONFIG, "current_host": "algo-1"})
    assert env.is_leader and env.host_index == 0


def test_single_host_defaults(tmp_path: Path) -> None:
    env = TrainingEnvironment.load(tmp_path)
    assert env.hosts == ["algo-1"] and env.is_leader and env.network_interface == "eth0"
    assert env.instance_groups == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "local", "hosts": ["algo-1"]}
    ]
    assert env.checkpoint_config == {}


def test_current_host_must_be_a_host(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="`current_host` 'algo-3' is not among `hosts`"):
        _ = _env(tmp_path, {"current_host": "algo-3", "hosts": ["algo-1"]}).hosts


def test_written_resource_config_reads_back(tmp_path: Path) -> None:
    written = contract.resource_config("algo-2", ["algo-1", "algo-2"], "ml.m5.large")
    env = _env(tmp_path, written, contract.checkpoint_config("s3://b/ckpt/"))
    assert env.hosts == ["algo-1", "algo-2"] and env.current_group_name == "homogeneousCluster"
    assert env.checkpoint_config == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://b/ckpt/"}


def test_host_names() -> None:
    assert [contract.host_name(i) for i in range(3)] == ["algo-1", "algo-2", "algo-3"]
    assert sorted(["algo-10", "algo-9", "other"], key=contract.host_sort_key) == ["algo-9", "algo-10", "other"]
