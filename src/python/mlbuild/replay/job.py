"""What a job ran and produced, found from whatever names it: `resolve(query, ...)`.

a local-backend job name      -> .mlbuild/local/jobs/<name>/job.json
a lineage hash or prefix      -> the publish record(s) that mention it -> their job
a SageMaker job name or ARN   -> DescribeTrainingJob (with aws=True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from mlbuild.lineage.errors import NotFoundError
from mlbuild.lineage.index import RUNS_COMMAND
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store
from mlbuild.publish.local import JOB_FILE
from mlbuild.runtime import contract
from mlbuild.runtime.errors import PlatformError, UserError

LOCAL = "local"
AWS = "aws"


@dataclass(frozen=True)
class ReplayJob:
    name: str
    backend: str  # LOCAL | AWS
    address: str  # the pipeline target
    status: str  # SageMaker's vocabulary: Completed, Failed, ...
    image_uri: str  # `oci:<store>/<repo>@sha256:…` or `<registry>/<repo>@sha256:…`
    image_digest: str
    hyperparameters: Dict[str, str]  # the exact strings the job received
    data: Dict[str, str]  # channel -> the checksum the job pinned
    data_dirs: Dict[str, Path] = field(default_factory=dict)  # local: where the job's data was
    model: Optional[str] = None  # local: model.tar.gz path; aws: its S3 URI
    metrics: Dict[str, Any] = field(default_factory=dict)
    failure_reason: Optional[str] = None
    record_id: Optional[str] = None  # the job's lineage record, if the store has one
    data_sources: Dict[str, str] = field(default_factory=dict)  # aws: channel -> S3 prefix
    # The job's shape beyond image, hyperparameters and data (DescribeTrainingJob's
    # ResourceConfig, CheckpointConfig and Environment); replay.not_replayed says which of it
    # the replay could not reproduce.
    instance_count: int = 1
    instance_type: Optional[str] = None
    checkpoint_uri: Optional[str] = None
    environment: Dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "Completed"


def local_job(jobs_dir: Path, name: str) -> Optional[ReplayJob]:
    """The local-backend job `name`, or None if there is none by that name."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = Path(jobs_dir) / name / JOB_FILE
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as e:
        raise PlatformError(f"{path}: not readable JSON ({e}). Fix: delete {path.parent} and publish again.") from e
    if not isinstance(body, dict) or not all(
        k in body for k in ("image_uri", "image_digest", "pipeline_address", "status")
    ):
        raise PlatformError(
            f"{path}: not a local job record (no image, pipeline or status). Fix: delete {path.parent} and publish again."
        )
    run_dir = Path(body.get("run_dir") or "")
    data = body.get("data") or {}
    return ReplayJob(
        name=name,
        backend=LOCAL,
        address=body["pipeline_address"],
        status=body["status"],
        image_uri=body["image_uri"],
        image_digest=body["image_digest"],
        hyperparameters=dict(body.get("hyperparameters") or {}),
        data=dict(data),
        # NB: the job's run directory links each channel to the data it trained on.
        data_dirs={channel: run_dir / contract.DATA_DIR / channel for channel in data} if body.get("run_dir") else {},
        model=(body.get("model") or {}).get("uri"),
        metrics=dict(body.get("metrics") or {}),
        failure_reason=body.get("failure_reason"),
    )


def aws_job(describe: Mapping[str, Any], address: Optional[str] = None) -> ReplayJob:
    """A ReplayJob from a DescribeTrainingJob response."""
    name = describe["TrainingJobName"]
    image = (describe.get("AlgorithmSpecification") or {}).get("TrainingImage") or ""
    if "@sha256:" not in image:
        raise UserError(
            f"SageMaker job {name}: its image {image!r} is not pinned by digest, so what ran cannot be told. "
            "Fix: replay a job published by mlbuild (it submits images as repo@sha256:…)."
        )
    sources = {}
    for channel in describe.get("InputDataConfig") or []:
        uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        if uri:
            sources[channel["ChannelName"]] = uri
    tags = {t.get("Key"): t.get("Value") for t in describe.get("Tags") or []}
    resources = describe.get("ResourceConfig") or {}
    return ReplayJob(
        name=name,
        backend=AWS,
        address=address or tags.get("mlbuild:pipeline") or "",
        status=describe.get("TrainingJobStatus") or "",
        image_uri=image,
        image_digest=image.rsplit("@", 1)[1],
        hyperparameters=dict(describe.get("HyperParameters") or {}),
        data={},
        model=(describe.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        metrics={m["MetricName"]: m["Value"] for m in describe.get("FinalMetricDataList") or [] if "MetricName" in m},
        failure_reason=describe.get("FailureReason"),
        data_sources=sources,
        instance_count=int(resources.get("InstanceCount") or 1),
        instance_type=resources.get("InstanceType"),
        checkpoint_uri=(describe.get("CheckpointConfig") or {}).get("S3Uri"),
        environment={str(k): str(v) for k, v in (describe.get("Environment") or {}).items()},
    )


def job_records(store: Store, name: str) -> List[Record]:
    """The publish records of job `name`, newest last."""
    try:
        found = store.find(name)
    except NotFoundError:
        return []
    return sorted(
        (r for r in found if r.kind == "publish" and r.get("job.name") == name), key=lambda r: (r.created, r.id)
    )


def jobs_of(store: Store, query: str) -> List[str]:
    """The names of the jobs whose publish records mention `query` (a hash, prefix, record id)."""
    return sorted({r.get("job.name") for r in store.find(query) if r.kind == "publish" and r.get("job.name")})


def resolve(
    query: str,
    jobs_dir: Path,
    store: Store,
    describe: Optional[Callable[[str], Optional[Mapping[str, Any]]]] = None,
) -> ReplayJob:
    """The job `query` names. `describe` (DescribeTrainingJob by name, None if absent) enables AWS jobs.

    Raises UserError (exit 2) for an unknown job or hash and an ambiguous prefix (the store's
    AmbiguousError lists the candidates).
    """
    query = query.strip()
    if query.startswith("arn:") and describe is None:
        raise UserError(f"{query!r} is a SageMaker job ARN. Fix: pass --aws (and --region) to look it up in SageMaker.")
    job = local_job(jobs_dir, query)
    name = query
    if job is None and not query.startswith("arn:"):
        try:
            names = jobs_of(store, query)
        except NotFoundError:
            names = [] if describe is not None else _not_found(query, jobs_dir)
        if len(names) > 1:
            listed = "\n".join(f"  {n}" for n in names)
            raise UserError(f"{query!r} leads to {len(names)} jobs:\n{listed}\nFix: replay one of them by name.")
        if names:
            name = names[0]
            job = local_job(jobs_dir, name)
        elif describe is None:
            raise UserError(
                f"{query!r}: the lineage records that mention it belong to no training job (a package or a local run). "
                f"Fix: publish it first (`./pants publish <pipeline>`), or give a job name; list jobs with `{RUNS_COMMAND}`."
            )
    records = job_records(store, job.name if job else name.rsplit("/", 1)[-1])
    if job is None and describe is not None:
        response = describe(name.rsplit("/", 1)[-1])  # NB: an ARN ends in training-job/<name>
        if response is None:
            raise UserError(
                f"{query!r}: no SageMaker training job by that name in this region. Fix: check the name and --region."
            )
        address = records[-1].pipeline if records else None
        job = aws_job(response, address)
        if records:  # NB: the publish record pins each channel by its S3 listing checksum
            job = replace(
                job, data={c["name"]: c["checksum"] for c in records[-1].get("data") or [] if "checksum" in c}
            )
    if job is None:
        raise UserError(
            f"{query!r}: its lineage records name job {name}, which is not in {jobs_dir}. "
            "Fix: for an AWS job, pass --aws (and --region); for a local one, publish again to recreate it."
        )
    return replace(job, record_id=records[-1].id) if records else job


def _not_found(query: str, jobs_dir: Path) -> List[str]:
    raise UserError(
        f"{query!r}: no local job by that name in {jobs_dir} and no lineage record mentions it. "
        f"Fix: check the name or hash (list jobs with `ls {jobs_dir}` or `{RUNS_COMMAND}`); for a SageMaker job pass --aws."
    )
