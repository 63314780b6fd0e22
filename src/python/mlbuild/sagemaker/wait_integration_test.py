"""Following a job against a moto server: SageMaker, CloudWatch Logs and S3 over HTTP."""

from __future__ import annotations

import hashlib
import time
from typing import List

from mlbuild.sagemaker.aws import TRAINING_JOB_LOG_GROUP, Clients
from mlbuild.sagemaker.conftest import make_config, request_inputs
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.links import model_artifact_uri
from mlbuild.sagemaker.submit import submit
from mlbuild.sagemaker.wait import follow


def test_follow_streams_logs_and_hashes_the_artifact(aws: str) -> None:
    clients = Clients.create()
    config = make_config()
    request = build_request(config, **request_inputs(config=config))
    job = submit(request, pipeline_name="demo-train", sagemaker=clients.sagemaker).job_name

    stream = f"{job}/algo-1-1700000000"
    clients.logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    clients.logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    now_ms = int(time.time() * 1000)  # NB: CloudWatch (and moto) drop events older than 14 days
    clients.logs.put_log_events(
        logGroupName=TRAINING_JOB_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms + i, "message": f"line {i}"} for i in range(3)],
    )
    payload = b"not really a tarball" * 1000
    artifact = model_artifact_uri("s3://demo-bucket/demo/models/", job)
    clients.s3.create_bucket(Bucket="demo-bucket")
    clients.s3.put_object(Bucket="demo-bucket", Key=artifact.split("/", 3)[3], Body=payload)

    lines: List[str] = []
    outcome = follow(
        job, sagemaker=clients.sagemaker, logs=clients.logs, s3=clients.s3, out=lines.append, sleep=lambda _: None
    )
    assert outcome.status == "Completed" and outcome.exit_code == 0  # moto completes jobs at once
    assert [line for line in lines if line.startswith("[algo-1")] == [f"[algo-1-1700000000] line {i}" for i in range(3)]
    assert outcome.log_stream == stream
    assert outcome.model_artifact == artifact
    assert outcome.artifact_sha256 == hashlib.sha256(payload).hexdigest()
    assert any(line.endswith("Status: Completed") for line in lines)
