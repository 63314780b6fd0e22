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
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

from mlbuild import console
from mlbuild.container_run.runner import run_image
from mlbuild.lineage.digests import model_checksum, tree_checksum
from mlbuild.lineage.errors import RecordError
from mlbuild.lineage.record import Record, make_record
from mlbuild.lineage.reuse import is_reusable, run_inputs
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.publish import report as publish_report
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.oci import referrer
from mlbuild.registry.push import content_tag, push_layout
from mlbuild.runtime import contract, hyperparameters
from mlbuild.names import EXIT_JOB_FAILED, HOSTS_RECORD, LOCAL_PUBLISH_DIR, image_entries
from mlbuild.runtime.config import PipelineConfig
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


def layout_digest(layout_dir: Path, ref: Optional[str]) -> str:
    """The manifest digest of image `ref` in an OCI layout; a user error if it isn't there."""
    index_file = Path(layout_dir) / "index.json"
    if not index_file.is_file():
        raise UserError(
            f"{layout_dir}: not an OCI image layout (no index.json); the image was not built. "
            "Fix: build it first (`./pants package <pipeline target>`) and pass its `.oci` folder as --layout."
        )
    for manifest in image_entries(json.loads(index_file.read_text()), ref):
        return manifest["digest"]
    raise UserError(
        f"{layout_dir}: no image named {ref!r} in index.json. "
        "Fix: pass the --ref the image was built with, or rebuild the image layout."
    )


def store_image(layout_dir: Path, ref: Optional[str], digest: str, repository: str, root: Path, registry: Optional[str]) -> str:
    if registry:
        return push_layout(layout_dir, ref, registry, allow_insecure_http=True).image_uri
    store = root / "registry"
    write_layout(read_layout(layout_dir, ref), store, f"{repository}:{content_tag(digest)}")
    for artifact in referrer.referrers(layout_dir, digest):  # NB: the provenance travels with the image
        referrer.attach(store, artifact)
    return f"oci:{store}/{repository}@{digest}"


def publish_local(
    *,
    layout_dir: Path,
    ref: Optional[str],
    config: PipelineConfig,
    config_path: Path,
    address: str,
    data_dir: Path,
    overrides: Mapping[str, str],
    root: Path = LOCAL_ROOT,
    registry: Optional[str] = None,
    force: bool = False,
    log=print,
    image_digest: Optional[str] = None,
) -> LocalJob:
    values = hyperparameters.resolve(config, overrides, "command line")
    encoded = hyperparameters.encode(values)
    data = {name: tree_checksum(path) for name, path in local_channel_dirs(config, data_dir).items()}
    digest = image_digest or layout_digest(layout_dir, ref)  # NB: Pants passes the digest it built
    repository = config.sagemaker.image_repository or pipeline_name_from_address(address)
    # NB: write_layout rewrites the local store's index.json: one writer at a time (a registry serialises itself).
    with _locked(root / ".registry.lock", "the local image store", log) if not registry else contextlib.nullcontext():
        image_uri = store_image(layout_dir, ref, digest, repository, root, registry)
    log(f"image: {image_uri}")
    inputs = run_inputs(digest, encoded, data)  # NB: what names the job and what reuse compares
    pipeline = pipeline_name_from_address(address)
    name = _claim_forced_name(root / "jobs", pipeline, inputs) if force else job_name(pipeline, inputs)
    job_dir = root / "jobs" / name
    # NB: the job is claimed while it trains: an identical publish started meanwhile waits here,
    # then finds it completed and reuses it, instead of training a second time.
    with _locked(job_dir / JOB_LOCK, f"job {name} (an identical publish is training it)", log):
        existing = _read_job(job_dir)
        if existing is not None and not force and is_reusable(existing.get("status"), _job_inputs(existing), inputs):
            log(f"job {name} already completed with this image, hyperparameters and data: reusing it (--force to train again)")
            return LocalJob(name, "Completed", image_uri, True, existing, job_dir)
        started = _now()
        outcome = run_image(layout_dir, ref, config_path, address, data_dir, root / "runs", overrides)
        record: Dict[str, Any] = {
            "job_name": name,
            "status": "Completed" if outcome.succeeded else "Failed",
            "image_uri": image_uri,
            "image_digest": digest,
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
        return LocalJob(name, record["status"], image_uri, False, record, job_dir)


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


def local_report(job: LocalJob, previous: Optional[Mapping[str, float]] = None, git_sha: str = "", pex_sha256: str = "") -> Dict[str, Any]:
    """The job's report in the schema both backends share (publish/report.py)."""
    return publish_report.local_report(
        job.record, job_name=job.name, status=job.status, reused=job.reused, image_uri=job.image_uri,
        previous=previous, git_sha=git_sha, pex_sha256=pex_sha256,
    )


def previous_metrics(root: Path, address: str, exclude: str) -> Optional[Dict[str, float]]:
    """The metrics of the latest other completed local job of this pipeline, for the diff."""
    jobs = []
    for path in (root / "jobs").glob(f"*/{JOB_FILE}"):
        try:
            record = _read_job(path.parent)
        except PlatformError as e:  # NB: another job's broken file must not fail this publish
            console.warn(str(e))
            continue
        if record and record.get("pipeline_address") == address and record.get("status") == "Completed" and record.get("job_name") != exclude:
            jobs.append((str(record.get("end", "")), record))
    metrics = max(jobs, key=lambda j: j[0])[1].get("metrics") if jobs else None
    return metrics if isinstance(metrics, dict) else None


def _link(path: Optional[str]) -> str:
    """A Markdown link to a local file (opens in editors and viewers that render the report)."""
    if not path:
        return "-"
    return f"[`{path}`]({Path(path).resolve().as_uri()})"


def job_exit_code(job: LocalJob) -> int:
    """0 for a completed job; else what `train` said (2 the user's error, 3 mlbuild's), as
    `pants run` exits; FAILED_JOB_EXIT_CODE when it said neither (killed, another code)."""
    if job.status == "Completed":
        return 0
    code = job.record.get("exit_code")
    return code if code in (UserError.exit_code, PlatformError.exit_code) else FAILED_JOB_EXIT_CODE


def _hosts_line(hosts: Sequence[Mapping[str, Any]]) -> str:
    """`algo-1 (leader): train 4 files; algo-2: train 4 files`: each host and its shares."""
    def shares(host: Mapping[str, Any]) -> str:
        return ", ".join(f"{channel} {len(share.get('keys', []))} files" for channel, share in sorted(host.get("channels", {}).items()))

    return "; ".join(f"{h['host']}{' (leader)' if h.get('leader') else ''}: {shares(h)}" for h in hosts)


def local_markdown(report: Mapping[str, Any]) -> str:
    model = report.get("model") or {}
    lines = [
        f"### mlbuild: `{report['pipeline_address']}` trained locally: **{report['status']}**",
        "",
        "| | |",
        "|---|---|",
        f"| Image | `{report['image_uri']}` |",
        f"| Job | `{report['job_name']}`{' (reused: identical image, hyperparameters and data)' if report['reused'] else ''} |",
        f"| Run directory (inputs, outputs) | `{report['run_dir']}` |",
        f"| Log | {_link(report.get('logs')) if report.get('logs') != report.get('run_dir') else '-'} |",
        *([f"| Hosts | {_hosts_line(report['hosts'])} |"] if report.get("hosts") else []),
        f"| Model | `{model.get('uri', '-')}` |",
        f"| Model sha256 | `{model.get('sha256', '-')}` |",
    ]
    if report.get("failure_reason"):
        lines += ["", "**Failure reason**", "", "```", str(report["failure_reason"]).strip(), "```"]
    metrics = report.get("metrics") or {}
    previous = report.get("previous_metrics") or {}
    if metrics:
        lines += ["", "| Metric | Value | Previous | Change |", "|---|---|---|---|"]
        for name in sorted(metrics):
            value, before = metrics[name], previous.get(name)
            change = f"{value - before:+.4g}" if isinstance(before, (int, float)) and isinstance(value, (int, float)) else "-"
            lines.append(f"| `{name}` | {value:.4g} | {before if before is not None else '-'} | {change} |")
    return "\n".join(lines) + "\n"
