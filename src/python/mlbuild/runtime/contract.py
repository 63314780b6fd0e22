"""SageMaker's bring-your-own-container directory contract, as constants plus one object.

SageMaker starts a training container as `docker run IMAGE train` and lays out `/opt/ml`:

    /opt/ml/input/config/hyperparameters.json    string -> string map
    /opt/ml/input/config/inputdataconfig.json    channel -> {ContentType, TrainingInputMode, ...}
    /opt/ml/input/config/resourceconfig.json     {current_host, hosts, instance_groups, ...}
    /opt/ml/input/config/checkpointconfig.json   {LocalPath, S3Uri}, only with a checkpoint config
    /opt/ml/input/data/<channel>/                the channel's files
    /opt/ml/model/                               tarred to model.tar.gz after the job
    /opt/ml/output/failure                       first 1024 chars become FailureReason
    /opt/ml/output/train.log                     mlbuild's copy of the run's log (not SageMaker's)
    /opt/ml/output/data/                         tarred to output.tar.gz
    /opt/ml/checkpoints/                         synced to the checkpoint S3 URI

Every path is built from one base directory, so a local run uses the same code with
the base set to its run directory (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from mlbuild.names import ML_BASE_DIR_ENV as BASE_DIR_ENV_VAR  # overrides /opt/ml; a local run sets its run folder
from mlbuild.runtime.errors import DataError, UserError

SAGEMAKER_BASE_DIR = Path("/opt/ml")

HYPERPARAMETERS_FILE = "input/config/hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "input/config/inputdataconfig.json"
RESOURCE_CONFIG_FILE = "input/config/resourceconfig.json"
CHECKPOINT_CONFIG_FILE = "input/config/checkpointconfig.json"
INPUT_DIR = "input"
INPUT_CONFIG_DIR = "input/config"
DATA_DIR = "input/data"
MODEL_DIR = "model"
OUTPUT_DIR = "output"
OUTPUT_DATA_DIR = "output/data"
FAILURE_FILE = "output/failure"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "model/metrics.json"
# NB: not SageMaker's: mlbuild's own copy of the run's log (the console output), kept in the
# run directory. SageMaker ignores files in /opt/ml/output other than `failure` and `data/`.
LOG_FILE = "output/train.log"

# The first host's name; SageMaker names hosts algo-1 .. algo-N.
HOST_PREFIX = "algo-"
DEFAULT_NETWORK_INTERFACE = "eth0"
# NB: SageMaker's own group name for a job without instance groups (resourceconfig.json).
HOMOGENEOUS_GROUP = "homogeneousCluster"

# SageMaker keeps the first 1024 characters of the failure file as the job's FailureReason.
FAILURE_REASON_LIMIT = 1024


def base_dir_from_environ(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(BASE_DIR_ENV_VAR) or SAGEMAKER_BASE_DIR)


def host_name(index: int) -> str:
    """`algo-1` for index 0: SageMaker's host names."""
    return f"{HOST_PREFIX}{index + 1}"


def host_sort_key(host: str) -> Tuple[int, str]:
    """algo-2 before algo-10 (SageMaker's leader is the first host of the sorted list)."""
    number = host[len(HOST_PREFIX) :] if host.startswith(HOST_PREFIX) else ""
    return (int(number), host) if number.isdigit() else (1 << 30, host)


def resource_config(current_host: str, hosts: Sequence[str], instance_type: str) -> Dict[str, Any]:
    """`resourceconfig.json` as SageMaker writes it on each host of a homogeneous job.

    https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
    """
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": HOMOGENEOUS_GROUP,
        "hosts": list(hosts),
        "instance_groups": [
            {"instance_group_name": HOMOGENEOUS_GROUP, "instance_type": instance_type, "hosts": list(hosts)}
        ],
        "network_interface_name": DEFAULT_NETWORK_INTERFACE,
    }


def checkpoint_config(s3_uri: str) -> Dict[str, str]:
    """`checkpointconfig.json` as SageMaker writes it when the job has a CheckpointConfig."""
    return {"LocalPath": str(SAGEMAKER_BASE_DIR / CHECKPOINTS_DIR), "S3Uri": s3_uri}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing. SageMaker (or the local runner) writes it before `train`.") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start}); SageMaker writes UTF-8 JSON here.") from e
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e}).") from e
    except OSError as e:
        raise UserError(
            f"{path}: unreadable ({e.strerror or e}); SageMaker (or the local runner) writes a JSON file here."
        ) from e


def _object(path: Path, value: Any, of_objects: bool = False) -> Dict[str, Any]:
    if not isinstance(value, dict) or (of_objects and not all(isinstance(v, dict) for v in value.values())):
        kind = "channel name to object" if of_objects else "name to value"
        raise UserError(f"{path}: must be a JSON object of {kind}, got {type(value).__name__}.")
    return dict(value)


@dataclass(frozen=True)
class TrainingEnvironment:
    """What `train` sees: read once from a base directory, then only read."""

    base_dir: Path
    hyperparameters: Dict[str, str]
    input_data_config: Dict[str, Dict[str, Any]]
    resource_config: Dict[str, Any]
    # checkpointconfig.json: empty when the job has no checkpoint config
    checkpoint_config: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, base_dir: Path) -> "TrainingEnvironment":
        base_dir = Path(base_dir)
        hyperparameters = (
            _read_json(base_dir / HYPERPARAMETERS_FILE) if (base_dir / HYPERPARAMETERS_FILE).exists() else {}
        )
        input_data_config = (
            _read_json(base_dir / INPUT_DATA_CONFIG_FILE) if (base_dir / INPUT_DATA_CONFIG_FILE).exists() else {}
        )
        resource_config = (
            _read_json(base_dir / RESOURCE_CONFIG_FILE) if (base_dir / RESOURCE_CONFIG_FILE).exists() else {}
        )
        checkpoint = (
            _read_json(base_dir / CHECKPOINT_CONFIG_FILE) if (base_dir / CHECKPOINT_CONFIG_FILE).exists() else {}
        )
        if not isinstance(hyperparameters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hyperparameters.items()
        ):
            raise UserError(f"{base_dir / HYPERPARAMETERS_FILE}: must be a JSON object of string to string.")
        return cls(
            base_dir,
            dict(hyperparameters),
            _object(base_dir / INPUT_DATA_CONFIG_FILE, input_data_config, of_objects=True),
            _object(base_dir / RESOURCE_CONFIG_FILE, resource_config),
            _object(base_dir / CHECKPOINT_CONFIG_FILE, checkpoint),
        )

    @property
    def model_dir(self) -> Path:
        return self.base_dir / MODEL_DIR

    @property
    def output_data_dir(self) -> Path:
        return self.base_dir / OUTPUT_DATA_DIR

    @property
    def failure_file(self) -> Path:
        return self.base_dir / FAILURE_FILE

    @property
    def log_file(self) -> Path:
        return self.base_dir / LOG_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.base_dir / CHECKPOINTS_DIR

    @property
    def metrics_file(self) -> Path:
        return self.base_dir / METRICS_FILE

    @property
    def current_host(self) -> str:
        return str(self.resource_config.get("current_host", host_name(0)))

    @property
    def hosts(self) -> List[str]:
        """Every host of the job, sorted as SageMaker sorts them (algo-1, algo-2, ..., algo-10)."""
        hosts = self.resource_config.get("hosts") or [self.current_host]
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise UserError(
                f"{self.base_dir / RESOURCE_CONFIG_FILE}: `hosts` must be a list of host names, got {hosts!r}."
            )
        if self.current_host not in hosts:
            raise UserError(
                f"{self.base_dir / RESOURCE_CONFIG_FILE}: `current_host` {self.current_host!r} is not among `hosts` {hosts}."
            )
        return sorted(hosts, key=host_sort_key)

    @property
    def is_leader(self) -> bool:
        """SageMaker's convention: the first of the sorted hosts leads (saves the model, runs the tracker)."""
        return self.current_host == self.hosts[0]

    @property
    def host_index(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def network_interface(self) -> str:
        return str(self.resource_config.get("network_interface_name") or DEFAULT_NETWORK_INTERFACE)

    @property
    def current_instance_type(self) -> str:
        return str(self.resource_config.get("current_instance_type") or "local")

    @property
    def current_group_name(self) -> str:
        return str(self.resource_config.get("current_group_name") or HOMOGENEOUS_GROUP)

    @property
    def instance_groups(self) -> List[Dict[str, Any]]:
        """The job's instance groups; a resourceconfig.json without them is one homogeneous group."""
        groups = self.resource_config.get("instance_groups")
        if groups is None:
            return [
                {
                    "instance_group_name": self.current_group_name,
                    "instance_type": self.current_instance_type,
                    "hosts": self.hosts,
                }
            ]
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("hosts"), list) for g in groups
        ):
            raise UserError(
                f"{self.base_dir / RESOURCE_CONFIG_FILE}: `instance_groups` must be a list of objects with `hosts`, got {groups!r}."
            )
        return [dict(g) for g in groups]

    def channel_dir(self, name: str) -> Path:
        return self.base_dir / DATA_DIR / name

    def channels(self) -> Dict[str, Path]:
        """Each declared channel's directory; a declared channel with no files is an error."""
        result = {}
        for name in sorted(self.input_data_config):
            path = self.channel_dir(name)
            if not path.is_dir():
                raise DataError(f"channel {name!r}: {path} does not exist, but {INPUT_DATA_CONFIG_FILE} declares it.")
            result[name] = path
        return result


def write_failure(base_dir: Path, message: str) -> None:
    """Record why training failed, the way SageMaker reads it back."""
    path = Path(base_dir) / FAILURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message[:FAILURE_REASON_LIMIT])


def environ_base_dir() -> Path:
    return base_dir_from_environ(os.environ)
