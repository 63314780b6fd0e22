"""The multi-instance spot request with checkpoints, accepted by SageMaker's API (moto on loopback)."""

from __future__ import annotations

from mlbuild.sagemaker.aws import Clients
from mlbuild.sagemaker.conftest import make_config, request_inputs
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.job_request_test import SPOT_MULTI


def test_moto_accepts_and_returns_the_spot_multi_instance_request(aws: str) -> None:
    config = make_config(SPOT_MULTI)
    request = build_request(config, **request_inputs(config=config))
    client = Clients.create().sagemaker
    client.create_training_job(TrainingJobName="demo-spot-2", **request)
    described = client.describe_training_job(TrainingJobName="demo-spot-2")
    assert described["ResourceConfig"]["InstanceCount"] == 2
    assert described["EnableManagedSpotTraining"] is True
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 10800}
    assert described["CheckpointConfig"] == {"S3Uri": "s3://demo-bucket/ckpt/", "LocalPath": "/opt/ml/checkpoints"}
    shards = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in described["InputDataConfig"]
    }
    assert shards == {"train": "FullyReplicated", "validation": "ShardedByS3Key"}
