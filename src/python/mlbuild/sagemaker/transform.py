"""Predictions on AWS: CreateModel + CreateTransformJob, and (opt-in) a real-time endpoint.

The same image that trained serves: a SageMaker Model is the image (by digest) plus the
training job's `model.tar.gz`; a batch transform job runs it over an S3 prefix with the
settings of `mlbuild.serving.transform.TransformConfig` (what the local transform honours
too). Names are derived from the request's hash (`job_name.py`), so submitting the same
model and transform again finds them and creates nothing; an existing resource under the
derived name that differs is a conflict (exit 4), reported with what differs.
`follow_transform` polls until the job ends and reports like a training job.
`deploy_endpoint` (behind the caller's explicit flag) creates an EndpointConfig named by its
hash and an endpoint named after the pipeline, or points an existing one at the new config.

https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from botocore.exceptions import ClientError

from mlbuild import console
from mlbuild.runtime.config import s3_uri_problem
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.aws import TERMINAL_STATUSES, describe, is_resource_in_use, method_name, translate
from mlbuild.sagemaker.errors import JobConflictError, JobFailedError, WaitTimeoutError
from mlbuild.sagemaker.image_ref import parse_image_uri
from mlbuild.sagemaker.job_name import job_name, sanitize
from mlbuild.sagemaker.wait import DEFAULT_POLL_SECONDS, elapsed_label
from mlbuild.serving.transform import TransformConfig

ENDPOINT_STATUSES_DONE = ("InService", "Failed", "OutOfService")
VARIANT_NAME = "AllTraffic"


@dataclass(frozen=True)
class TransformSpec:
    """Everything a transform on AWS needs; validated by `check` before any call."""

    pipeline_name: str  # e.g. churn-train (job_name.pipeline_name_from_address)
    image_uri: str  # <registry>/<repository>@sha256:<digest>
    model_data_url: str  # s3://.../<training job>/output/model.tar.gz
    role: str  # the execution role the model runs as
    input_s3: str  # an S3 prefix: every object under it is transformed
    output_s3: str  # `<object key>.out` files go under it
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    transform: TransformConfig = TransformConfig()
    tags: Sequence[Mapping[str, str]] = field(default_factory=tuple)  # provenance; not part of the names

    def check(self) -> "TransformSpec":
        problems: List[str] = []
        for name, uri in (("model data", self.model_data_url), ("input", self.input_s3), ("output", self.output_s3)):
            problem = s3_uri_problem(uri)
            if problem:
                problems.append(f"{name}: {problem}")
        if not self.role.startswith("arn:aws") or ":role/" not in self.role:
            problems.append(f"role {self.role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        if not self.instance_type.startswith("ml."):
            problems.append(f"instance type {self.instance_type!r} is not a SageMaker instance type (ml.*)")
        if self.instance_count < 1:
            problems.append(f"instance count {self.instance_count} must be 1 or more")
        if problems:
            raise UserError(f"transform for {self.pipeline_name}: {'; '.join(problems)}.")
        parse_image_uri(self.image_uri, "transform image")
        self.transform.validate()
        return self


def spec_from_training_job(
    described: Mapping[str, Any],
    pipeline_name: str,
    input_s3: str,
    output_s3: str,
    *,
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    transform: TransformConfig = TransformConfig(),
) -> TransformSpec:
    """A transform of `input_s3` with the model and image of a finished training job (DescribeTrainingJob)."""
    name = described.get("TrainingJobName", "?")
    if described.get("TrainingJobStatus") != "Completed":
        raise UserError(
            f"training job {name} is {described.get('TrainingJobStatus') or 'in an unknown state'}: only a Completed job "
            "has a model to transform with. Fix: name a finished job (./pants mlbuild wait JOB)."
        )
    model = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    image = (described.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if not model or not image:
        raise UserError(f"training job {name} names no model artifact or no training image; nothing to transform with.")
    return TransformSpec(
        pipeline_name=pipeline_name,
        image_uri=image,
        model_data_url=model,
        role=str(described.get("RoleArn", "")),
        input_s3=input_s3,
        output_s3=output_s3,
        instance_type=instance_type,
        instance_count=instance_count,
        transform=transform,
        tags=({"Key": "mlbuild:training-job", "Value": name},),
    ).check()


@dataclass(frozen=True)
class Created:
    name: str
    arn: str
    created: bool  # False: an identical one already existed and was accepted
    message: str


@dataclass(frozen=True)
class TransformSubmission:
    model: Created
    job: Created
    status: str


@dataclass(frozen=True)
class TransformOutcome:
    job_name: str
    status: str
    failure_reason: Optional[str]
    output_s3: str
    elapsed_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status == "Completed"

    def raise_for_status(self) -> None:
        if not self.succeeded:
            reason = f": {self.failure_reason}" if self.failure_reason else ""
            raise JobFailedError(f"Transform job {self.job_name} ended {self.status}{reason}")


def _without_tags(request: Mapping[str, Any]) -> Dict[str, Any]:
    # NB: names come from what the resource does, not from who made it (tags carry the git sha).
    return {k: v for k, v in request.items() if k != "Tags"}


def model_request(spec: TransformSpec) -> Dict[str, Any]:
    """CreateModel without ModelName."""
    request: Dict[str, Any] = {
        "PrimaryContainer": {
            "Image": parse_image_uri(spec.image_uri, "transform image").uri,
            "ModelDataUrl": spec.model_data_url,
        },
        "ExecutionRoleArn": spec.role,
    }
    if spec.tags:
        request["Tags"] = [dict(t) for t in spec.tags]
    return request


def transform_request(spec: TransformSpec, model_name: str) -> Dict[str, Any]:
    """CreateTransformJob without TransformJobName."""
    config = spec.transform
    output: Dict[str, Any] = {"S3OutputPath": spec.output_s3, "AssembleWith": config.assemble_with}
    if config.accept:
        output["Accept"] = config.accept
    request: Dict[str, Any] = {
        "ModelName": model_name,
        "BatchStrategy": config.batch_strategy,
        "MaxPayloadInMB": config.max_payload_mb,
        "MaxConcurrentTransforms": config.max_concurrent_transforms,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_s3}},
            "ContentType": config.content_type,
            "SplitType": config.split_type,
            "CompressionType": "None",
        },
        "TransformOutput": output,
        "TransformResources": {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count},
    }
    if spec.tags:
        request["Tags"] = [dict(t) for t in spec.tags]
    return request


def _create(sagemaker: Any, operation: str, arn_key: str, request: Mapping[str, Any]) -> Optional[str]:
    """Create<X>; None when the name was taken meanwhile (a concurrent submitter)."""
    with translate(operation):
        try:
            return str(getattr(sagemaker, method_name(operation))(**request)[arn_key])
        except ClientError as e:
            if not is_resource_in_use(e):
                raise
            return None


def _differences(existing: Mapping[str, Any], wanted: Mapping[str, Any], paths: Sequence[Sequence[str]]) -> List[str]:
    found = []
    for path in paths:
        have: Any = existing
        want: Any = wanted
        for key in path:
            have = (have or {}).get(key) if isinstance(have, Mapping) else None
            want = (want or {}).get(key) if isinstance(want, Mapping) else None
        if have != want:
            found.append(f"{'.'.join(path)} is {have!r} (this submission: {want!r})")
    return found


MODEL_FIELDS = (("PrimaryContainer", "Image"), ("PrimaryContainer", "ModelDataUrl"), ("ExecutionRoleArn",))
TRANSFORM_FIELDS = (
    ("ModelName",),
    ("BatchStrategy",),
    ("MaxPayloadInMB",),
    ("TransformInput", "DataSource", "S3DataSource", "S3Uri"),
    ("TransformInput", "ContentType"),
    ("TransformInput", "SplitType"),
    ("TransformOutput", "S3OutputPath"),
    ("TransformOutput", "Accept"),
    ("TransformOutput", "AssembleWith"),
)


def _ensure(
    kind: str,
    describe_op: str,
    create_op: str,
    name_key: str,
    arn_key: str,
    name: str,
    request: Mapping[str, Any],
    fields: Sequence[Sequence[str]],
    sagemaker: Any,
    log: Callable[[str], None],
) -> Created:
    full = {name_key: name, **request}
    existing = describe(sagemaker, describe_op, **{name_key: name})
    if existing is None:
        log(f"Creating {kind} {name}.")
        arn = _create(sagemaker, create_op, arn_key, full)
        if arn is not None:
            return Created(name, arn, True, f"Created {kind} {name}.")
        existing = describe(sagemaker, describe_op, **{name_key: name})
        if existing is None:
            raise JobConflictError(
                f"SageMaker says {kind} {name} is in use but cannot describe it. Fix: retry the submission."
            )
    diffs = _differences(existing, full, fields)
    if diffs:
        raise JobConflictError(
            f"{kind.capitalize()} {name} already exists and is different: {'; '.join(diffs)}. Nothing was submitted. "
            f"Fix: delete the stale {kind} in SageMaker, then submit again."
        )
    return Created(
        name,
        str(existing.get(arn_key, "")),
        False,
        f"{kind.capitalize()} {name} already exists with the same settings; nothing submitted.",
    )


def ensure_model(spec: TransformSpec, sagemaker: Any, log: Callable[[str], None] = lambda line: None) -> Created:
    request = model_request(spec.check())
    name = job_name(spec.pipeline_name, _without_tags(request))
    return _ensure(
        "model", "DescribeModel", "CreateModel", "ModelName", "ModelArn", name, request, MODEL_FIELDS, sagemaker, log
    )


def submit_transform(
    spec: TransformSpec, sagemaker: Any, log: Callable[[str], None] = lambda line: None
) -> TransformSubmission:
    """The model, then the transform job; each created only if its derived name is free."""
    model = ensure_model(spec, sagemaker, log)
    request = transform_request(spec, model.name)
    name = job_name(spec.pipeline_name, _without_tags(request))
    job = _ensure(
        "transform job",
        "DescribeTransformJob",
        "CreateTransformJob",
        "TransformJobName",
        "TransformJobArn",
        name,
        request,
        TRANSFORM_FIELDS,
        sagemaker,
        log,
    )
    status = (
        "InProgress"
        if job.created
        else str(
            (describe(sagemaker, "DescribeTransformJob", TransformJobName=name) or {}).get(
                "TransformJobStatus", "Unknown"
            )
        )
    )
    if not job.created and status in ("Failed", "Stopped"):
        log(f"Transform job {name} exists and ended {status}; delete it in SageMaker to run it again.")
    return TransformSubmission(model, job, status)


def follow_transform(
    name: str,
    *,
    sagemaker: Any,
    out: Callable[[str], None] = console.say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_seconds: Optional[float] = None,
) -> TransformOutcome:
    """Poll DescribeTransformJob until it ends; print each status and the outcome."""
    start = clock()
    status: Optional[str] = None
    while True:
        job = describe(sagemaker, "DescribeTransformJob", TransformJobName=name)
        if job is None:
            raise UserError(
                f"no transform job named {name!r} in this account and region. Fix: check the name and AWS_REGION."
            )
        if job.get("TransformJobStatus") != status:
            status = str(job.get("TransformJobStatus"))
            out(f"{elapsed_label(clock() - start)} Status: {status}")
        if status in TERMINAL_STATUSES:
            break
        if timeout_seconds is not None and clock() - start >= timeout_seconds:
            raise WaitTimeoutError(
                f"Transform job {name} is still {status} after {int(timeout_seconds)}s; it keeps running."
            )
        sleep(poll_seconds)
    outcome = TransformOutcome(
        name,
        status,
        job.get("FailureReason") or None,
        str((job.get("TransformOutput") or {}).get("S3OutputPath", "")),
        clock() - start,
    )
    if outcome.failure_reason:
        out(f"{elapsed_label(outcome.elapsed_seconds)} Failure reason: {outcome.failure_reason}")
    if outcome.succeeded:
        out(
            f"{elapsed_label(outcome.elapsed_seconds)} Output: {outcome.output_s3} (one <input key>.out per input object)"
        )
    return outcome


@dataclass(frozen=True)
class Deployment:
    config: Created
    endpoint_name: str
    action: str  # "created", "updated" or "unchanged"


def deploy_endpoint(
    model_name: str,
    pipeline_name: str,
    sagemaker: Any,
    *,
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    endpoint_name: Optional[str] = None,
    log: Callable[[str], None] = lambda line: None,
) -> Deployment:
    """An EndpointConfig for the model (named by its hash) and the pipeline's endpoint on it."""
    if instance_count < 1 or not instance_type.startswith("ml."):
        raise UserError(
            f"endpoint for {pipeline_name}: instance {instance_type!r} x {instance_count}: expected an ml.* type and a count of 1 or more."
        )
    request = {
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InitialInstanceCount": instance_count,
                "InstanceType": instance_type,
            }
        ]
    }
    fields = [("ProductionVariants",)]
    config = _ensure(
        "endpoint config",
        "DescribeEndpointConfig",
        "CreateEndpointConfig",
        "EndpointConfigName",
        "EndpointConfigArn",
        job_name(pipeline_name, request),
        request,
        fields,
        sagemaker,
        log,
    )
    name = endpoint_name or sanitize(pipeline_name)
    existing = describe(sagemaker, "DescribeEndpoint", EndpointName=name)
    if existing is None:
        log(f"Creating endpoint {name} on {config.name}.")
        if (
            _create(
                sagemaker, "CreateEndpoint", "EndpointArn", {"EndpointName": name, "EndpointConfigName": config.name}
            )
            is not None
        ):
            return Deployment(config, name, "created")
        existing = describe(sagemaker, "DescribeEndpoint", EndpointName=name) or {}
    if existing.get("EndpointConfigName") == config.name:
        log(f"Endpoint {name} already serves {config.name}; nothing changed.")
        return Deployment(config, name, "unchanged")
    log(f"Updating endpoint {name}: {existing.get('EndpointConfigName')} -> {config.name}.")
    with translate("UpdateEndpoint"):
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config.name)
    return Deployment(config, name, "updated")
