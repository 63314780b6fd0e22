"""The offline publish backend: a laptop runs the whole flow with nothing but the repo.

1. "push": the image goes into a local OCI store (an image layout under
   `.mlbuild/local/registry/`, every version kept by content tag), or to a local registry
   (`--registry 127.0.0.1:5000/churn`) through mlbuild's registry client;
2. the training job runs in mlbuild's SageMaker-style container runner, on the sample data;
3. the model is archived as `model.tar.gz` under `.mlbuild/local/jobs/<job>/output/`, the
   way SageMaker stores it under `<output_path>/<job>/output/`;
4. the same report as the AWS backend is printed and written.

The job is named as a SageMaker job is (`sagemaker.job_name`: `<pipeline>-<inputs hash>`), over
its inputs (`lineage.reuse.run_inputs`: image digest, hyperparameter strings, data checksums), and
`jobs/<job>/job.json` stands in for DescribeTrainingJob: publishing the same thing twice finds
the finished job there and reuses it when `lineage.reuse.is_reusable` (the decision `pants run`
takes over the lineage store) says so, instead of training again. A job is claimed while it
trains (an flock on `jobs/<job>/.lock`, released by the kernel if the process dies), so
identical publishes started together train once; a forced job's name (`<job>-r<UTC time>`, the
next second's when taken, as on AWS) is claimed with mkdir, so forced publishes never share one.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence

from mlbuild import console
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.job_report import JobReport
from mlbuild.lineage.digests import model_checksum, tree_checksum
from mlbuild.lineage.errors import RecordError
from mlbuild.lineage.record import Record, make_record
from mlbuild.lineage.reuse import is_reusable, run_inputs
from mlbuild.names import EXIT_JOB_FAILED, HOSTS_RECORD, LOCAL_PUBLISH_DIR
from mlbuild.oci import referrer
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.publish.backend import Previous, Publication, PushedImage, Transformed, layout_digest
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.registry.push import content_tag, push_layout
from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.errors import PlatformError, UserError
from mlbuild.runtime.local_run import local_channel_dirs
from mlbuild.sagemaker.job_name import forced_job_names, job_name, pipeline_name_from_address

JOB_FILE = "job.json"
JOB_LOCK = ".lock"
FAILED_JOB_EXIT_CODE = EXIT_JOB_FAILED  # NB: the code mlbuild.sagemaker uses for a Failed job.
LOCAL_ROOT = Path(LOCAL_PUBLISH_DIR)


@dataclass(frozen=True)
class LocalJob:
    name: str
    status: str
    image_uri: str
    reused: bool
    record: Dict[str, Any]
    job_dir: Path
    publication: Optional[Publication] = None  # what was published (None for a job read back from job.json alone)


def store_image(
    layout_dir: Path, ref: Optional[str], digest: str, repository: str, root: Path, registry: Optional[str]
) -> str:
    if registry:
        return push_layout(layout_dir, ref, registry, allow_insecure_http=True).image_uri
    store = root / "registry"
    write_layout(read_layout(layout_dir, ref), store, f"{repository}:{content_tag(digest)}")
    for artifact in referrer.referrers(layout_dir, digest):  # NB: the provenance travels with the image
        referrer.attach(store, artifact)
    return f"oci:{store}/{repository}@{digest}"


@dataclass
class LocalBackend:
    """The offline backend (the `Backend` protocol): a local OCI store or registry, mlbuild's
    container runner on the sample data, jobs and their records under `root`."""

    data_dir: Path  # the sample data the job trains on
    root: Path = LOCAL_ROOT
    registry: Optional[str] = None  # push here (host:port/repo) instead of the local OCI store
    source: Optional[Mapping[str, Any]] = None  # the revision published, for the lineage record
    log: Callable[[str], None] = console.say
    name: str = "local"

    def push(self, publication: Publication) -> PushedImage:
        digest = publication.image_digest or layout_digest(
            publication.layout_dir, publication.ref
        )  # NB: Pants passes the digest it built
        repository = publication.config.sagemaker.image_repository or pipeline_name_from_address(publication.address)
        # NB: write_layout rewrites the local store's index.json: one writer at a time (a registry serialises itself).
        registry = self.registry
        with (
            _locked(self.root / ".registry.lock", "the local image store", self.log)
            if not registry
            else contextlib.nullcontext()
        ):
            image_uri = store_image(publication.layout_dir, publication.ref, digest, repository, self.root, registry)
        self.log(f"image: {image_uri}")
        return PushedImage(image_uri, digest)

    def train(self, publication: Publication, image: PushedImage) -> LocalJob:
        config, address, root = publication.config, publication.address, self.root
        values = hyperparameters.resolve(config, publication.overrides, "command line")
        encoded = hyperparameters.encode(values)
        data = {name: tree_checksum(path) for name, path in local_channel_dirs(config, self.data_dir).items()}
        inputs = run_inputs(image.digest, encoded, data)  # NB: what names the job and what reuse compares
        pipeline = pipeline_name_from_address(address)
        name = _claim_forced_name(root / "jobs", pipeline, inputs) if publication.force else job_name(pipeline, inputs)
        job_dir = root / "jobs" / name
        # NB: the job is claimed while it trains: an identical publish started meanwhile waits here,
        # then finds it completed and reuses it, instead of training a second time.
        with _locked(job_dir / JOB_LOCK, f"job {name} (an identical publish is training it)", self.log):
            existing = _read_job(job_dir)
            if (
                existing is not None
                and not publication.force
                and is_reusable(existing.get("status"), _job_inputs(existing), inputs)
            ):
                self.log(
                    f"job {name} already completed with this image, hyperparameters and data: reusing it (--force to train again)"
                )
                return LocalJob(name, "Completed", image.uri, True, existing, job_dir, publication)
            started = _now()
            plan = RunPlan(
                layout_dir=publication.layout_dir, ref=publication.ref, config=config, address=address,
                data_dir=self.data_dir, runs_dir=root / "runs", overrides=publication.overrides,
            )  # fmt: skip
            outcome = run_image(plan)
            record: Dict[str, Any] = {
                "job_name": name,
                "status": "Completed" if outcome.succeeded else "Failed",
                "image_uri": image.uri,
                "image_digest": image.digest,
                "pipeline_address": address,
                "hyperparameters": encoded,
                "data": data,
                "run_dir": str(outcome.run_dir),
                "start": started,
                "end": _now(),
                "metrics": outcome.metrics or {},
                "failure_reason": outcome.failure_reason,
                "exit_code": outcome.exit_code,
            }
            log_file = Path(outcome.run_dir) / contract.LOG_FILE
            if log_file.is_file():
                record["log"] = str(log_file)  # NB: on N hosts, every host's lines, prefixed [algo-N]
            hosts_file = Path(outcome.run_dir) / HOSTS_RECORD
            if hosts_file.is_file():
                record["hosts"] = json.loads(hosts_file.read_text())
            if outcome.succeeded:
                archive = job_dir / "output" / "model.tar.gz"
                sha256 = write_model_archive(outcome.model_dir, archive)
                record["model"] = {"uri": str(archive), "sha256": sha256, "checksum": model_checksum(archive)}
            job_dir.mkdir(parents=True, exist_ok=True)
            tmp = job_dir / f".{JOB_FILE}.{os.getpid()}"
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, job_dir / JOB_FILE)
            return LocalJob(name, record["status"], image.uri, False, record, job_dir, publication)

    def wait(self, job: LocalJob) -> LocalJob:
        return job  # NB: a local job runs in the foreground: train returns once it has ended

    def report(self, job: LocalJob, previous: Previous) -> JobReport:
        return local_report(job, previous)

    def record(self, job: LocalJob, report: JobReport) -> Record:
        return local_record(job, self.source)

    def share(self, records: Sequence[Record], job: LocalJob) -> None:
        return None  # NB: the local lineage store is the only place a local job's records go

    def exit_code(self, job: LocalJob) -> int:
        return job_exit_code(job)

    def transform(self, job: LocalJob, input_path: str, output: str) -> Transformed:
        """Serve the job's model.tar.gz with the image's own `serve` and transform `input_path` through it."""
        from mlbuild.container_run.serve import serve_image
        from mlbuild.serving.transform import TransformConfig, run_transform

        model = (job.record.get("model") or {}).get("uri")
        if job.status != "Completed" or not model:
            raise UserError(
                f"job {job.name} is {job.status} and has no model to transform with. Fix: publish a job that completes."
            )
        publication = job.publication
        if publication is None:
            raise UserError(
                f"job {job.name} was not published from an image layout here. Fix: publish it again, then transform."
            )
        with serve_image(publication.layout_dir, publication.ref, Path(model)) as url:
            result = run_transform(url, Path(input_path), Path(output), TransformConfig().validate(), self.log)
        return Transformed(
            output, f"{result.records} records from {len(result.files)} files with the model of {job.name}"
        )


def _read_job(job_dir: Path) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads((job_dir / JOB_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise PlatformError(f"{job_dir / JOB_FILE}: not JSON ({e}). Fix: delete {job_dir} and publish again.") from e
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def _locked(path: Path, what: str, log) -> Iterator[None]:
    """Hold an exclusive lock on `path` (flock: released by the kernel if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {what}")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _job_inputs(record: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A job.json's inputs in `run_inputs` form; None when it lacks them (then it is not reused)."""
    try:
        return run_inputs(record["image_digest"], record["hyperparameters"], record["data"])
    except (KeyError, TypeError, AttributeError, RecordError):
        return None


def _claim_forced_name(jobs_dir: Path, pipeline_name: str, inputs: Mapping[str, Any]) -> str:
    """`<job>-r<UTC time>`, the next second's when taken (`forced_job_names`, as on AWS): the job
    folder is made with mkdir, which only one of several --force publishes can win for a name."""
    jobs_dir.mkdir(parents=True, exist_ok=True)
    for candidate in forced_job_names(pipeline_name, inputs, datetime.datetime.now(datetime.timezone.utc)):
        try:
            os.mkdir(jobs_dir / candidate)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_record(job: LocalJob, source: Optional[Mapping[str, Any]] = None) -> Record:
    """The lineage record of a local job: revision, image, hyperparameters, data, model, metrics.

    The model is pinned twice: model.tar.gz's sha256, and the checksum of the files inside
    it, which a host run of the same model (model/ unarchived) records too.
    """
    r = job.record
    model = None
    if r.get("model"):
        archive = Path(r["model"]["uri"])
        checksum = r["model"].get("checksum") or (model_checksum(archive) if archive.is_file() else None)
        model = {"uri": archive.resolve().as_uri(), "sha256": r["model"]["sha256"], "checksum": checksum}
    return make_record(
        "publish",
        r["pipeline_address"],
        source=dict(source) if source else None,
        image={"manifest_digest": r["image_digest"], "ref": job.image_uri},
        hyperparameters=r["hyperparameters"],
        data=[{"name": name, "uri": name, "checksum": checksum} for name, checksum in sorted(r["data"].items())],
        job={"name": job.name, "status": r["status"], "start": r["start"], "end": r["end"]},
        model=model,
        metrics=r.get("metrics") or None,
        # NB: dated by the job, not the publish: every publish that reuses the job records the
        # very same record (same id), so the store holds one record per job.
        created=r["end"],
    )


def local_report(job: LocalJob, previous: Previous) -> JobReport:
    """The job's report, from its job record (`job.json`)."""
    r, publication = job.record, job.publication
    model = r.get("model")
    hosts = r.get("hosts") or {}
    return JobReport(
        backend="local",
        job_name=job.name,
        status=job.status,
        image_uri=job.image_uri,
        pipeline_address=r.get("pipeline_address") or "",
        image_digest=r.get("image_digest"),
        git_sha=(publication.git_sha if publication else "") or None,
        pex_sha256=(publication.pex_sha256 if publication else "") or None,
        reused=job.reused,
        run_dir=r.get("run_dir"),
        # NB: a job on N hosts: its count and each host's data shards (container_run's hosts.json).
        instance_count=hosts.get("instance_count", 1),
        hosts=hosts.get("hosts"),
        logs=r.get("log"),
        model={"uri": model.get("uri"), "sha256": model.get("sha256")} if model else None,
        metrics=dict(r.get("metrics") or {}),
        failure_reason=r.get("failure_reason"),
        previous_metrics=dict(previous.metrics) if previous.metrics is not None else None,
        previous_note=previous.note,
    )


def job_exit_code(job: LocalJob) -> int:
    """0 for a completed job; else what `train` said (2 the user's error, 3 mlbuild's), as
    `pants run` exits; FAILED_JOB_EXIT_CODE when it said neither (killed, another code)."""
    if job.status == "Completed":
        return 0
    code = job.record.get("exit_code")
    return code if code in (UserError.exit_code, PlatformError.exit_code) else FAILED_JOB_EXIT_CODE
