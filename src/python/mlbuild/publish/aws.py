"""The AWS publish backend: push the image to ECR, then submit the SageMaker training job.

The ECR registry is the training role's account in the job's region; the repository is the
config's `sagemaker.image_repository` (created if missing, with immutable tags). The job
request, idempotency, waiting and the report are mlbuild.sagemaker's: this module only
hands it the pushed image, pinned by digest.

`MLBUILD_ECR_REGISTRY=host[:port]` pushes to that registry host instead of the ECR host,
still with ECR's credentials and repository creation (see `ecr_repository`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from mlbuild import console
from mlbuild.job_report import JobReport
from mlbuild.lineage import remote
from mlbuild.lineage.collect import publish_record
from mlbuild.names import ECR_REGISTRY_ENV, aws_region
from mlbuild.publish.backend import Previous, Publication, PushedImage, Transformed, layout_digest
from mlbuild.registry import ecr
from mlbuild.registry.errors import AuthError
from mlbuild.registry.push import PushResult, push_layout
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.referrers import referrers_tag
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import MLBuildError, PlatformError, UserError
from mlbuild.runtime.hyperparameters import resolve
from mlbuild.sagemaker.aws import Clients, resolve_region
from mlbuild.sagemaker.job_name import pipeline_name_from_address
from mlbuild.sagemaker.job_request import build_request
from mlbuild.sagemaker.s3_data import listing_checksum
from mlbuild.sagemaker.submit import submit_job
from mlbuild.sagemaker.wait import FollowOptions, Outcome, follow_report

ECR_REGISTRY_ENV_VAR = ECR_REGISTRY_ENV


def ecr_repository(config: PipelineConfig, address: str, environ: Mapping[str, str]) -> str:
    """Where the image is pushed: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`, or
    `$MLBUILD_ECR_REGISTRY/<repository>` when that is set."""
    home = ecr_home_repository(config, address, environ)
    override = environ.get(ECR_REGISTRY_ENV_VAR, "").strip()
    return f"{override}/{home.split('/', 1)[1]}" if override else home


def ecr_home_repository(config: PipelineConfig, address: str, environ: Mapping[str, str]) -> str:
    """The ECR repository of the role's account in the job's region (never overridden)."""
    sm = config.sagemaker
    region = aws_region(sm.region, environ)
    missing = [
        key
        for key, value in (("`sagemaker.role`", sm.role), ("`sagemaker.region` (or AWS_REGION)", region))
        if not value
    ]
    if missing:
        raise UserError(
            f"{config.source}: {' and '.join(missing)} missing; the ECR registry is the role's account in that region. "
            "Fix: set it under `sagemaker:` (role: arn:aws:iam::<account>:role/<name>), or publish with the local "
            "backend (`sagemaker.backend: local`)."
        )
    region = resolve_region(sm.region, environ)  # NB: refuses a malformed AWS_REGION before it becomes a host name
    assert sm.role is not None  # NB: `missing` above refused a config without one
    account = sm.role.split(":")[4]
    repository = sm.image_repository or pipeline_name_from_address(address)
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"


def check_channel_data(config: PipelineConfig, s3: Any) -> None:
    """Every channel's S3 prefix holds data; else the job would fail minutes into provisioning."""
    from botocore.exceptions import BotoCoreError, ClientError

    for channel in config.channels:
        if not channel.s3:
            continue  # NB: build_request already reported the missing URI.
        bucket, _, prefix = channel.s3[len("s3://") :].partition("/")
        key = f"{config.source}: `channels.{channel.name}.s3`"
        try:
            found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "error")
            raise UserError(
                f"{key}: cannot list {channel.s3} ({code}). Fix: create the bucket and upload the data, or grant the caller s3:ListBucket."
            ) from e
        except BotoCoreError as e:
            raise UserError(
                f"{key}: cannot reach S3 to check {channel.s3} ({e}). Fix: check AWS credentials, region and endpoint."
            ) from e
        if not found:
            raise UserError(
                f"{key}: no objects under {channel.s3}. Fix: upload the channel's data there "
                f"(e.g. `aws s3 sync <sample data>/{channel.local} {channel.s3}`) or correct the URI."
            )


def pinned_s3_data(config: PipelineConfig, s3: Any) -> Optional[List[Dict[str, str]]]:
    """What the publish record needs beyond the report: each channel's S3 data, pinned by listing."""
    data = []
    for channel in config.channels:
        if channel.s3:
            try:
                data.append(
                    {
                        "name": channel.name,
                        "uri": channel.s3,
                        "checksum": listing_checksum(s3, channel.s3),
                        "pin": "s3-listing",
                    }
                )
            except MLBuildError as e:  # NB: the job is submitted; a record without a pin beats none
                console.warn(f"could not pin {channel.s3} for the lineage record: {e}")
    return data or None


def upload_records(records: Sequence[Any], report: JobReport, s3: Any) -> List[str]:
    """Put the publish's lineage records next to the model in S3, so a fresh clone can find them.

    `<output_path>/<job>/mlbuild-lineage/<record id>.json`, for the publish record and the
    package record(s) of its image; returns the URIs (fewer if an upload failed: the job is
    already submitted, so a lineage hiccup only warns).
    """
    output_path, job = report.output_path or "", report.job_name or ""
    if not output_path.startswith("s3://") or not job:
        return []
    uris = []
    for record in records:
        bucket, key = remote.s3_key(output_path, job, record.id)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=record.canonical, ContentType="application/json")
        except Exception as e:  # NB: never fail a submitted publish over its record
            console.warn(f"could not upload the lineage record to s3://{bucket}/{key}: {e}")
            continue
        console.say(f"lineage record at s3://{bucket}/{key}")
        uris.append(f"s3://{bucket}/{key}")
    return uris


@dataclass(frozen=True)
class AwsJob:
    """A submitted SageMaker job: its report (with its outcome once followed) and what it ran."""

    report: JobReport
    outcome: Optional[Outcome]  # None unless followed
    image_digest: str  # the manifest digest pushed and run
    hyperparameters: Dict[str, str]  # the resolved values, encoded as the job got them
    config: PipelineConfig

    @property
    def name(self) -> str:
        return self.report.job_name


@dataclass
class AwsBackend:
    """ECR + SageMaker (the `Backend` protocol). The job request is built (and validated) once, in
    `push`, before anything is pushed, and submitted as built in `train`."""

    environ: Mapping[str, str]
    follow: Optional[FollowOptions] = None  # follow the job to its end (`--wait`); None: submit and return
    log: Callable[[str], None] = console.say
    name: str = "aws"
    _request: Optional[Dict[str, Any]] = field(default=None, init=False, repr=False)
    _clients: Any = field(default=None, init=False, repr=False)

    @property
    def clients(self) -> Any:
        if self._clients is None:
            raise PlatformError("AwsBackend: push before train (a bug).")
        return self._clients

    def push(self, publication: Publication) -> PushedImage:
        config, address = publication.config, publication.address
        digest = publication.image_digest or layout_digest(publication.layout_dir, publication.ref)
        destination = ecr_repository(config, address, self.environ)
        self._request = build_request(
            config,
            image_uri=f"{destination}@{digest}",
            hyperparameter_values=resolve(config, publication.overrides, "command line"),
            pipeline_address=address,
            git_sha=publication.git_sha,
            pex_sha256=publication.pex_sha256,
            image_digest=digest,
        )
        self._clients = Clients.create(config.sagemaker.region, self.environ)
        check_channel_data(config, self._clients.s3)
        result = push_image(publication.layout_dir, publication.ref, config, address, destination, self.environ)
        if result.digest != digest:
            raise PlatformError(
                f"{publication.layout_dir}: pushed manifest {result.digest}, but the build reported {digest}. "
                "Fix: package again (`./pants package`) so the layout and its digest agree, then publish."
            )
        return PushedImage(f"{destination}@{digest}", digest)

    def train(self, publication: Publication, image: PushedImage) -> AwsJob:
        if self._request is None:
            raise PlatformError("AwsBackend: push before train (a bug).")
        report = submit_job(
            self._request, pipeline_name=pipeline_name_from_address(publication.address), clients=self.clients,
            force=publication.force, log=self.log,
        )  # fmt: skip
        return AwsJob(report, None, image.digest, dict(self._request["HyperParameters"]), publication.config)

    def wait(self, job: AwsJob) -> AwsJob:
        if self.follow is None:
            return job
        report, outcome = follow_report(job.report, self.clients, self.follow, out=self.log)
        return dataclasses.replace(job, report=report, outcome=outcome)

    def report(self, job: AwsJob, previous: Previous) -> JobReport:
        return job.report.replace(
            previous_metrics=dict(previous.metrics) if previous.metrics is not None else None,
            previous_note=previous.note,
        )

    def record(self, job: AwsJob, report: JobReport) -> Any:
        return publish_record(
            report.to_dict(), image_digest=job.image_digest, hyperparameters=job.hyperparameters,
            data=pinned_s3_data(job.config, self.clients.s3),
        )  # fmt: skip

    def share(self, records: Sequence[Any], job: AwsJob) -> None:
        upload_records(records, job.report, self.clients.s3)

    def exit_code(self, job: AwsJob) -> int:
        """A followed job that did not complete becomes JobFailedError (exit 5)."""
        if job.outcome is not None:
            job.outcome.raise_for_status()
        return 0

    def transform(self, job: AwsJob, input_path: str, output: str) -> Transformed:
        """A SageMaker batch transform of `input_path` (s3://) with the job's model, followed when the job was."""
        from mlbuild.sagemaker.aws import describe_training_job
        from mlbuild.sagemaker.transform import follow_transform, spec_from_training_job, submit_transform

        described = describe_training_job(self.clients.sagemaker, job.report.job_name) or {}
        pipeline = pipeline_name_from_address(job.report.pipeline_address)
        spec = spec_from_training_job(described, pipeline, input_path, output)
        submission = submit_transform(spec, self.clients.sagemaker, self.log)
        if self.follow is not None:
            follow_transform(submission.job.name, sagemaker=self.clients.sagemaker, out=self.log).raise_for_status()
        return Transformed(
            output, f"transform job {submission.job.name} ({submission.status}) with the model of {job.report.job_name}"
        )


def push_image(
    layout_dir: Path,
    ref: Optional[str],
    config: PipelineConfig,
    address: str,
    destination: str,
    environ: Mapping[str, str],
) -> PushResult:
    home = ecr_home_repository(config, address, environ)
    if destination == home:
        result = push_layout(layout_dir, ref, destination, create_repository=True)
    else:
        # NB: MLBUILD_ECR_REGISTRY stands in for the ECR registry host (a test registry, a
        # private endpoint). mlbuild.registry picks ECR auth by host pattern
        # (`Reference.ecr`), which the stand-in does not match, so the ECR side is done
        # here against the real ECR name: the repository is created through the ECR API
        # and GetAuthorizationToken's Basic credentials are passed explicitly.
        # The job then runs the image as pushed, `<override>/<repository>@sha256:...`.
        home_ref = parse_reference(home)
        ecr.ensure_repository(home_ref)
        try:
            result = push_layout(layout_dir, ref, destination, credentials=ecr.authorization(home_ref))
        except AuthError as e:
            raise AuthError(
                f"{str(e).strip()} The credentials are ECR's (GetAuthorizationToken for {home_ref.registry}), sent to "
                f"{ECR_REGISTRY_ENV_VAR}={environ[ECR_REGISTRY_ENV_VAR]}. Fix: point {ECR_REGISTRY_ENV_VAR} at a registry "
                f"that accepts this account's ECR token, or unset it to push to {home_ref.registry}."
            ) from e
    _log_push(result)
    return result


def _log_push(result: PushResult) -> None:
    # NB: one line with the push's byte counts, so a no-op re-push is visible in CI logs.
    console.say(
        f"pushed {result.image_uri}: {result.uploaded} blobs uploaded ({result.uploaded_bytes} bytes), "
        f"{result.mounted} mounted ({result.mounted_bytes} bytes), {result.skipped} already present "
        f"({result.skipped_bytes} bytes) in {result.seconds:.2f}s"
    )
    for digest in result.referrers:
        where = (
            "listed by the registry's referrers API"
            if result.referrers_api
            else f"listed in the referrers index {referrers_tag(result.digest)}"
        )
        console.say(f"provenance {digest} pushed with the image ({where})")
