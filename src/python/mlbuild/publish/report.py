"""One report schema for both publish backends: `report.json` has the same keys whichever ran.

Each backend fills what it knows and leaves the rest None: a local job has a run directory
but no ARN, console link or region; a SageMaker job the reverse. The keys each backend wrote
before the two shared this report keep their names and values; the keys the other backend wrote are added,
meaning the same thing (`metrics` = `final_metrics`, `model` = {`model_artifact`,
`artifact_sha256`}, `reused` = not `created`, `logs` = the log's path or URL).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from mlbuild.runtime.errors import PlatformError
from mlbuild.sagemaker.report import Report, metric_diff

REPORT_KEYS = (
    "artifact_sha256",
    "backend",
    "billing",
    "console_url",
    "created",
    "failure_reason",
    "final_metrics",
    "git_sha",
    "hosts",
    "image_digest",
    "image_uri",
    "instance_count",
    "job_arn",
    "job_name",
    "log_stream",
    "log_url",
    "logs",
    "message",
    "metrics",
    "model",
    "model_artifact",
    "output_path",
    "pex_sha256",
    "pipeline_address",
    "previous_label",
    "previous_metrics",
    "region",
    "reused",
    "run_dir",
    "status",
    "versus_previous",
)


def _schema(fields: Mapping[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(fields) - set(REPORT_KEYS))
    if unknown:  # NB: a new field must be added to the schema, so both backends get it
        raise PlatformError(f"publish report: fields {unknown} are not in publish/report.py's REPORT_KEYS (a bug).")
    return {key: fields.get(key) for key in REPORT_KEYS}


def aws_report(report: Report) -> Dict[str, Any]:
    """The SageMaker backend's report: `Report.to_dict()` plus the local backend's names."""
    data = report.to_dict()
    model = {"uri": data["model_artifact"], "sha256": data["artifact_sha256"]} if data.get("model_artifact") else None
    return _schema(
        {
            **data,
            "backend": "aws",
            "reused": data.get("created") is False,
            "logs": data.get("log_url"),
            "model": model,
            "metrics": data.get("final_metrics") or {},
            "versus_previous": data.get("versus_previous"),
        }
    )


def local_report(
    record: Mapping[str, Any],
    *,
    job_name: str,
    status: str,
    reused: bool,
    image_uri: str,
    previous: Optional[Mapping[str, float]] = None,
    git_sha: str = "",
    pex_sha256: str = "",
) -> Dict[str, Any]:
    """The local backend's report, from its job record (`job.json`)."""
    model = record.get("model")
    metrics = dict(record.get("metrics") or {})
    previous_metrics = dict(previous) if previous else None
    return _schema(
        {
            "backend": "local",
            "job_name": job_name,
            "status": status,
            "reused": reused,
            "created": not reused,
            "image_uri": image_uri,
            "image_digest": record.get("image_digest"),
            "pipeline_address": record.get("pipeline_address"),
            "git_sha": git_sha or None,
            "pex_sha256": pex_sha256 or None,
            "run_dir": record.get("run_dir"),
            # NB: a job on N hosts: its count and each host's data shards (container_run's hosts.json).
            "instance_count": (record.get("hosts") or {}).get("instance_count", 1),
            "hosts": (record.get("hosts") or {}).get("hosts"),
            "logs": record.get("log") or record.get("run_dir"),
            "model": model,
            "model_artifact": model.get("uri") if model else None,
            "artifact_sha256": model.get("sha256") if model else None,
            "metrics": metrics,
            "final_metrics": metrics,
            "failure_reason": record.get("failure_reason"),
            "previous_metrics": previous_metrics,
            "previous_label": "previous",
            "versus_previous": metric_diff(previous_metrics, metrics) if previous_metrics is not None else None,
        }
    )
