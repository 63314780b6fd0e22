from __future__ import annotations

import copy
import datetime
from typing import Any, Dict, Optional

import pytest
from botocore.exceptions import ClientError

from mlbuild.sagemaker.conftest import DIGEST, OTHER_DIGEST, make_config, request_inputs
from mlbuild.sagemaker.errors import AwsError, JobConflictError
from mlbuild.sagemaker.job_name import job_name
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.submit import submit

NOW = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeSageMaker:
    """Behaves like AWS (not moto): a taken name answers ResourceInUse."""

    def __init__(self) -> None:
        self.jobs: Dict[str, Dict[str, Any]] = {}
        self.creates = 0
        self.race_with: Optional[Dict[str, Any]] = None  # created by "someone else" mid-call
        self.create_error: Optional[ClientError] = None

    def describe_training_job(self, TrainingJobName: str) -> Dict[str, Any]:
        if TrainingJobName not in self.jobs:
            raise _error("ValidationException", "Requested resource not found.", "DescribeTrainingJob")
        return copy.deepcopy(self.jobs[TrainingJobName])

    def create_training_job(self, **request: Any) -> Dict[str, Any]:
        self.creates += 1
        name = request["TrainingJobName"]
        if self.create_error is not None:
            raise self.create_error
        if self.race_with is not None:
            self.jobs[name] = {**self.race_with, "TrainingJobName": name}
        if name in self.jobs:
            raise _error("ResourceInUse", f"Training job names must be unique ... ({name})", "CreateTrainingJob")
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
        self.jobs[name] = {**request, "TrainingJobArn": arn, "TrainingJobStatus": "InProgress"}
        return {"TrainingJobArn": arn}


def build(**overrides: Any) -> Dict[str, Any]:
    config = make_config()
    return build_request(config, **request_inputs(config=config, **overrides))


def test_same_request_is_accepted_without_a_second_create() -> None:
    sm = FakeSageMaker()
    first = submit(build(), pipeline_name="demo", sagemaker=sm)
    second = submit(build(), pipeline_name="demo", sagemaker=sm)
    assert first.created and not second.created
    assert first.job_name == second.job_name and first.job_arn == second.job_arn
    assert sm.creates == 1
    assert "nothing submitted" in second.message


def test_different_image_under_the_same_name_is_refused() -> None:
    sm = FakeSageMaker()
    request = build()
    name = job_name("demo", request)
    other = build(image_uri=f"repo@{OTHER_DIGEST}")
    sm.jobs[name] = {**other, "TrainingJobName": name, "TrainingJobStatus": "Completed"}
    with pytest.raises(JobConflictError) as e:
        submit(request, pipeline_name="demo", sagemaker=sm)
    assert sm.creates == 0
    assert name in str(e.value)
    assert f"image digest is {OTHER_DIGEST} (this submission: {DIGEST})" in str(e.value)
    assert "--force" in str(e.value)


def test_different_hyperparameters_under_the_same_name_are_refused() -> None:
    sm = FakeSageMaker()
    request = build()
    name = job_name("demo", request)
    sm.jobs[name] = {**build(hyperparameter_values={"max_depth": 9}), "TrainingJobName": name}
    with pytest.raises(JobConflictError, match=r"hyperparameter max_depth is '9' \(this submission: '4'\)"):
        submit(request, pipeline_name="demo", sagemaker=sm)
    assert sm.creates == 0


def test_platform_hyperparameters_do_not_count() -> None:
    sm = FakeSageMaker()
    request = build()
    name = job_name("demo", request)
    existing = copy.deepcopy(request)
    existing["HyperParameters"]["sagemaker_region"] = '"us-east-1"'
    sm.jobs[name] = {**existing, "TrainingJobName": name, "TrainingJobStatus": "Failed"}
    result = submit(request, pipeline_name="demo", sagemaker=sm)
    assert not result.created and result.status == "Failed"
    assert "--force" in result.message


def test_force_submits_under_a_new_name() -> None:
    sm = FakeSageMaker()
    first = submit(build(), pipeline_name="demo", sagemaker=sm)
    forced = submit(build(), pipeline_name="demo", sagemaker=sm, force=True, now=lambda: NOW)
    assert forced.created and forced.job_name == first.job_name + "-r20240102030405"
    assert sm.creates == 2


def test_forced_runs_in_the_same_second_get_distinct_names() -> None:
    """Issue 11 item 4: the second --force in one second was "accepted" as the first's job."""
    sm = FakeSageMaker()
    forced = [submit(build(), pipeline_name="demo", sagemaker=sm, force=True, now=lambda: NOW) for _ in range(3)]
    base = job_name("demo", build())
    assert [f.job_name for f in forced] == [
        f"{base}-r20240102030405",
        f"{base}-r20240102030406",
        f"{base}-r20240102030407",
    ]
    assert all(f.created for f in forced) and sm.creates == 3


def test_a_forced_name_taken_between_describe_and_create_moves_on() -> None:
    sm = FakeSageMaker()
    sm.race_with = build()  # NB: another forced run creates the same name first
    first_try = job_name("demo", build(), run=NOW)
    original = sm.create_training_job

    def race_once(**request: Any) -> Dict[str, Any]:
        if request["TrainingJobName"] != first_try:
            sm.race_with = None
        return original(**request)

    sm.create_training_job = race_once  # type: ignore[method-assign]
    forced = submit(build(), pipeline_name="demo", sagemaker=sm, force=True, now=lambda: NOW)
    assert forced.created and forced.job_name.endswith("-r20240102030406") and sm.creates == 2


def test_race_with_the_same_job_is_accepted() -> None:
    sm = FakeSageMaker()
    sm.race_with = build()
    result = submit(build(), pipeline_name="demo", sagemaker=sm)
    assert not result.created and sm.creates == 1


def test_race_with_a_different_job_is_refused() -> None:
    sm = FakeSageMaker()
    sm.race_with = build(image_uri=f"repo@{OTHER_DIGEST}")
    with pytest.raises(JobConflictError, match="image digest"):
        submit(build(), pipeline_name="demo", sagemaker=sm)


def test_other_create_errors_are_platform_errors() -> None:
    sm = FakeSageMaker()
    sm.create_error = _error("ResourceLimitExceeded", "too many ml.m5.xlarge", "CreateTrainingJob")
    with pytest.raises(AwsError) as e:
        submit(build(), pipeline_name="demo", sagemaker=sm)
    assert e.value.code == "ResourceLimitExceeded" and e.value.exit_code == 3
