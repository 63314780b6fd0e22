"""The report of a training job, whichever backend ran it: one type, one JSON form, one Markdown.

`JobReport` is what `pants publish` writes as `report.json` (its `to_dict()`) and
`report.md` (`render_markdown`), and what `mlbuild-sagemaker submit|wait` print. Each
backend fills what it knows and leaves the rest None: a local job has a run directory but no
ARN, console link or region; a SageMaker job the reverse. The Markdown is meant to be posted
verbatim as a pull-request comment.

A leaf: imports nothing from mlbuild, so the AWS side and the publish workflow both build it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

MISSING = "n/a"  # the mark for a value a report does not have (a metric only one run reported)
NUMBER_FORMAT = ".6g"
NO_PREVIOUS = "no previous run recorded"


@dataclass(frozen=True)
class JobReport:
    backend: str  # "local" or "aws"
    job_name: str
    status: str
    image_uri: str
    pipeline_address: str = ""
    image_digest: Optional[str] = None
    git_sha: Optional[str] = None
    pex_sha256: Optional[str] = None
    reused: bool = False  # True: an identical finished (or running) job was taken instead of training again
    message: Optional[str] = None
    metrics: Dict[str, float] = field(default_factory=dict)
    model: Optional[Dict[str, Optional[str]]] = None  # {"uri", "sha256"}; sha256 None until known
    logs: Optional[str] = None  # a local log file's path, or the CloudWatch console URL
    log_stream: Optional[str] = None
    failure_reason: Optional[str] = None
    previous_metrics: Optional[Dict[str, float]] = None
    previous_label: str = "previous"
    previous_note: Optional[str] = None  # why there is nothing to compare with, when previous_metrics is None
    billing: Optional[str] = None  # e.g. "3000 s training, 900 s billable; managed spot saved 70.0%"
    job_arn: Optional[str] = None
    region: Optional[str] = None
    console_url: Optional[str] = None
    output_path: Optional[str] = None
    run_dir: Optional[str] = None
    instance_count: Optional[int] = None
    hosts: Optional[List[Dict[str, Any]]] = None  # a local job on N hosts: each host's data shards

    def replace(self, **changes: Any) -> "JobReport":
        return dataclasses.replace(self, **changes)

    def versus_previous(self) -> Optional[List[Dict[str, Any]]]:
        return metric_diff(self.previous_metrics, self.metrics) if self.previous_metrics is not None else None

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["versus_previous"] = self.versus_previous()
        return _finite(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


REPORT_KEYS = tuple(sorted([f.name for f in dataclasses.fields(JobReport)] + ["versus_previous"]))


def metric_diff(previous: Optional[Mapping[str, float]], current: Mapping[str, float]) -> List[Dict[str, Any]]:
    """One row per metric in either run: previous, current, change (None if unknown)."""
    previous = previous or {}
    rows = []
    for name in sorted(set(previous) | set(current)):
        before, after = _numeric(previous.get(name)), _numeric(current.get(name))
        change = after - before if before is not None and after is not None else None
        rows.append({"metric": name, "previous": previous.get(name), "current": current.get(name), "change": change})
    return rows


def render_markdown(report: JobReport) -> str:
    """The report as Markdown: a summary table, the failure reason, the metrics versus the previous run."""
    where = "trained locally" if report.backend == "local" else "on SageMaker"
    subject = (
        f"`{report.pipeline_address}`, job `{report.job_name}`"
        if report.pipeline_address
        else f"job `{report.job_name}`"
    )
    lines = [f"### mlbuild: {subject} {where}: **{report.status}**", ""]
    if report.message:
        lines += [report.message, ""]
    rows = [
        ("Image", _code(report.image_uri)),
        ("Job", _job(report)),
        ("Run directory (inputs, outputs)", _code(report.run_dir)),
        ("Logs", _logs(report)),
        ("Hosts", _hosts(report.hosts) if report.hosts else None),
        ("Model", _model(report.model)),
        ("Git sha", _code(report.git_sha)),
        ("PEX sha256", _code(report.pex_sha256)),
        ("Billing", report.billing),
    ]
    lines += ["| | |", "|---|---|"] + [f"| {name} | {cell(value)} |" for name, value in rows if value]
    if report.failure_reason:
        fence = "`" * max(3, _longest_backtick_run(report.failure_reason) + 1)
        lines += ["", "#### Failure reason", "", fence, report.failure_reason.strip(), fence]
    lines += ["", "#### Metrics", ""]
    previous = report.previous_metrics
    if report.metrics or previous:
        label = cell(report.previous_label)
        lines += [f"| Metric | this run | {label} | change |", "|---|---:|---:|---:|"]
        for row in metric_diff(previous, report.metrics):
            lines.append(
                f"| `{cell(row['metric'])}` | {number(row['current'])} | {number(row['previous'])} | "
                f"{_change(row['previous'], row['change'])} |"
            )
    else:
        lines.append("_No final metrics yet._")
    if previous is None:
        note = report.previous_note or NO_PREVIOUS
        lines += ["", f"_{note[:1].upper()}{note[1:]}: nothing to compare with._"]
    return "\n".join(lines) + "\n"


def number(value: Any) -> str:
    """A metric value: `.6g` for numbers, MISSING for none, the text of anything else (a "nan" from JSON)."""
    if value is None:
        return MISSING
    numeric = _numeric(value)
    return format(numeric, NUMBER_FORMAT) if numeric is not None else cell(str(value))


def cell(text: Optional[str]) -> str:
    """Text safe inside a Markdown table cell: a `|` or a newline would break the table."""
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _numeric(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _change(before: Any, change: Optional[float]) -> str:
    if change is None:
        return MISSING
    text = format(change, "+" + NUMBER_FORMAT)
    if before and math.isfinite(change):
        text += f" ({change / abs(before):+.2%})"
    return text


def _code(text: Optional[str]) -> Optional[str]:
    return f"`{text}`" if text else None


def _job(report: JobReport) -> str:
    name = f"[{report.job_name}]({report.console_url})" if report.console_url else f"`{report.job_name}`"
    if report.job_arn:
        name += f" (`{report.job_arn}`)"
    if report.reused:
        name += " (reused: identical image, hyperparameters and data)"
    return name


def _logs(report: JobReport) -> Optional[str]:
    if not report.logs:
        return None
    if report.logs.startswith(("https://", "http://")):
        return f"[CloudWatch: {report.log_stream or report.job_name + '/*'}]({report.logs})"
    return f"[`{report.logs}`]({Path(report.logs).resolve().as_uri()})"


def _model(model: Optional[Mapping[str, Optional[str]]]) -> Optional[str]:
    if not model or not model.get("uri"):
        return None
    text = f"`{model['uri']}`"
    return text + (f" (sha256 `{model['sha256']}`)" if model.get("sha256") else "")


def _hosts(hosts: Sequence[Mapping[str, Any]]) -> str:
    """`algo-1 (leader): train 4 files; algo-2: train 4 files`: each host and its shares."""

    def shares(host: Mapping[str, Any]) -> str:
        channels = sorted(host.get("channels", {}).items())
        return ", ".join(f"{channel} {len(share.get('keys', []))} files" for channel, share in channels)

    return "; ".join(f"{h['host']}{' (leader)' if h.get('leader') else ''}: {shares(h)}" for h in hosts)


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
