"""Idempotent submission: describe before create, and accept only the same job.

The job name is derived from the request (`job_name.py`), so submitting the same
request twice finds the first job and creates nothing. A job found under the name is
accepted only if it runs the same image digest with the same hyperparameters; anything
else is a conflict, reported with what differs, and nothing is submitted. `force=True`
is a deliberate re-run: the name gets a run suffix (UTC time) and a new job starts, always:
a suffix already taken (two forced runs in one second) moves on to the next second.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

from botocore.exceptions import ClientError

from mlbuild.job_report import JobReport
from mlbuild.sagemaker.aws import describe_training_job, is_resource_in_use, translate
from mlbuild.sagemaker.errors import JobConflictError
from mlbuild.sagemaker.job_name import job_name
from mlbuild.sagemaker.job_request import image_digest_of
from mlbuild.sagemaker.report import report_for_request

# NB: SageMaker and framework containers may add their own keys (sagemaker_*, _tuning_*);
# they are not the pipeline's and never make two jobs different.
_PLATFORM_PREFIXES = ("sagemaker_", "_")
FORCED_NAME_ATTEMPTS = 60


@dataclass(frozen=True)
class Submission:
    job_name: str
    job_arn: str
    created: bool  # False: an identical job already existed and was accepted
    status: str  # status at submission time ("InProgress" for a new job)
    message: str


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def submit(
    request: Mapping[str, Any],
    *,
    pipeline_name: str,
    sagemaker: Any,
    force: bool = False,
    now: Callable[[], datetime.datetime] = _utc_now,
    log: Callable[[str], None] = lambda line: None,
) -> Submission:
    """Create the training job for `request` (no TrainingJobName) unless it exists."""
    if force:
        return _submit_forced(request, pipeline_name, sagemaker, now(), log)
    name = job_name(pipeline_name, request)
    full = {"TrainingJobName": name, **request}
    existing = describe_training_job(sagemaker, name)
    if existing is not None:
        log(f"Training job {name} already exists; checking it is the same job.")
        return _accept(existing, full)
    log(f"Creating training job {name}.")
    with translate("CreateTrainingJob"):
        try:
            response = sagemaker.create_training_job(**full)
        except ClientError as e:
            if not is_resource_in_use(e):
                raise
            response = None
    if response is None:
        # NB: lost a race with another submitter of the same request; treat it as found.
        log(f"Training job {name} was created concurrently; checking it is the same job.")
        raced = describe_training_job(sagemaker, name)
        if raced is None:
            raise JobConflictError(
                f"SageMaker says {name} is in use but cannot describe it. Fix: retry the submission."
            )
        return _accept(raced, full)
    return Submission(name, response["TrainingJobArn"], True, "InProgress", f"Created training job {name}.")


def _submit_forced(
    request: Mapping[str, Any], pipeline_name: str, sagemaker: Any, run: datetime.datetime, log: Callable[[str], None]
) -> Submission:
    """A deliberate re-run always starts a new job: when its `-r<UTC time>` name is taken
    (another --force in the same second), the next second's name is tried, so the name keeps
    its format and length and no forced run is ever taken for another."""
    for attempt in range(FORCED_NAME_ATTEMPTS):
        name = job_name(pipeline_name, request, run=run + datetime.timedelta(seconds=attempt))
        if describe_training_job(sagemaker, name) is not None:
            continue
        log(f"Creating training job {name}.")
        with translate("CreateTrainingJob"):
            try:
                response = sagemaker.create_training_job(TrainingJobName=name, **request)
            except ClientError as e:
                if not is_resource_in_use(e):
                    raise
                continue  # NB: another forced run took this name between describe and create
        return Submission(name, response["TrainingJobArn"], True, "InProgress", f"Created training job {name}.")
    raise JobConflictError(
        f"{FORCED_NAME_ATTEMPTS} forced job names from {job_name(pipeline_name, request, run=run)} on are all taken. "
        "Fix: retry in a minute."
    )


def submit_job(
    request: Mapping[str, Any],
    *,
    pipeline_name: str,
    clients: Any,
    force: bool = False,
    previous_metrics: Optional[Mapping[str, float]] = None,
    log: Callable[[str], None] = lambda line: None,
) -> JobReport:
    """Submit `request` (built and validated once by the caller) and report what happened.

    The typed entry point publish and the CLI share: no argv, no files; `clients` is an
    `aws.Clients` (its region goes into the report).
    """
    submission = submit(request, pipeline_name=pipeline_name, sagemaker=clients.sagemaker, force=force, log=log)
    log(submission.message)
    return report_for_request(
        request,
        submission.job_name,
        submission.job_arn,
        clients.region,
        status=submission.status,
        reused=not submission.created,
        message=submission.message,
        previous_metrics=dict(previous_metrics) if previous_metrics is not None else None,
    )


def differences(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> List[str]:
    """What makes `existing` a different job from `wanted`; empty if it is the same."""
    found: List[str] = []
    have, want = image_digest_of(existing), image_digest_of(wanted)
    if have != want:
        found.append(f"image digest is {have or 'unpinned'} (this submission: {want})")
    have_hp, want_hp = _pipeline_hyperparameters(existing), _pipeline_hyperparameters(wanted)
    for key in sorted(set(have_hp) | set(want_hp)):
        if have_hp.get(key) != want_hp.get(key):
            found.append(f"hyperparameter {key} is {have_hp.get(key)!r} (this submission: {want_hp.get(key)!r})")
    return found


def _pipeline_hyperparameters(job: Mapping[str, Any]) -> Dict[str, str]:
    return {k: v for k, v in (job.get("HyperParameters") or {}).items() if not k.startswith(_PLATFORM_PREFIXES)}


def _accept(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> Submission:
    name = wanted["TrainingJobName"]
    diffs = differences(existing, wanted)
    if diffs:
        raise JobConflictError(
            f"Training job {name} already exists and is a different job: {'; '.join(diffs)}. "
            f"Nothing was submitted. Fix: if that job is stale, re-run with --force to submit under a new name."
        )
    status = str(existing.get("TrainingJobStatus", "Unknown"))
    note = " Re-run with --force to train again." if status in ("Failed", "Stopped") else ""
    return Submission(
        name,
        str(existing.get("TrainingJobArn", "")),
        False,
        status,
        f"Training job {name} already exists with the same image and hyperparameters (status {status}); "
        f"nothing submitted.{note}",
    )
