"""One publish, whichever backend: push, train, wait, compare, report, record.

The steps and their order are written once here, above the `Backend` protocol (backend.py);
what differs between ECR + SageMaker and the offline backend lives in aws.py and local.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from mlbuild.job_report import NO_PREVIOUS, JobReport
from mlbuild.lineage.compare import previous_metrics
from mlbuild.lineage.store import ROOT_ENV_VAR, Store
from mlbuild.publish.backend import Backend, Previous, Publication


@dataclass(frozen=True)
class Published:
    job: Any  # the backend's job handle
    report: JobReport


def previous_of(store: Optional[Store], address: str, job_name: str) -> Previous:
    """The metrics to compare a job with: the pipeline's previous successful run in the lineage
    store (local or SageMaker, any other job), or why there are none."""
    if store is None:
        return Previous(
            None, f"{NO_PREVIOUS}: no lineage store is configured ({ROOT_ENV_VAR} is unset; ./pants sets it)"
        )
    metrics = previous_metrics(store, address, exclude_job=job_name)
    return Previous(metrics, None if metrics is not None else f"{NO_PREVIOUS} for {address} in the lineage store")


def publish(
    backend: Backend,
    publication: Publication,
    store: Optional[Store],
    *,
    write_report: Callable[[JobReport], None],
    save_record: Callable[[Any], object],
    package_records: Sequence[Any] = (),
) -> Published:
    """Push, train, wait; the report is written and the record kept before a failed job
    becomes an exit code (`backend.exit_code(job)`, the caller's to raise or return)."""
    image = backend.push(publication)
    job = backend.wait(backend.train(publication, image))
    report = backend.report(job, previous_of(store, publication.address, job.name))
    write_report(report)
    record = backend.record(job, report)
    save_record(record)
    backend.share([*package_records, record], job)
    return Published(job, report)
