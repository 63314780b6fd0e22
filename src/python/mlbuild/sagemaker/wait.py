"""Follow a training job to its end: status transitions, log lines, final outcome.

`follow` polls DescribeTrainingJob, prints each status and secondary-status transition
with the elapsed time, streams the job's CloudWatch log lines as they arrive, and ends
with the final status, FailureReason, final metrics and the model artifact (with its
sha256 when the object is reachable). Clock and sleep are injectable for tests; the
caller turns a non-Completed outcome into a non-zero exit (`Outcome.raise_for_status`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from botocore.exceptions import ClientError

from mlbuild import console
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.aws import TERMINAL_STATUSES, describe_training_job, error_code
from mlbuild.sagemaker.billing import billing_summary
from mlbuild.sagemaker.errors import AwsError, JobFailedError, WaitTimeoutError
from mlbuild.sagemaker.links import model_artifact_uri
from mlbuild.sagemaker.log_tail import LogTail
from mlbuild.sagemaker.report import with_outcome
from mlbuild.sagemaker.s3_data import s3_object_sha256

DEFAULT_POLL_SECONDS = 15.0


@dataclass(frozen=True)
class Outcome:
    job_name: str
    status: str
    secondary_status: str = ""
    failure_reason: Optional[str] = None
    final_metrics: Dict[str, float] = field(default_factory=dict)
    model_artifact: Optional[str] = None
    artifact_sha256: Optional[str] = None
    log_stream: Optional[str] = None
    elapsed_seconds: float = 0.0
    billing: Optional[str] = None  # training vs billable seconds (billing.py), once the job has them

    @property
    def succeeded(self) -> bool:
        return self.status == "Completed"

    @property
    def exit_code(self) -> int:
        return 0 if self.succeeded else JobFailedError.exit_code

    def raise_for_status(self) -> None:
        if not self.succeeded:
            reason = f": {self.failure_reason}" if self.failure_reason else ""
            raise JobFailedError(f"Training job {self.job_name} ended {self.status}{reason}")


@dataclass(frozen=True)
class FollowOptions:
    poll_seconds: float = DEFAULT_POLL_SECONDS
    timeout_seconds: Optional[float] = None
    logs: bool = True  # stream CloudWatch log lines


def follow_report(
    report: Any, clients: Any, options: FollowOptions = FollowOptions(), out: Callable[[str], None] = console.say
) -> Tuple[Any, Outcome]:
    """Follow the job of a `JobReport` to its end; the report with the outcome folded in."""
    outcome = follow(
        report.job_name,
        sagemaker=clients.sagemaker,
        logs=clients.logs if options.logs else None,
        s3=clients.s3,
        out=out,
        poll_seconds=options.poll_seconds,
        timeout_seconds=options.timeout_seconds,
    )
    return with_outcome(report, outcome), outcome


def elapsed_label(seconds: float) -> str:
    whole = int(seconds)
    return f"[{whole // 60:3d}m{whole % 60:02d}s]"


def follow(
    job_name: str,
    *,
    sagemaker: Any,
    logs: Any = None,
    s3: Any = None,
    out: Callable[[str], None] = console.say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_seconds: Optional[float] = None,
) -> Outcome:
    """Poll until the job is Completed, Failed or Stopped; print as it goes."""
    start = clock()

    def say(line: str) -> None:
        out(f"{elapsed_label(clock() - start)} {line}")

    tail = LogTail(logs, job_name, out) if logs is not None else None
    status: Optional[str] = None
    seen: Set[Tuple[str, str]] = set()
    while True:
        job = describe_training_job(sagemaker, job_name)
        if job is None:
            raise UserError(
                f"no training job named {job_name!r} in this account and region. Fix: check the name and AWS_REGION."
            )
        if job.get("TrainingJobStatus") != status:
            status = str(job.get("TrainingJobStatus"))
            say(f"Status: {status}")
        for transition in job.get("SecondaryStatusTransitions") or []:
            key = (str(transition.get("Status", "")), str(transition.get("StatusMessage", "")))
            if key not in seen:
                seen.add(key)
                say(f"{key[0]}: {key[1]}" if key[1] else key[0])
        if tail is not None:
            tail.poll()
        if status in TERMINAL_STATUSES:
            break
        if timeout_seconds is not None and clock() - start >= timeout_seconds:
            raise WaitTimeoutError(
                f"Training job {job_name} is still {status} after {int(timeout_seconds)}s; it keeps running. "
                f"Fix: follow it again with `./pants mlbuild wait {job_name}`."
            )
        sleep(poll_seconds)
    if tail is not None:
        tail.poll()  # NB: the last lines can land in CloudWatch after the status flips
    return _finish(job, tail, s3, say, clock() - start)


def _finish(
    job: Mapping[str, Any], tail: Optional[LogTail], s3: Any, say: Callable[[str], None], elapsed: float
) -> Outcome:
    name = str(job["TrainingJobName"])
    metrics = _final_metrics(job.get("FinalMetricDataList") or [])
    artifact = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not artifact and job.get("TrainingJobStatus") == "Completed":
        artifact = model_artifact_uri(job["OutputDataConfig"]["S3OutputPath"], name)
    sha256 = _artifact_sha256(s3, artifact, say) if (s3 is not None and artifact) else None
    streams = tail.streams if tail is not None else []
    summary = billing_summary(job)
    outcome = Outcome(
        job_name=name,
        status=str(job.get("TrainingJobStatus")),
        secondary_status=str(job.get("SecondaryStatus", "")),
        failure_reason=job.get("FailureReason"),
        final_metrics=metrics,
        model_artifact=artifact,
        artifact_sha256=sha256,
        log_stream=streams[0] if streams else None,
        elapsed_seconds=elapsed,
        billing=summary.markdown() if summary is not None else None,
    )
    say(f"Final status: {outcome.status} ({outcome.secondary_status})")
    if outcome.failure_reason:
        say(f"Failure reason: {outcome.failure_reason}")
    for metric, value in metrics.items():
        say(f"Metric {metric} = {value:.6g}")
    if artifact:
        say(f"Model artifact: {artifact}" + (f" sha256:{sha256}" if sha256 else ""))
    if outcome.billing:
        say(f"Billing: {outcome.billing}")
    return outcome


def _final_metrics(entries: List[Mapping[str, Any]]) -> Dict[str, float]:
    # NB: SageMaker keeps each metric's last scraped value; mlbuild prints a metric once.
    return {str(e["MetricName"]): float(e["Value"]) for e in sorted(entries, key=lambda e: str(e["MetricName"]))}


def _artifact_sha256(s3: Any, uri: str, say: Callable[[str], None]) -> Optional[str]:
    try:
        return s3_object_sha256(s3, uri)
    except AwsError as e:
        cause = e.__cause__
        code = error_code(cause) if isinstance(cause, ClientError) else e.code
        say(f"Model artifact not readable ({code}); no sha256.")
        return None
