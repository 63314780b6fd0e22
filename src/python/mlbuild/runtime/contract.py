"""SageMaker's bring-your-own-container directory contract, as constants plus one object.

SageMaker starts a training container as `docker run IMAGE train` and lays out `/opt/ml`:

    /opt/ml/input/config/hyperparameters.json    string -> string map
    /opt/ml/input/config/inputdataconfig.json    channel -> {ContentType, TrainingInputMode, ...}
    /opt/ml/input/config/resourceconfig.json     {current_host, hosts, ...}
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping

from mlbuild.runtime.errors import DataError, UserError

SAGEMAKER_BASE_DIR = Path("/opt/ml")
# Overrides the base directory; the local runner sets it to the run directory.
BASE_DIR_ENV_VAR = "MLBUILD_ML_BASE_DIR"

HYPERPARAMETERS_FILE = "input/config/hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "input/config/inputdataconfig.json"
RESOURCE_CONFIG_FILE = "input/config/resourceconfig.json"
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

# SageMaker keeps the first 1024 characters of the failure file as the job's FailureReason.
FAILURE_REASON_LIMIT = 1024


def base_dir_from_environ(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(BASE_DIR_ENV_VAR) or SAGEMAKER_BASE_DIR)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing. SageMaker (or the local runner) writes it before `train`.")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start}); SageMaker writes UTF-8 JSON here.")
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e}).")
    except OSError as e:
        raise UserError(f"{path}: unreadable ({e.strerror or e}); SageMaker (or the local runner) writes a JSON file here.")


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

    @classmethod
    def load(cls, base_dir: Path) -> "TrainingEnvironment":
        base_dir = Path(base_dir)
        hyperparameters = _read_json(base_dir / HYPERPARAMETERS_FILE) if (base_dir / HYPERPARAMETERS_FILE).exists() else {}
        input_data_config = _read_json(base_dir / INPUT_DATA_CONFIG_FILE) if (base_dir / INPUT_DATA_CONFIG_FILE).exists() else {}
        resource_config = _read_json(base_dir / RESOURCE_CONFIG_FILE) if (base_dir / RESOURCE_CONFIG_FILE).exists() else {}
        if not isinstance(hyperparameters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hyperparameters.items()
        ):
            raise UserError(f"{base_dir / HYPERPARAMETERS_FILE}: must be a JSON object of string to string.")
        return cls(
            base_dir,
            dict(hyperparameters),
            _object(base_dir / INPUT_DATA_CONFIG_FILE, input_data_config, of_objects=True),
            _object(base_dir / RESOURCE_CONFIG_FILE, resource_config),
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
        return str(self.resource_config.get("current_host", "algo-1"))

    def channel_dir(self, name: str) -> Path:
        return self.base_dir / DATA_DIR / name

    def channels(self) -> Dict[str, Path]:
        """Each declared channel's directory; a declared channel with no files is an error."""
        result = {}
        for name in sorted(self.input_data_config):
            path = self.channel_dir(name)
            if not path.is_dir():
                raise DataError(
                    f"channel {name!r}: {path} does not exist, but {INPUT_DATA_CONFIG_FILE} declares it."
                )
            result[name] = path
        return result


def write_failure(base_dir: Path, message: str) -> None:
    """Record why training failed, the way SageMaker reads it back."""
    path = Path(base_dir) / FAILURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message[:FAILURE_REASON_LIMIT])


def environ_base_dir() -> Path:
    return base_dir_from_environ(os.environ)
