"""boto3 clients, and every AWS (and moto) quirk mlbuild works around, in one place.

Credentials come from boto3's default chain; endpoints from AWS_ENDPOINT_URL(_<SERVICE>)
which boto3 reads itself (that is how tests point at moto). Callers get clients from
`Clients` and turn botocore exceptions into mlbuild errors with `translate`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

from mlbuild.names import AWS_REGION_ENV, aws_region
from mlbuild.runtime.config import region_problem
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.env import FORWARDED_ENV_VARS
from mlbuild.sagemaker.errors import AwsError

# NB: "standard" retry mode backs off on throttling and transient errors with a retry
# quota, unlike "legacy". https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html
RETRY_CONFIG = {"mode": "standard", "max_attempts": 5}

TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")


def resolve_region(configured: Optional[str], environ: Mapping[str, str]) -> str:
    """The config's `sagemaker.region`, else AWS_REGION, else AWS_DEFAULT_REGION."""
    region = aws_region(configured, environ)
    if not region:
        raise UserError(
            "no AWS region: set `sagemaker.region` in the pipeline config, or export AWS_REGION. "
            "Fix: under Pants, make sure the rule forwards AWS_REGION/AWS_DEFAULT_REGION "
            "(see mlbuild.sagemaker.env.FORWARDED_ENV_VARS)."
        )
    problem = region_problem(region)
    if problem:
        # NB: botocore raises InvalidRegionError from inside client creation; say where it came from.
        where = (
            "the region (`sagemaker.region` or --region)"
            if configured
            else AWS_REGION_ENV if environ.get(AWS_REGION_ENV) else "AWS_DEFAULT_REGION"
        )
        raise UserError(f"{where}: {problem}. Fix: use a region code such as us-east-1 or eu-west-2.")
    return region


@dataclass
class Clients:
    """The three clients a job needs, built lazily from one session and region."""

    region: str
    _session: Any = None
    _cache: Optional[dict] = None

    @classmethod
    def create(cls, region: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> "Clients":
        import boto3  # NB: imported here so `mlbuild.sagemaker` imports without boto3.

        environ = os.environ if environ is None else environ
        region = resolve_region(region, environ)
        return cls(region=region, _session=boto3.session.Session(region_name=region), _cache={})

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        assert self._cache is not None
        if service not in self._cache:
            self._cache[service] = self._session.client(service, config=Config(retries=RETRY_CONFIG))
        return self._cache[service]

    @property
    def sagemaker(self) -> Any:
        return self._client("sagemaker")

    @property
    def logs(self) -> Any:
        return self._client("logs")

    @property
    def s3(self) -> Any:
        return self._client("s3")


def error_code(e: BaseException) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(e: BaseException) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Message", e))


def is_training_job_not_found(e: BaseException) -> bool:
    # NB: DescribeTrainingJob on an unknown name answers ValidationException
    # ("Requested resource not found."), not ResourceNotFound; moto says "Could not find
    # training job". https://github.com/aws/aws-sdk/issues/165
    message = error_message(e).lower()
    return error_code(e) == "ValidationException" and ("not found" in message or "could not find" in message)


def is_resource_in_use(e: BaseException) -> bool:
    # NB: CreateTrainingJob with a name already taken answers ResourceInUse. moto 5.x
    # accepts the duplicate instead, so the idempotency tests exercise mlbuild's own
    # describe-before-create check, and this branch with a stub. Some SageMaker Create*
    # calls moved duplicate names to ValidationException "... must be unique ...", so that
    # wording counts too. https://github.com/aws/sagemaker-python-sdk/pull/6256
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#API_CreateTrainingJob_Errors
    message = error_message(e).lower()
    duplicate = "must be unique" in message or "already exists" in message
    return error_code(e) == "ResourceInUse" or (error_code(e) == "ValidationException" and duplicate)


def is_missing(e: BaseException) -> bool:
    """A missing log group / stream / S3 object: "not there yet", not a failure."""
    # NB: CloudWatch Logs creates /aws/sagemaker/TrainingJobs and the job's streams only
    # once the container starts, so ResourceNotFoundException is normal early on.
    # S3 HeadObject answers a bare 404 (no error body), GetObject NoSuchKey.
    return error_code(e) in ("ResourceNotFoundException", "NoSuchKey", "404", "NotFound", "NoSuchBucket")


@contextlib.contextmanager
def translate(operation: str) -> Iterator[None]:
    """Turn botocore failures into mlbuild errors: credentials are the user's to fix."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        yield
    except (NoCredentialsError, NoRegionError) as e:
        raise UserError(
            f"AWS {operation}: {e}. Fix: configure credentials for boto3's default chain "
            f"(AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and a region; under Pants the "
            f"rule must forward {', '.join(FORWARDED_ENV_VARS)}."
        ) from None
    except ClientError as e:
        raise AwsError(operation, error_code(e), error_message(e)) from e
    except BotoCoreError as e:
        raise AwsError(operation, type(e).__name__, str(e)) from e


def next_log_token(previous: Optional[str], response: Mapping[str, Any]) -> Optional[str]:
    """GetLogEvents' forward token, or None once the stream is drained for now."""
    # NB: at the end of a stream GetLogEvents returns the token it was given (never null),
    # so "same token back" is the only end-of-data signal (moto mimics it).
    # https://github.com/aws/aws-cli/issues/6499 https://github.com/getmoto/moto/pull/2361
    token = response.get("nextForwardToken")
    return None if not token or token == previous else token


def etag(value: Optional[str]) -> str:
    # NB: S3 ETags arrive quoted ("\"abc\""), and are an MD5 only for single-part, non
    # SSE-KMS objects ("abc-3" for multipart), so they serve as change detectors, never as
    # checksums. https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html
    return (value or "").strip('"')


def method_name(operation: str) -> str:
    """boto3's client method for an API operation: `DescribeTrainingJob` -> `describe_training_job`."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def describe(sagemaker: Any, operation: str, **name: str) -> Optional[dict]:
    """A SageMaker Describe<X> call, or None when nothing has that name.

    NB: every SageMaker Describe* of an unknown name answers ValidationException "Could not
    find ..." (see is_training_job_not_found).
    """
    from botocore.exceptions import ClientError

    with translate(operation):
        try:
            response = dict(getattr(sagemaker, method_name(operation))(**name))
        except ClientError as e:
            if is_training_job_not_found(e):
                return None
            raise
    response.pop("ResponseMetadata", None)
    return response


def describe_training_job(sagemaker: Any, name: str) -> Optional[dict]:
    """DescribeTrainingJob, or None if no job has that name."""
    return describe(sagemaker, "DescribeTrainingJob", TrainingJobName=name)
