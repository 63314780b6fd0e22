"""replay(): run a finished job again on this machine, exactly as it ran, and judge the result.

    check the job is finished -> its image by digest (store or cache, never rebuilt) -> the
    config inside the image -> the job's model files -> its data, checked against the pins
    -> the container runner (as `pants run --mlbuild-container`) with the job's hyperparameter
    strings -> the verdict -> a lineage record of the replay, its parent the job's record

NB: everything that can be wrong with the input (unknown image, changed data, missing
model) is found before anything is written; the replay's folder is
`<local root>/replays/<job>/` (its config, data links and run directories).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple

from mlbuild import console
from mlbuild.container_run.outcome import RunOutcome
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.lineage.collect import run_record
from mlbuild.lineage.digests import file_sha256
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.replay.data import data_checksums, job_data_dirs, link_data_dir
from mlbuild.replay.image import JobImage, config_from_image, config_path_in_image, job_image
from mlbuild.replay.job import AWS, ReplayJob
from mlbuild.replay.verdict import Verdict, archive_files, judge
from mlbuild.runtime import contract
from mlbuild.runtime.config import config_text, parse_config
from mlbuild.runtime.errors import UserError

REPLAYS_DIR = "replays"
MODEL_ARCHIVE = "model.tar.gz"
FINISHED = ("Completed", "Failed")

Run = Callable[[RunPlan, TextIO], RunOutcome]
# (job, work folder) -> job model archive path; the AWS side downloads it, the local one has it
FetchModel = Callable[[ReplayJob, Path], Path]
# (job, config) -> {channel: folder}; the AWS side pulls S3 channels into the cache
FetchData = Callable[[ReplayJob, Any], Dict[str, Path]]


@dataclass(frozen=True)
class ReplayResult:
    verdict: Verdict
    record_id: Optional[str]
    image: JobImage
    seconds: Dict[str, float] = field(default_factory=dict)


def local_model(job: ReplayJob, work: Path) -> Path:
    path = Path(job.model or "")
    if not job.model or not path.is_file():
        raise UserError(
            f"job {job.name}: its model {job.model or '(not recorded)'} is gone, so there is nothing to compare with. "
            "Fix: publish the pipeline again (--mlbuild-force), then replay the new job."
        )
    return path


def local_data(job: ReplayJob, config: Any) -> Dict[str, Path]:
    return job_data_dirs(job.name, job.data_dirs, job.data)


def replay(
    job: ReplayJob,
    *,
    local_root: Path,
    cache_dir: Path,
    store: Optional[Store] = None,
    sample_data: Optional[Path] = None,
    expect_failure: bool = False,
    stream: Optional[TextIO] = None,
    run: Run = run_image,
    fetch_model: FetchModel = local_model,
    fetch_data: FetchData = local_data,
) -> ReplayResult:
    stream = stream or sys.stderr
    if job.status not in FINISHED:
        raise UserError(
            f"job {job.name} is {job.status or 'in an unknown state'}, not finished. Fix: wait for it to end, then replay it."
        )
    if expect_failure and job.succeeded:
        raise UserError(
            f"job {job.name} completed; --expect-failure is for replaying a failed job. Fix: drop --expect-failure."
        )
    if sample_data is not None and not Path(sample_data).is_dir():
        raise UserError(
            f"--sample-data {sample_data}: not a folder. Fix: pass the folder with one subfolder per channel."
        )
    seconds: Dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.monotonic() - clock, 3)
        clock = time.monotonic()

    image = job_image(job.image_uri, job.image_digest, cache_dir, progress=stream)
    config_bytes = config_from_image(image.image)
    lap("image")
    source = f"{job.image_digest[:19]}…:/{config_path_in_image(image.image)}"
    config = parse_config(config_text(config_bytes, source), source)
    work = Path(local_root) / REPLAYS_DIR / job.name
    job_archive = fetch_model(job, work) if job.succeeded else None
    notes: List[str] = not_replayed(job)
    if sample_data is not None:
        data_dir = Path(sample_data)
        used = data_checksums(config, data_dir)
        if used != job.data:
            notes.append(
                f"replayed on {data_dir}, not the job's data (channels differ: "
                f"{', '.join(sorted(c for c in set(used) | set(job.data) if used.get(c) != job.data.get(c)))})"
            )
    else:
        channels = fetch_data(job, config)
    lap("data")
    work.mkdir(parents=True, exist_ok=True)
    if sample_data is None:
        data_dir = link_data_dir(config, channels, work / "data")
    plan = RunPlan(
        image.layout_dir, image.ref, config, job.address, data_dir, work / "runs", job.hyperparameters,
        cache_dir=cache_dir, instance_count=job.instance_count, environment=job.environment,
    )  # fmt: skip
    outcome = run(plan, stream)
    lap("run")
    notes += _hyperparameter_notes(job, outcome.run_dir)
    job_metrics, replay_metrics = job.metrics, outcome.metrics or {}
    if job.backend == AWS:
        job_metrics, replay_metrics = sagemaker_metrics(config.metrics, job_metrics, replay_metrics, notes)
    if job.succeeded and outcome.succeeded and not job_metrics:
        # NB: e.g. a job whose metric definitions matched nothing: every replay metric would
        # "differ" from an absent one, which says nothing about the replay.
        notes.append("the job recorded no final metrics, so only the model files were compared")
        replay_metrics = {}
    replay_files: Dict[str, str] = {}
    if outcome.succeeded and job_archive is not None:
        archive = outcome.run_dir / contract.OUTPUT_DIR / MODEL_ARCHIVE
        sha256 = write_model_archive(outcome.model_dir, archive)
        if sha256 == file_sha256(job_archive):
            notes.append(f"{MODEL_ARCHIVE} is byte-identical too (sha256 {sha256[:12]})")
        replay_files = archive_files(archive)
    verdict = judge(
        job.name,
        job.succeeded,
        outcome.succeeded,
        outcome.run_dir,
        job_files=archive_files(job_archive) if job_archive is not None else {},
        replay_files=replay_files,
        job_metrics=job_metrics,
        replay_metrics=replay_metrics,
        job_failure=job.failure_reason,
        replay_failure=outcome.failure_reason,
        expect_failure=expect_failure,
        notes=notes,
    )
    lap("compare")
    record_id = save_record(store, replay_record(job, outcome.run_dir, verdict)) if store is not None else None
    return ReplayResult(verdict, record_id, image, seconds)


def sagemaker_metrics(
    declared: Sequence[str], job: Mapping[str, Any], replay: Mapping[str, Any], notes: List[str]
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A SageMaker job's final metrics can only be the ones its MetricDefinitions scraped, which
    publish builds from the config's `metrics` list: compare those; name any other the job
    reports (not the pipeline's: e.g. an emulator's `train:progress`)."""
    names = set(declared)
    foreign = sorted(set(job) - names)
    if foreign:
        notes.append("job metrics the pipeline does not define were not compared: " + ", ".join(foreign))
    return {k: v for k, v in job.items() if k in names}, {k: v for k, v in replay.items() if k in names}


def not_replayed(job: ReplayJob) -> List[str]:
    """What of the job's shape the replay does not reproduce, one note each (shown with the verdict).

    The container runner runs the job's instance count as local hosts (algo-1..algo-N) with the
    job's environment variables over the image's, and an empty /opt/ml/checkpoints: a job that
    resumed from checkpoints is replayed without them, and the verdict says so.
    """
    notes = []
    if job.checkpoint_uri:
        notes.append(
            f"the job's checkpoints ({job.checkpoint_uri}) were not restored: the replay started with an "
            "empty /opt/ml/checkpoints, as the job did unless it resumed from earlier checkpoints"
        )
    return notes


def replay_record(job: ReplayJob, run_dir: Path, verdict: Verdict) -> Record:
    """A run record of the replay whose parent is the job's record; `extra.replay` says the verdict.

    NB: the store has no "replay" kind; a run record with a parent link and the verdict in
    `extra` needs no change to lineage/; `inspect` shows the verdict from there.
    """
    body = run_record(
        run_dir, job.address, parents=[job.record_id] if job.record_id else (), image_digest=job.image_digest
    ).body
    body["extra"] = {
        **(body.get("extra") or {}),
        "replay": {"of": job.name, "of_record": job.record_id, "verdict": verdict.outcome},
    }
    return Record(body)


def save_record(store: Store, record: Record) -> Optional[str]:
    try:
        return store.put(record)
    except Exception as e:  # NB: the verdict stands even when the store is unwritable
        console.warn(f"could not write the replay's lineage record: {e}")
        return None


def _hyperparameter_notes(job: ReplayJob, run_dir: Path) -> List[str]:
    """The container reads the canonical encoding; say so when the job's strings were spelled otherwise."""
    try:
        written = json.loads((run_dir / contract.HYPERPARAMETERS_FILE).read_text())
    except (OSError, ValueError):
        return []
    respelled = sorted(k for k in job.hyperparameters if k in written and written[k] != job.hyperparameters[k])
    if not respelled:
        return []
    return [
        "hyperparameters given in the canonical encoding, as the job's decode to the same values: "
        + ", ".join(f"{k}={job.hyperparameters[k]!r} -> {written[k]!r}" for k in respelled)
    ]
