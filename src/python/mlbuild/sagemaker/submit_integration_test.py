"""Submission against a moto server (SageMaker API over HTTP via AWS_ENDPOINT_URL)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mlbuild.sagemaker import tags
from mlbuild.sagemaker.aws import Clients, describe_training_job
from mlbuild.sagemaker.conftest import DIGEST, IMAGE_URI, OTHER_DIGEST, make_config, request_inputs
from mlbuild.sagemaker.errors import JobConflictError
from mlbuild.sagemaker.job_name import job_name
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.submit import submit


class Counting:
    """Counts CreateTrainingJob calls; moto would accept a duplicate, so count ourselves."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.creates = 0

    def create_training_job(self, **kwargs: Any) -> Any:
        self.creates += 1
        return self.client.create_training_job(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def build(**overrides: Any) -> dict:
    config = make_config()
    return build_request(config, **request_inputs(config=config, **overrides))


def test_submit_describe_and_idempotency(aws: str) -> None:
    clients = Clients.create()
    assert clients.region == "us-east-1"
    sm = Counting(clients.sagemaker)
    first = submit(build(), pipeline_name="demo-train", sagemaker=sm)
    assert first.created and sm.creates == 1
    assert first.job_arn.endswith(f":training-job/{first.job_name}")

    described = describe_training_job(clients.sagemaker, first.job_name)
    assert described is not None
    assert described["AlgorithmSpecification"]["TrainingImage"] == IMAGE_URI
    assert described["HyperParameters"] == build()["HyperParameters"]
    assert described["InputDataConfig"] == build()["InputDataConfig"]
    assert described["ResourceConfig"]["InstanceCount"] == 2
    found = tags.tags_to_dict(clients.sagemaker.list_tags(ResourceArn=first.job_arn)["Tags"])
    assert found[tags.IMAGE_DIGEST] == DIGEST

    again = submit(build(), pipeline_name="demo-train", sagemaker=sm)
    assert not again.created and again.job_name == first.job_name and sm.creates == 1

    forced = submit(
        build(),
        pipeline_name="demo-train",
        sagemaker=sm,
        force=True,
        now=lambda: datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )
    assert forced.created and forced.job_name == first.job_name + "-r20240101000000" and sm.creates == 2
    assert describe_training_job(clients.sagemaker, forced.job_name) is not None


def test_forced_submissions_in_one_second_are_distinct_jobs(aws: str) -> None:
    """Issue 11 item 4: a second --force in the same second reused the first's name (and job)."""
    sm = Counting(Clients.create().sagemaker)
    at = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    forced = [submit(build(), pipeline_name="demo-train", sagemaker=sm, force=True, now=lambda: at) for _ in range(4)]
    names = [f.job_name for f in forced]
    assert len(set(names)) == 4 and all(f.created for f in forced) and sm.creates == 4
    assert all(describe_training_job(sm.client, name) is not None for name in names)


def test_a_different_job_under_the_name_is_refused(aws: str) -> None:
    clients = Clients.create()
    request = build()
    name = job_name("demo-train", request)
    impostor = build(image_uri=f"repo@{OTHER_DIGEST}")
    clients.sagemaker.create_training_job(TrainingJobName=name, **impostor)
    sm = Counting(clients.sagemaker)
    with pytest.raises(JobConflictError, match=f"image digest is {OTHER_DIGEST}"):
        submit(request, pipeline_name="demo-train", sagemaker=sm)
    assert sm.creates == 0
    still = describe_training_job(clients.sagemaker, name)
    assert still is not None and still["AlgorithmSpecification"]["TrainingImage"].endswith(OTHER_DIGEST)


def test_unknown_job_describes_as_none(aws: str) -> None:
    assert describe_training_job(Clients.create().sagemaker, "no-such-job") is None
