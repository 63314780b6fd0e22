"""The local runner: lay out a SageMaker-style tree from the repo's sample data.

SageMaker prepares `/opt/ml` before it starts `train`; locally this module does the same
under a run directory, then the *same* `run_training` runs. Runs are staged under a hidden
`.<id>.incomplete` name and renamed only when complete, so a half-written run never looks
finished; a failed one is renamed `<id>.failed` and keeps `output/failure`. A run killed
with -9 leaves its staging folder behind: the next run in the same place removes it once its
owner pid (in `.<id>.incomplete/.mlbuild-owner`, with the host name) is gone, or after a day.

    dist/mlbuild/runs/<pipeline folder, dotted>/<target>/
        <run id>/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json
        <run id>/input/data/<channel> -> <sample_data folder>/<channel's local path>
        <run id>/input/config/checkpointconfig.json        with `sagemaker.checkpoint_s3_uri` only
        <run id>/checkpoints -> checkpoints/<job key>       ditto: kept across re-runs of the same job
        <run id>/model/{model.pkl,metrics.json}
        latest -> <run id>
        checkpoints/<job key>/                              a job's checkpoints (key: hyperparameters hash)

A local job is "the same" as an earlier one when its pipeline and hyperparameters are: its run
id ends with the same hash (`job_key`), and it finds the earlier run's checkpoints, as a
restarted SageMaker job finds them in its checkpoint S3 URI.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import DataError
from mlbuild.stale_temps import DEAD_OWNER_GRACE_SECONDS, STALE_SECONDS, pid_alive, remove_tree

# NB: the pid of the process that staged a run, so the next run can tell a killed one's folder.
OWNER_FILE = ".mlbuild-owner"
# NB: what SageMaker local mode writes as the instance type; a local host is no ml.* instance.
LOCAL_INSTANCE_TYPE = "local"
RESOURCE_CONFIG = contract.resource_config(contract.host_name(0), [contract.host_name(0)], LOCAL_INSTANCE_TYPE)
CHECKPOINTS_STORE = "checkpoints"


def job_key(encoded_hyperparameters: Mapping[str, str]) -> str:
    """The hash that names a local job: the same pipeline folder and hyperparameters are the same job."""
    return hashlib.sha256(json.dumps(dict(encoded_hyperparameters), sort_keys=True).encode()).hexdigest()[:8]


def checkpoints_store(runs_parent: Path, key: str, host_count: int = 1) -> Path:
    """Where a local job keeps its checkpoints between runs (made if missing).

    NB: a job on N hosts is another job than the same pipeline on one (its checkpoints hold N
    hosts' state), so it gets its own folder: `<key>` for one host, `<key>-<N>hosts` for N.
    """
    path = runs_parent / CHECKPOINTS_STORE / (key if host_count == 1 else f"{key}-{host_count}hosts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir_parent(runs_dir: Path, address: str) -> Path:
    """`src/python/pipelines/churn:train` -> `<runs_dir>/src.python.pipelines.churn/train`."""
    spec_path, _, name = address.partition(":")
    return runs_dir / (spec_path.replace("/", ".") or "root") / (name or Path(spec_path).name)


def input_data_config(config: PipelineConfig) -> Dict[str, Dict[str, str]]:
    result = {}
    for channel in config.channels:
        entry = {
            "TrainingInputMode": channel.input_mode,
            "S3DistributionType": channel.distribution,
            "RecordWrapperType": "None",
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        result[channel.name] = entry
    return result


def local_channel_dirs(config: PipelineConfig, data_dir: Path) -> Dict[str, Path]:
    dirs = {}
    for channel in config.channels:
        path = data_dir / channel.local
        if not path.is_dir():
            raise DataError(
                f"{config.source}: `channels.{channel.name}`: local data directory {path} does not exist. "
                f"Fix: put the channel's sample files there, or change the ml_pipeline target's `sample_data` "
                f"field or `channels.{channel.name}.local`."
            )
        dirs[channel.name] = path.resolve()
    return dirs


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def prepare_run(
    config: PipelineConfig,
    address: str,
    data_dir: Path,
    runs_dir: Path,
    overrides: Mapping[str, str],
    link_channels: bool = True,
) -> Path:
    """Validate everything, then lay out a staged run directory and return it.

    With `link_channels`, `input/data/<channel>` are symlinks to the sample data (and
    `checkpoints` to the job's checkpoint store); a container runner passes False and
    bind-mounts `local_channel_dirs` (and `checkpoints_store`) there instead.
    """
    values = hyperparameters.resolve(config, overrides, "command line")
    channels = local_channel_dirs(config, data_dir)
    encoded = hyperparameters.encode(values)
    digest = job_key(encoded)
    first_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{digest}"
    parent = run_dir_parent(runs_dir, address)
    parent.mkdir(parents=True, exist_ok=True)
    for name in remove_stale_runs(parent):
        print(f"mlbuild: removed {parent / name}: a run whose process is gone (killed?)", file=sys.stderr)
    staging = _claim_staging(parent, first_id)
    _write_json(staging / contract.HYPERPARAMETERS_FILE, encoded)
    _write_json(staging / contract.INPUT_DATA_CONFIG_FILE, input_data_config(config))
    _write_json(staging / contract.RESOURCE_CONFIG_FILE, RESOURCE_CONFIG)
    if config.sagemaker.checkpoint_s3_uri:
        _write_json(
            staging / contract.CHECKPOINT_CONFIG_FILE, contract.checkpoint_config(config.sagemaker.checkpoint_s3_uri)
        )
        if link_channels:
            (staging / contract.CHECKPOINTS_DIR).symlink_to(
                checkpoints_store(parent, digest).resolve(), target_is_directory=True
            )
    for name, path in channels.items():
        link = staging / contract.DATA_DIR / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link_channels:
            link.symlink_to(path, target_is_directory=True)
        else:
            link.mkdir()
    return staging


def _claim_staging(parent: Path, first_id: str) -> Path:
    """`.<run id>.incomplete`, made with mkdir so concurrent runs never share one; the same
    hyperparameters again within a second get numbered ids."""
    for n in itertools.count(1):
        run_id = first_id if n == 1 else f"{first_id}-{n}"
        staging = parent / f".{run_id}.incomplete"
        try:
            os.mkdir(staging)
        except FileExistsError:
            continue
        # NB: checked after the mkdir: a run that had this id and already finished renamed its
        # staging folder away, which is why the mkdir could succeed.
        if (parent / run_id).exists() or (parent / f"{run_id}.failed").exists():
            os.rmdir(staging)
            continue
        (staging / OWNER_FILE).write_text(f"{os.getpid()} {socket.gethostname()}\n")
        return staging
    raise AssertionError("unreachable")


def is_stale_run(staging: Path, now: Optional[float] = None) -> bool:
    """A `.<id>.incomplete` folder whose owner died (kill -9): its owner pid is gone (after a
    grace, as pids are only meaningful on this machine), or it is older than a day."""
    if not (staging.name.startswith(".") and staging.name.endswith(".incomplete")) or staging.is_symlink():
        return False
    try:
        age = (time.time() if now is None else now) - staging.lstat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_SECONDS:
        return True
    try:
        pid_text, _, host = (staging / OWNER_FILE).read_text().strip().partition(" ")
        pid = int(pid_text or "0")
    except FileNotFoundError:
        return False  # NB: just made (owner not yet written), or an older mlbuild's: age decides
    except (OSError, ValueError):
        pid, host = 0, ""
    if host and host != socket.gethostname():
        return False  # NB: a run on another machine sharing this folder: its pid means nothing here
    return age > DEAD_OWNER_GRACE_SECONDS and pid != os.getpid() and not (pid > 0 and pid_alive(pid))


def remove_stale_runs(parent: Path, now: Optional[float] = None) -> List[str]:
    """Remove the stale `.<id>.incomplete` folders in `parent`; returns their names."""
    removed = []
    for path in sorted(parent.glob(".*.incomplete")):
        if path.is_dir() and is_stale_run(path, now):
            remove_tree(path)  # NB: channel links are unlinked, never followed
            removed.append(path.name)
    return removed


def finish_run(staging: Path, succeeded: bool) -> Path:
    """Publish a staged run under its final name; only a success moves `latest`."""
    run_id = staging.name[1 : -len(".incomplete")]
    with contextlib.suppress(FileNotFoundError):
        (staging / OWNER_FILE).unlink()
    final = staging.parent / (run_id if succeeded else f"{run_id}.failed")
    os.rename(staging, final)
    if succeeded:
        latest = staging.parent / "latest"
        tmp = staging.parent / f".latest.{os.getpid()}"
        tmp.symlink_to(run_id)
        os.replace(tmp, latest)
    return final
