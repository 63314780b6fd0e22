"""The local runner: lay out a SageMaker-style tree from the repo's sample data.

SageMaker prepares `/opt/ml` before it starts `train`; locally this module does the same
under a run directory, then the *same* `run_training` runs. Runs are staged under a hidden
`.<id>.incomplete` name and renamed only when complete, so a half-written run never looks
finished; a failed one is renamed `<id>.failed` and keeps `output/failure`.

    dist/mlbuild/runs/<pipeline folder, dotted>/<target>/
        <run id>/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json
        <run id>/input/data/<channel> -> <sample_data folder>/<channel's local path>
        <run id>/model/{model.pkl,metrics.json}
        latest -> <run id>
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping

from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.errors import DataError
from mlbuild.runtime.config import PipelineConfig

RESOURCE_CONFIG = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}


def run_dir_parent(runs_dir: Path, address: str) -> Path:
    """`src/python/pipelines/churn:train` -> `<runs_dir>/src.python.pipelines.churn/train`."""
    spec_path, _, name = address.partition(":")
    return runs_dir / (spec_path.replace("/", ".") or "root") / (name or Path(spec_path).name)


def input_data_config(config: PipelineConfig) -> Dict[str, Dict[str, str]]:
    result = {}
    for channel in config.channels:
        entry = {"TrainingInputMode": channel.input_mode, "S3DistributionType": channel.distribution, "RecordWrapperType": "None"}
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

    With `link_channels`, `input/data/<channel>` are symlinks to the sample data; a
    container runner passes False and bind-mounts `local_channel_dirs` there instead.
    """
    values = hyperparameters.resolve(config, overrides, "command line")
    channels = local_channel_dirs(config, data_dir)
    encoded = hyperparameters.encode(values)
    digest = hashlib.sha256(json.dumps(encoded, sort_keys=True).encode()).hexdigest()[:8]
    first_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{digest}"
    parent = run_dir_parent(runs_dir, address)
    run_id, suffix = first_id, 1
    # NB: the same hyperparameters twice within a second: number the later runs.
    while any(p.exists() for p in (parent / f".{run_id}.incomplete", parent / run_id, parent / f"{run_id}.failed")):
        suffix += 1
        run_id = f"{first_id}-{suffix}"
    staging = parent / f".{run_id}.incomplete"
    _write_json(staging / contract.HYPERPARAMETERS_FILE, encoded)
    _write_json(staging / contract.INPUT_DATA_CONFIG_FILE, input_data_config(config))
    _write_json(staging / contract.RESOURCE_CONFIG_FILE, RESOURCE_CONFIG)
    for name, path in channels.items():
        link = staging / contract.DATA_DIR / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link_channels:
            link.symlink_to(path, target_is_directory=True)
        else:
            link.mkdir()
    return staging


def finish_run(staging: Path, succeeded: bool) -> Path:
    """Publish a staged run under its final name; only a success moves `latest`."""
    run_id = staging.name[1 : -len(".incomplete")]
    final = staging.parent / (run_id if succeeded else f"{run_id}.failed")
    os.rename(staging, final)
    if succeeded:
        latest = staging.parent / "latest"
        tmp = staging.parent / f".latest.{os.getpid()}"
        tmp.symlink_to(run_id)
        os.replace(tmp, latest)
    return final
