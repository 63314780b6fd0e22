"""The pipeline interface: what a data scientist writes.

A pipeline is a Python module with these functions (`featurize` and `save` optional):

    def load(ctx) -> raw                       # read ctx.channels["train"], ...
    def featurize(ctx, raw) -> features        # default: features = raw
    def train(ctx, features) -> model
    def evaluate(ctx, model, features) -> {"auc": 0.81, ...}
    def save(ctx, model) -> None               # default: pickle to ctx.model_dir/model.pkl

`ctx` is a `StageContext`: typed hyperparameters, channel directories, the model and
checkpoint directories, and a logger. The module and its config are named by the
`ml_pipeline` target, which bakes them into the PEX, so `train` needs no arguments.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Optional

from mlbuild.runtime.config import PipelineConfig, parse_config
from mlbuild.runtime.errors import ConfigError, PlatformError

REQUIRED_STAGES = ("load", "train", "evaluate")
OPTIONAL_STAGES = ("featurize", "save")

# Set by the ml_pipeline target in the PEX (pex --inject-env) and thus in the image.
MODULE_ENV_VAR = "MLBUILD_PIPELINE_MODULE"
CONFIG_ENV_VAR = "MLBUILD_PIPELINE_CONFIG"
ADDRESS_ENV_VAR = "MLBUILD_PIPELINE_ADDRESS"


@dataclass(frozen=True)
class StageContext:
    hyperparameters: Mapping[str, Any]
    channels: Mapping[str, Path]
    model_dir: Path
    checkpoints_dir: Path
    output_data_dir: Path
    log: logging.Logger

    @property
    def hp(self) -> Mapping[str, Any]:
        return self.hyperparameters


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline module plus its validated config."""

    address: str
    module: ModuleType
    config: PipelineConfig

    def stage(self, name: str) -> Optional[Callable[..., Any]]:
        return getattr(self.module, name, None)


def default_save(ctx: StageContext, model: Any) -> None:
    with open(ctx.model_dir / "model.pkl", "wb") as f:
        pickle.dump(model, f, protocol=5)


def load_pipeline(module_name: str, config_resource: str, address: str = "") -> Pipeline:
    """Import the pipeline module and read the config that sits beside it in its package."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PlatformError(f"cannot import pipeline module {module_name!r}: {e}")
    missing = [s for s in REQUIRED_STAGES if not callable(getattr(module, s, None))]
    if missing:
        raise ConfigError(
            f"{module.__file__}: pipeline module {module_name!r} lacks {', '.join(missing)}(). "
            f"Fix: define {', '.join(f'def {m}(ctx, ...)' for m in missing)} (see mlbuild.runtime.pipeline)."
        )
    package = module_name.rpartition(".")[0]
    if not package:
        raise ConfigError(f"pipeline module {module_name!r} must live in a package, beside its config file.")
    try:
        text = importlib.resources.files(package).joinpath(config_resource).read_text()
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise PlatformError(f"config {config_resource!r} is not packaged beside {module_name!r}: {e}")
    source = f"{package.replace('.', '/')}/{config_resource}"
    return Pipeline(address or module_name, module, parse_config(text, source))


def pipeline_from_environ(environ: Mapping[str, str]) -> Pipeline:
    module = environ.get(MODULE_ENV_VAR)
    if not module:
        raise PlatformError(
            f"{MODULE_ENV_VAR} is not set: this executable was not built by an ml_pipeline target. "
            f"Fix: build it with `./pants package <pipeline target>`."
        )
    return load_pipeline(module, environ.get(CONFIG_ENV_VAR, "pipeline.yaml"), environ.get(ADDRESS_ENV_VAR, ""))

