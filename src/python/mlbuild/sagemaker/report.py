"""A SageMaker training job's `JobReport`: from the request submitted, a DescribeTrainingJob
answer, and (once followed) the job's outcome. The report type and its Markdown are
mlbuild.job_report's, the same for every backend."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from mlbuild.job_report import JobReport
from mlbuild.sagemaker import links, tags


def _aws_report(job_name: str, region: str, output_path: str, **fields: Any) -> JobReport:
    """The links every SageMaker job has, whatever its status: console, logs, model.tar.gz's place."""
    defaults: Dict[str, Any] = dict(
        backend="aws",
        job_name=job_name,
        region=region,
        output_path=output_path,
        console_url=links.console_job_url(region, job_name),
        logs=links.log_url(region, job_name),
        model={"uri": links.model_artifact_uri(output_path, job_name), "sha256": None},
    )
    image_uri = str(fields.get("image_uri", ""))
    defaults["image_digest"] = image_uri.rsplit("@", 1)[1] if "@" in image_uri else None
    return JobReport(**{**defaults, **fields})


def report_for_request(request: Mapping[str, Any], job_name: str, job_arn: str, region: str, **extra: Any) -> JobReport:
    """A report whose image, output path and provenance come from the request itself."""
    provenance = tags.tags_to_dict(list(request.get("Tags", [])))
    fields: Dict[str, Any] = dict(
        job_arn=job_arn,
        image_uri=request["AlgorithmSpecification"]["TrainingImage"],
        status="Unknown",
        pipeline_address=provenance.get(tags.PIPELINE_ADDRESS, ""),
        git_sha=provenance.get(tags.GIT_SHA) or None,
        pex_sha256=provenance.get(tags.PEX_SHA256) or None,
        instance_count=(request.get("ResourceConfig") or {}).get("InstanceCount"),
    )
    return _aws_report(job_name, region, request["OutputDataConfig"]["S3OutputPath"], **{**fields, **extra})


def report_for_job(job: Mapping[str, Any], region: str, **extra: Any) -> JobReport:
    """A report from a DescribeTrainingJob answer (no provenance: tags are not in it)."""
    fields: Dict[str, Any] = dict(
        job_arn=job.get("TrainingJobArn") or None,
        image_uri=job["AlgorithmSpecification"]["TrainingImage"],
        status=job.get("TrainingJobStatus", "Unknown"),
        instance_count=(job.get("ResourceConfig") or {}).get("InstanceCount"),
    )
    return _aws_report(job["TrainingJobName"], region, job["OutputDataConfig"]["S3OutputPath"], **{**fields, **extra})


def with_outcome(report: JobReport, outcome: Any) -> JobReport:
    """Fold in a `wait.Outcome`: status, failure, final metrics, model sha256, log stream, billing."""
    stream = outcome.log_stream or report.log_stream
    model = dict(report.model or {"uri": None})
    model["sha256"] = outcome.artifact_sha256
    return report.replace(
        status=outcome.status,
        failure_reason=outcome.failure_reason,
        metrics=dict(outcome.final_metrics),
        model=model,
        log_stream=stream,
        logs=links.log_url(report.region or "", report.job_name, stream),
        billing=getattr(outcome, "billing", None) or report.billing,
    )
