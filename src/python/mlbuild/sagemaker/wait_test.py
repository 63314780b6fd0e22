"""Following a job: status transitions, log lines, final metrics and the artifact's sha256.

CloudWatch Logs and S3 are moto's (the `aws` fixture); only SageMaker's describe is scripted,
because moto completes a job at once and the transitions between polls are what is tested
here (wait_integration_test follows a moto job end to end). The clock is injected: no test sleeps.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Dict, List

import pytest
from botocore.exceptions import ClientError

from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.aws import TRAINING_JOB_LOG_GROUP, Clients
from mlbuild.sagemaker.errors import JobFailedError, WaitTimeoutError
from mlbuild.sagemaker.wait import elapsed_label, follow

JOB = "demo-0123456789ab"
BUCKET = "demo-bucket"
ARTIFACT = f"s3://{BUCKET}/models/{JOB}/output/model.tar.gz"


def _missing(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "nope"}}, operation)


def job(status: str, secondary: str, transitions: List[tuple], **extra: Any) -> Dict[str, Any]:
    return {
        "TrainingJobName": JOB,
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "SecondaryStatusTransitions": [{"Status": s, "StatusMessage": m} for s, m in transitions],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        **extra,
    }


class ScriptedSageMaker:
    def __init__(self, states: List[Dict[str, Any]]) -> None:
        self.states = states
        self.calls = 0

    def describe_training_job(self, TrainingJobName: str) -> Dict[str, Any]:
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return state


def _put_lines(clients: Clients, stream: str, lines: List[str]) -> None:
    """Append log events to a stream, making the group and stream the first time (as SageMaker does)."""
    existing = clients.logs.describe_log_groups(logGroupNamePrefix=TRAINING_JOB_LOG_GROUP)["logGroups"]
    if not existing:
        clients.logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
        clients.logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    now_ms = int(time.time() * 1000)  # NB: CloudWatch (and moto) drop events older than 14 days
    events = [{"timestamp": now_ms + i, "message": line} for i, line in enumerate(lines)]
    clients.logs.put_log_events(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream, logEvents=events)


def _bucket(clients: Clients, objects: Dict[str, bytes]) -> None:
    clients.s3.create_bucket(Bucket=BUCKET)
    for uri, body in objects.items():
        clients.s3.put_object(Bucket=BUCKET, Key=uri[len(f"s3://{BUCKET}/") :], Body=body)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.hooks: List[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in self.hooks:
            hook(self.now)


def test_transitions_logs_and_completion(aws: str) -> None:
    started = [("Starting", "Preparing the instances for training")]
    training = started + [("Downloading", "Downloading input data"), ("Training", "Training image download completed.")]
    done = training + [("Uploading", "Uploading generated training model"), ("Completed", "Training job completed")]
    sm = ScriptedSageMaker(
        [
            job("InProgress", "Starting", started),
            job("InProgress", "Training", training),
            job("InProgress", "Training", training),
            job(
                "Completed",
                "Completed",
                done,
                FinalMetricDataList=[{"MetricName": "validation:auc", "Value": 0.8125}],
                ModelArtifacts={"S3ModelArtifacts": ARTIFACT},
            ),
        ]
    )
    clients, clock = Clients.create(), Clock()
    lines: List[str] = []
    stream = f"{JOB}/algo-1-1700000000"
    written: List[str] = []

    def grow(now: float) -> None:  # lines arrive while the job trains; no log group before that
        if now >= 1030 and not written:
            written.extend(["loading data", "mlbuild-metric validation:auc=0.8125;"])
            _put_lines(clients, stream, written)
        elif len(written) == 2:
            written.append("saved")
            _put_lines(clients, stream, ["saved"])

    clock.hooks.append(grow)
    _bucket(clients, {ARTIFACT: b"model bytes"})
    outcome = follow(
        JOB,
        sagemaker=sm,
        logs=clients.logs,
        s3=clients.s3,
        out=lines.append,
        clock=clock,
        sleep=clock.sleep,
        poll_seconds=15,
    )

    assert outcome.succeeded and outcome.exit_code == 0
    assert outcome.final_metrics == {"validation:auc": 0.8125}
    assert outcome.model_artifact == ARTIFACT
    assert outcome.artifact_sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert outcome.log_stream == stream
    outcome.raise_for_status()
    assert lines[:3] == [
        "[  0m00s] Status: InProgress",
        "[  0m00s] Starting: Preparing the instances for training",
        "[  0m15s] Downloading: Downloading input data",
    ]
    assert "[  0m45s] Status: Completed" in lines
    assert "[  0m45s] Completed: Training job completed" in lines
    log_lines = [line for line in lines if line.startswith("[algo-1")]
    assert log_lines == [
        "[algo-1-1700000000] loading data",
        "[algo-1-1700000000] mlbuild-metric validation:auc=0.8125;",
        "[algo-1-1700000000] saved",
    ]  # each line once, though the stream is read on several polls
    assert lines[-3:] == [
        "[  0m45s] Final status: Completed (Completed)",
        "[  0m45s] Metric validation:auc = 0.8125",
        f"[  0m45s] Model artifact: {ARTIFACT} sha256:{outcome.artifact_sha256}",
    ]


def test_failure_is_non_zero(aws: str) -> None:
    sm = ScriptedSageMaker(
        [job("Failed", "Failed", [("Failed", "Training job failed")], FailureReason="AlgorithmError: bad data")]
    )
    lines: List[str] = []
    clients, clock = Clients.create(), Clock()
    outcome = follow(
        JOB, sagemaker=sm, logs=clients.logs, s3=clients.s3, out=lines.append, clock=clock, sleep=clock.sleep
    )
    assert not outcome.succeeded and outcome.exit_code == JobFailedError.exit_code != 0
    assert outcome.failure_reason == "AlgorithmError: bad data"
    assert outcome.model_artifact is None and outcome.artifact_sha256 is None
    assert "[  0m00s] Failure reason: AlgorithmError: bad data" in lines
    with pytest.raises(JobFailedError, match="ended Failed: AlgorithmError: bad data"):
        outcome.raise_for_status()


def test_unreachable_artifact_has_no_sha(aws: str) -> None:
    sm = ScriptedSageMaker([job("Completed", "Completed", [], ModelArtifacts={"S3ModelArtifacts": ARTIFACT})])
    lines: List[str] = []
    clients, clock = Clients.create(), Clock()
    _bucket(clients, {})
    outcome = follow(JOB, sagemaker=sm, s3=clients.s3, out=lines.append, clock=clock, sleep=clock.sleep)
    assert outcome.succeeded and outcome.artifact_sha256 is None
    assert any("not readable (NoSuchKey)" in line for line in lines)


def test_timeout_and_unknown_job() -> None:
    sm = ScriptedSageMaker([job("InProgress", "Training", [])])
    clock = Clock()
    with pytest.raises(WaitTimeoutError, match="keeps running"):
        follow(
            JOB, sagemaker=sm, out=lambda _: None, clock=clock, sleep=clock.sleep, poll_seconds=10, timeout_seconds=30
        )
    assert sm.calls == 4

    class Empty:
        def describe_training_job(self, TrainingJobName: str) -> Dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Requested resource not found."}},
                "DescribeTrainingJob",
            )

    with pytest.raises(UserError, match="no training job named"):
        follow(JOB, sagemaker=Empty(), out=lambda _: None)


def test_elapsed_label() -> None:
    assert elapsed_label(0) == "[  0m00s]"
    assert elapsed_label(3725.9) == "[ 62m05s]"


def test_logs_access_denied_does_not_stop_following() -> None:
    class DeniedLogs:  # NB: a fake: moto answers every caller unless its IAM enforcement is set up
        def describe_log_streams(self, **_: Any) -> Dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no logs:Describe"}}, "DescribeLogStreams"
            )

    sm = ScriptedSageMaker([job("InProgress", "Training", []), job("Completed", "Completed", [])])
    lines: List[str] = []
    clock = Clock()
    outcome = follow(JOB, sagemaker=sm, logs=DeniedLogs(), out=lines.append, clock=clock, sleep=clock.sleep)
    assert outcome.succeeded
    assert sum("not streaming logs" in line for line in lines) == 1


def test_a_finished_spot_job_reports_training_against_billable_seconds(aws: str) -> None:
    from mlbuild.job_report import JobReport, render_markdown
    from mlbuild.sagemaker.report import with_outcome

    ended = job(
        "Completed",
        "Completed",
        [],
        TrainingTimeInSeconds=1000,
        BillableTimeInSeconds=300,
        EnableManagedSpotTraining=True,
        ResourceConfig={"InstanceCount": 2},
    )
    lines: List[str] = []
    clock = Clock()
    outcome = follow(
        JOB, sagemaker=ScriptedSageMaker([ended]), s3=None, out=lines.append, clock=clock, sleep=clock.sleep
    )
    expected = (
        "1000 s training, 300 s billable per instance (600 instance-seconds on 2 instances); managed spot saved 70.0%"
    )
    assert outcome.billing == expected and f"[  0m00s] Billing: {expected}" in lines
    report = JobReport(
        "aws", JOB, "InProgress", "r@sha256:" + "0" * 64, job_arn="arn", region="us-east-1", output_path="s3://b/"
    )
    folded = with_outcome(report, outcome)
    assert folded.to_dict()["billing"] == expected and f"| Billing | {expected} |" in render_markdown(folded)
