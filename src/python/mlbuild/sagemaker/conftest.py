"""Shared test fixtures: a sample pipeline config, request inputs and a moto server."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator

import pytest

from mlbuild.runtime.config import PipelineConfig, parse_config
from mlbuild.sagemaker.moto_server import moto_server, reset_moto

CONFIG_SOURCE = "src/python/pipelines/demo/pipeline.yaml"
CONFIG_TEXT = """
hyperparameters:
  learning_rate: {type: float, default: 0.05, min: 0.001, max: 1.0}
  max_depth: {type: int, default: 4, min: 1, max: 32}
  loss: {type: str, default: log_loss, choices: [log_loss, squared_error]}
  early_stopping: false
channels:
  train:
    s3: s3://demo-bucket/demo/data/train/
    content_type: text/csv
  validation:
    s3: s3://demo-bucket/demo/data/validation/
    distribution: ShardedByS3Key
    input_mode: FastFile
sagemaker:
  role: arn:aws:iam::123456789012:role/MLBuildSageMakerTraining
  instance_type: ml.m5.xlarge
  instance_count: 2
  volume_size_gb: 50
  max_runtime_seconds: 7200
  output_path: s3://demo-bucket/demo/models/
  region: us-east-1
"""
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
IMAGE_URI = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlbuild/demo@{DIGEST}"
ADDRESS = "src/python/pipelines/demo:train"
GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
PEX_SHA256 = "ef" * 32
METRICS = ["validation:auc", "validation:log_loss"]


def make_config(text: str = CONFIG_TEXT) -> PipelineConfig:
    return parse_config(text, CONFIG_SOURCE)


def request_inputs(**overrides: Any) -> Dict[str, Any]:
    config = overrides.pop("config", None) or make_config()
    inputs: Dict[str, Any] = dict(
        image_uri=IMAGE_URI,
        hyperparameter_values=dict(config.defaults),
        pipeline_address=ADDRESS,
        git_sha=GIT_SHA,
        pex_sha256=PEX_SHA256,
        metric_names=METRICS,
    )
    inputs.update(overrides)
    return inputs


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A clean moto, and an environment in which boto3 finds only it."""
    reset_moto(moto_endpoint)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # NB: keep the developer's ~/.aws out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_endpoint
