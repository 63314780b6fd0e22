"""CreateModel + CreateTransformJob (+ an endpoint, opt-in) against moto on loopback."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, List

import boto3
import pytest

from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.conftest import IMAGE_URI, OTHER_DIGEST
from mlbuild.sagemaker.errors import JobConflictError, JobFailedError
from mlbuild.sagemaker.transform import (
    TransformSpec,
    deploy_endpoint,
    follow_transform,
    model_request,
    submit_transform,
    transform_request,
)
from mlbuild.serving.transform import TransformConfig

SPEC = TransformSpec(
    pipeline_name="churn-train",
    image_uri=IMAGE_URI,
    model_data_url="s3://demo-bucket/demo/models/churn-train-0123456789ab/output/model.tar.gz",
    role="arn:aws:iam::123456789012:role/MLBuildSageMakerTraining",
    input_s3="s3://demo-bucket/demo/data/validation/",
    output_s3="s3://demo-bucket/demo/predictions/",
    transform=TransformConfig(accept="text/csv", max_payload_mb=4, max_concurrent_transforms=2),
    tags=({"Key": "mlbuild:git-sha", "Value": "0123abc"},),
)


def client() -> Any:
    return boto3.client("sagemaker", region_name="us-east-1")


def test_the_requests_carry_the_image_by_digest_and_the_transform_settings() -> None:
    model = model_request(SPEC)
    assert model["PrimaryContainer"] == {"Image": IMAGE_URI, "ModelDataUrl": SPEC.model_data_url}
    job = transform_request(SPEC, "m")
    assert (job["BatchStrategy"], job["MaxPayloadInMB"], job["MaxConcurrentTransforms"]) == ("MultiRecord", 4, 2)
    assert job["TransformInput"]["SplitType"] == "Line" and job["TransformOutput"] == {
        "S3OutputPath": SPEC.output_s3,
        "AssembleWith": "Line",
        "Accept": "text/csv",
    }


def test_moto_accepts_the_model_and_the_transform_and_the_job_is_followed_to_its_end(aws: str) -> None:
    sagemaker, lines = client(), []  # type: ignore[var-annotated]
    submission = submit_transform(SPEC, sagemaker, lines.append)
    assert submission.model.created and submission.job.created
    assert submission.model.name.startswith("churn-train-") and submission.job.name.startswith("churn-train-")
    described = sagemaker.describe_transform_job(TransformJobName=submission.job.name)
    assert described["ModelName"] == submission.model.name
    assert described["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == SPEC.input_s3
    assert sagemaker.describe_model(ModelName=submission.model.name)["PrimaryContainer"]["Image"] == IMAGE_URI
    out: List[str] = []
    outcome = follow_transform(submission.job.name, sagemaker=sagemaker, out=out.append, sleep=lambda s: None)
    assert outcome.succeeded and outcome.output_s3 == SPEC.output_s3
    assert any("Status: Completed" in line for line in out)


def _counted(calls: List[str], operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(operation)
        return original(*args, **kwargs)

    return call


def test_a_second_identical_submit_is_recognised_not_resubmitted(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = client()
    first = submit_transform(SPEC, sagemaker)
    calls: List[str] = []
    for operation in ("create_model", "create_transform_job"):
        monkeypatch.setattr(sagemaker, operation, _counted(calls, operation, getattr(sagemaker, operation)))
    # NB: another git sha in the tags is the same transform
    second = submit_transform(
        dataclasses.replace(SPEC, tags=({"Key": "mlbuild:git-sha", "Value": "4567def"},)), sagemaker
    )
    assert calls == []
    assert (second.model.name, second.job.name) == (first.model.name, first.job.name)
    assert not second.model.created and not second.job.created and "nothing submitted" in second.job.message
    assert second.status == "Completed"


def test_other_data_or_another_model_is_a_new_job(aws: str) -> None:
    sagemaker = client()
    first = submit_transform(SPEC, sagemaker)
    other_data = submit_transform(dataclasses.replace(SPEC, input_s3="s3://demo-bucket/demo/data/new/"), sagemaker)
    assert other_data.model.name == first.model.name and other_data.job.name != first.job.name
    other_image = submit_transform(
        dataclasses.replace(SPEC, image_uri=IMAGE_URI.split("@")[0] + "@" + OTHER_DIGEST), sagemaker
    )
    assert other_image.model.name != first.model.name and other_image.job.created


def test_a_different_resource_under_the_derived_name_is_a_conflict(aws: str) -> None:
    sagemaker = client()
    from mlbuild.sagemaker.job_name import job_name
    from mlbuild.sagemaker.transform import _without_tags

    name = job_name(SPEC.pipeline_name, _without_tags(model_request(SPEC)))
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE_URI, "ModelDataUrl": "s3://demo-bucket/other/model.tar.gz"},
        ExecutionRoleArn=SPEC.role,
    )
    with pytest.raises(
        JobConflictError, match=r"Model .* already exists and is different: PrimaryContainer\.ModelDataUrl"
    ) as raised:
        submit_transform(SPEC, sagemaker)
    assert raised.value.exit_code == 4
    assert sagemaker.list_transform_jobs()["TransformJobSummaries"] == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlbuild/demo:latest"}, "not pinned by digest"),
        ({"model_data_url": "/tmp/model.tar.gz"}, "model data: expected an s3:// URI"),
        ({"role": "Training"}, "not an IAM role ARN"),
        ({"transform": TransformConfig(split_type="RecordIO")}, "SplitType 'RecordIO'"),
    ],
)
def test_bad_specs_are_refused_before_any_call(change: dict, message: str) -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"called {name}")

    with pytest.raises(UserError, match=message):
        submit_transform(dataclasses.replace(SPEC, **change), NoCalls())


def test_a_failed_transform_job_raises_with_its_reason() -> None:
    class Failed:
        def describe_transform_job(self, TransformJobName: str) -> dict:
            return {
                "TransformJobStatus": "Failed",
                "FailureReason": "ClientError: 400 from /invocations",
                "TransformOutput": {"S3OutputPath": "s3://b/o/"},
            }

    outcome = follow_transform("t", sagemaker=Failed(), out=lambda line: None, sleep=lambda s: None)
    with pytest.raises(JobFailedError, match="ended Failed: ClientError: 400 from /invocations"):
        outcome.raise_for_status()


def test_an_unknown_transform_job_is_the_users_error(aws: str) -> None:
    with pytest.raises(UserError, match="no transform job named 'nope'"):
        follow_transform("nope", sagemaker=client(), out=lambda line: None)


def test_the_endpoint_is_created_once_then_moved_to_a_new_model(aws: str) -> None:
    sagemaker = client()
    first = submit_transform(SPEC, sagemaker)
    deployed = deploy_endpoint(first.model.name, SPEC.pipeline_name, sagemaker)
    assert (deployed.endpoint_name, deployed.action) == ("churn-train", "created")
    assert sagemaker.describe_endpoint(EndpointName="churn-train")["EndpointConfigName"] == deployed.config.name
    assert deploy_endpoint(first.model.name, SPEC.pipeline_name, sagemaker).action == "unchanged"
    newer = submit_transform(
        dataclasses.replace(SPEC, model_data_url="s3://demo-bucket/demo/models/newer/output/model.tar.gz"), sagemaker
    )
    # NB: moto 5.2 has no UpdateEndpoint (it answers 500 "not implemented"): that one call is recorded here.
    updates: List[dict] = []

    class MotoPlusUpdate:
        def __getattr__(self, name: str) -> Any:
            return getattr(sagemaker, name)

        def update_endpoint(self, **request: Any) -> dict:
            updates.append(request)
            return {"EndpointArn": "arn"}

    moved = deploy_endpoint(newer.model.name, SPEC.pipeline_name, MotoPlusUpdate())
    assert moved.action == "updated" and moved.config.name != deployed.config.name
    assert updates == [{"EndpointName": "churn-train", "EndpointConfigName": moved.config.name}]
    assert (
        sagemaker.describe_endpoint_config(EndpointConfigName=moved.config.name)["ProductionVariants"][0]["ModelName"]
        == newer.model.name
    )
