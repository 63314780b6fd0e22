from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker import aws
from mlbuild.sagemaker.errors import AwsError


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


def test_translate() -> None:
    with pytest.raises(UserError, match="AWS_PROFILE"):
        with aws.translate("CreateTrainingJob"):
            raise NoCredentialsError()
    with pytest.raises(AwsError, match="AWS CreateTrainingJob failed: AccessDeniedException: nope") as e:
        with aws.translate("CreateTrainingJob"):
            raise _error("AccessDeniedException", "nope")
    assert e.value.exit_code == 3 and isinstance(e.value.__cause__, ClientError)
    with pytest.raises(AwsError, match="EndpointConnectionError"):
        with aws.translate("DescribeTrainingJob"):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_quirk_classifiers() -> None:
    assert aws.is_training_job_not_found(_error("ValidationException", "Requested resource not found."))
    assert aws.is_training_job_not_found(_error("ValidationException", "Could not find training job 'arn:...'"))
    assert not aws.is_training_job_not_found(_error("ValidationException", "1 validation error detected"))
    assert aws.is_resource_in_use(_error("ResourceInUse", "Training job names must be unique"))
    assert aws.is_resource_in_use(_error("ValidationException", "names must be unique within an AWS account"))
    assert not aws.is_resource_in_use(_error("ValidationException", "bad role"))
    assert aws.next_log_token("f/1", {"nextForwardToken": "f/1"}) is None
    assert aws.next_log_token(None, {"nextForwardToken": "f/1"}) == "f/1"
    assert aws.etag('"abc-2"') == "abc-2"


def test_region_resolution() -> None:
    assert aws.resolve_region("eu-west-1", {"AWS_REGION": "us-east-1"}) == "eu-west-1"
    assert aws.resolve_region(None, {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"
    assert aws.resolve_region(None, {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-1"}) == "ap-south-1"
    assert aws.resolve_region("us-gov-west-1", {}) == "us-gov-west-1"
    # NB: botocore would raise InvalidRegionError (a traceback) from client creation.
    with pytest.raises(UserError, match=r"AWS_DEFAULT_REGION: 'not a region!' is not an AWS region code"):
        aws.resolve_region(None, {"AWS_DEFAULT_REGION": "not a region!"})
    with pytest.raises(UserError, match=r"--region\): 'us east 1' is not"):
        aws.Clients.create("us east 1", {})
    with pytest.raises(UserError, match="no AWS region"):
        aws.resolve_region(None, {})
