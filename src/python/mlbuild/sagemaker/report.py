"""The report of a submission (and, once followed, its outcome) as JSON and Markdown.

The Markdown is meant to be posted verbatim as a pull-request comment; the JSON is the
same data for machines. `previous_metrics` is the hook for "versus previous": give the
metrics of the run to compare with and a diff table appears.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from mlbuild.sagemaker import links, tags


@dataclass(frozen=True)
class Report:
    job_name: str
    job_arn: str
    region: str
    image_uri: str
    output_path: str
    status: str
    pipeline_address: str = ""
    git_sha: str = ""
    pex_sha256: str = ""
    created: Optional[bool] = None  # False: an identical existing job was accepted
    message: str = ""
    log_stream: Optional[str] = None
    failure_reason: Optional[str] = None
    final_metrics: Dict[str, float] = field(default_factory=dict)
    artifact_sha256: Optional[str] = None
    previous_metrics: Optional[Dict[str, float]] = None
    previous_label: str = "previous"
    billing: Optional[str] = None  # e.g. "3000 s training, 900 s billable; managed spot saved 70.0%"

    @classmethod
    def for_request(cls, request: Mapping[str, Any], job_name: str, job_arn: str, region: str, **extra: Any) -> "Report":
        """A report whose image, output path and provenance come from the request itself."""
        provenance = tags.tags_to_dict(list(request.get("Tags", [])))
        fields: Dict[str, Any] = dict(
            job_name=job_name,
            job_arn=job_arn,
            region=region,
            image_uri=request["AlgorithmSpecification"]["TrainingImage"],
            output_path=request["OutputDataConfig"]["S3OutputPath"],
            status="Unknown",
            pipeline_address=provenance.get(tags.PIPELINE_ADDRESS, ""),
            git_sha=provenance.get(tags.GIT_SHA, ""),
            pex_sha256=provenance.get(tags.PEX_SHA256, ""),
        )
        fields.update(extra)
        return cls(**fields)

    @classmethod
    def for_job(cls, job: Mapping[str, Any], region: str, **extra: Any) -> "Report":
        """A report from a DescribeTrainingJob answer (no provenance: tags are not in it)."""
        fields: Dict[str, Any] = dict(
            job_name=job["TrainingJobName"],
            job_arn=job.get("TrainingJobArn", ""),
            region=region,
            image_uri=job["AlgorithmSpecification"]["TrainingImage"],
            output_path=job["OutputDataConfig"]["S3OutputPath"],
            status=job.get("TrainingJobStatus", "Unknown"),
        )
        fields.update(extra)
        return cls(**fields)

    def with_outcome(self, outcome: Any) -> "Report":
        """Fold in a `wait.Outcome`."""
        return dataclasses.replace(
            self,
            status=outcome.status,
            failure_reason=outcome.failure_reason,
            final_metrics=dict(outcome.final_metrics),
            artifact_sha256=outcome.artifact_sha256,
            log_stream=outcome.log_stream or self.log_stream,
            billing=getattr(outcome, "billing", None) or self.billing,
        )

    def replace(self, **changes: Any) -> "Report":
        return dataclasses.replace(self, **changes)

    @property
    def image_digest(self) -> str:
        return self.image_uri.rsplit("@", 1)[1] if "@" in self.image_uri else ""

    @property
    def console_url(self) -> str:
        return links.console_job_url(self.region, self.job_name)

    @property
    def log_url(self) -> str:
        return links.log_url(self.region, self.job_name, self.log_stream)

    @property
    def model_artifact(self) -> str:
        return links.model_artifact_uri(self.output_path, self.job_name)

    def metric_diff(self) -> List[Dict[str, Any]]:
        """One row per metric in either run: previous, current, change (None if unknown)."""
        return metric_diff(self.previous_metrics, self.final_metrics)

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            image_digest=self.image_digest,
            console_url=self.console_url,
            log_url=self.log_url,
            model_artifact=self.model_artifact,
        )
        if self.previous_metrics is not None:
            data["versus_previous"] = self.metric_diff()
        return _finite(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        lines = [f"### SageMaker training job `{self.job_name}`: {self.status}", ""]
        if self.message:
            lines += [self.message, ""]
        artifact = f"`{self.model_artifact}`"
        if self.artifact_sha256:
            artifact += f" (sha256 `{self.artifact_sha256}`)"
        rows = [
            ("Pipeline", f"`{self.pipeline_address}`" if self.pipeline_address else ""),
            ("Image", f"`{self.image_uri}`"),
            ("Job", f"[{self.job_name}]({self.console_url})" + (f" (`{self.job_arn}`)" if self.job_arn else "")),
            ("Logs", f"[CloudWatch: {self.log_stream or self.job_name + '/*'}]({self.log_url})"),
            ("Model artifact", artifact),
            ("Git sha", f"`{self.git_sha}`" if self.git_sha else ""),
            ("PEX sha256", f"`{self.pex_sha256}`" if self.pex_sha256 else ""),
            ("Billing", self.billing or ""),
        ]
        lines += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows if v]
        if self.failure_reason:
            fence = "`" * max(3, _longest_backtick_run(self.failure_reason) + 1)
            lines += ["", "#### Failure reason", "", fence, self.failure_reason, fence]
        lines += ["", "#### Metrics", ""]
        if self.final_metrics:
            lines += ["| Metric | Value |", "|---|---:|"]
            lines += [f"| `{k}` | {_number(v)} |" for k, v in sorted(self.final_metrics.items())]
        else:
            lines.append("_No final metrics yet._")
        lines += ["", f"#### Versus {self.previous_label}", ""]
        if self.previous_metrics is None:
            lines.append("_No previous run to compare with._")
        else:
            lines += [f"| Metric | {self.previous_label} | this run | change |", "|---|---:|---:|---:|"]
            for row in self.metric_diff():
                lines.append(
                    f"| `{row['metric']}` | {_number(row['previous'])} | {_number(row['current'])} | "
                    f"{_change(row['previous'], row['change'])} |"
                )
        return "\n".join(lines) + "\n"


def metric_diff(previous: Optional[Mapping[str, float]], current: Mapping[str, float]) -> List[Dict[str, Any]]:
    """One row per metric in either run: previous, current, change (None if unknown)."""
    previous = previous or {}
    rows = []
    for name in sorted(set(previous) | set(current)):
        before, after = previous.get(name), current.get(name)
        change = after - before if before is not None and after is not None else None
        rows.append({"metric": name, "previous": before, "current": after, "change": change})
    return rows


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _change(before: Optional[float], change: Optional[float]) -> str:
    if change is None or before is None:
        return "n/a"
    text = f"{change:+.6g}"
    if before != 0 and math.isfinite(change):
        text += f" ({change / abs(before):+.2%})"
    return text


def _cell(text: str) -> str:
    # NB: a `|` or newline inside a cell would break the Markdown table.
    return text.replace("|", "\\|").replace("\n", " ")


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _finite(value: Any) -> Any:
    # NB: JSON has no NaN/Infinity; json.dumps would write invalid JSON for them.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
