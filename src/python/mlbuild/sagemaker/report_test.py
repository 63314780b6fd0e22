from __future__ import annotations

import json

from mlbuild.job_report import JobReport, render_markdown
from mlbuild.sagemaker import links
from mlbuild.sagemaker.conftest import ADDRESS, DIGEST, GIT_SHA, IMAGE_URI, PEX_SHA256, make_config, request_inputs
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.report import report_for_request, with_outcome
from mlbuild.sagemaker.wait import Outcome

JOB = "demo-train-0123456789ab"
ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{JOB}"


def report(**extra) -> JobReport:
    config = make_config()
    request = build_request(config, **request_inputs(config=config))
    return report_for_request(request, JOB, ARN, "eu-west-1", status="InProgress", **extra)


def test_links() -> None:
    assert links.console_job_url("eu-west-1", JOB) == (
        f"https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/{JOB}"
    )
    group = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
    assert links.log_url("eu-west-1", JOB) == f"{group}$3FlogStreamNameFilter$3D{JOB}$252F"
    assert (
        links.log_url("eu-west-1", JOB, f"{JOB}/algo-1-1700000000") == f"{group}/log-events/{JOB}$252Falgo-1-1700000000"
    )
    assert links.model_artifact_uri("s3://b/models/", JOB) == f"s3://b/models/{JOB}/output/model.tar.gz"
    assert links.model_artifact_uri("s3://b/models", JOB) == f"s3://b/models/{JOB}/output/model.tar.gz"


def test_json_contents() -> None:
    data = json.loads(report().to_json())
    assert data["image_uri"] == IMAGE_URI and data["image_digest"] == DIGEST
    assert data["job_name"] == JOB and data["job_arn"] == ARN
    assert data["pipeline_address"] == ADDRESS and data["git_sha"] == GIT_SHA and data["pex_sha256"] == PEX_SHA256
    assert data["console_url"] == links.console_job_url("eu-west-1", JOB)
    assert data["logs"] == links.log_url("eu-west-1", JOB)
    assert data["model"] == {"uri": f"s3://demo-bucket/demo/models/{JOB}/output/model.tar.gz", "sha256": None}
    assert data["status"] == "InProgress" and data["reused"] is False and data["backend"] == "aws"
    assert data["versus_previous"] is None


def test_markdown_before_the_job_ends() -> None:
    text = render_markdown(report())
    assert text.startswith(f"### mlbuild: `{ADDRESS}`, job `{JOB}` on SageMaker: **InProgress**\n")
    assert f"| Image | `{IMAGE_URI}` |" in text
    assert f"[{JOB}]({links.console_job_url('eu-west-1', JOB)}) (`{ARN}`)" in text
    assert f"[CloudWatch: {JOB}/*]({links.log_url('eu-west-1', JOB)})" in text
    assert f"`s3://demo-bucket/demo/models/{JOB}/output/model.tar.gz`" in text
    assert "_No final metrics yet._" in text
    assert "_No previous run recorded: nothing to compare with._" in text


def test_outcome_metrics_and_versus_previous() -> None:
    outcome = Outcome(
        job_name=JOB,
        status="Failed",
        failure_reason="AlgorithmError: ```boom``` | bad",
        final_metrics={"validation:auc": 0.85, "validation:log_loss": float("nan")},
        artifact_sha256="9" * 64,
        log_stream=f"{JOB}/algo-1-1700000000",
    )
    r = with_outcome(
        report(previous_metrics={"validation:auc": 0.8, "train:rows": 100.0}, previous_label="main"), outcome
    )
    text = render_markdown(r)
    assert f"`s3://demo-bucket/demo/models/{JOB}/output/model.tar.gz` (sha256 `{'9' * 64}`)" in text
    assert f"[CloudWatch: {JOB}/algo-1-1700000000]" in text
    assert "````\nAlgorithmError: ```boom``` | bad\n````" in text
    assert "| Metric | this run | main | change |" in text
    assert "| `validation:auc` | 0.85 | 0.8 | +0.05 (+6.25%) |" in text
    assert "| `train:rows` | n/a | 100 | n/a |" in text
    data = json.loads(r.to_json())  # NaN must not leak into JSON
    assert data["metrics"]["validation:log_loss"] == "nan"
    assert [row["metric"] for row in data["versus_previous"]] == ["train:rows", "validation:auc", "validation:log_loss"]
    assert data["status"] == "Failed" and data["model"]["sha256"] == "9" * 64
