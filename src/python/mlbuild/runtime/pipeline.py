"""The pipeline interface: what a data scientist writes.

A pipeline is a Python module with these functions (`featurize`, `save`, `load_model` and
`predict` optional):

    def load(ctx) -> raw                       # read ctx.channels["train"], ...
    def featurize(ctx, raw) -> features        # default: features = raw
    def train(ctx, features) -> model
    def evaluate(ctx, model, features) -> {"auc": 0.81, ...}
    def save(ctx, model) -> None               # default: pickle to ctx.model_dir/model.pkl
    def load_model(ctx, model_dir) -> model    # serving; default: unpickle model_dir/model.pkl
    def predict(ctx, model, records) -> [...]  # serving; default: model.predict(records as floats)

`records` is one request's batch (`mlbuild.serving.content_types`): a list of rows, each a
list of values (a CSV row without header: the training columns, the label left out, as
SageMaker's batch transform sends them) or a JSON object. `predict` returns one prediction
per record; it raises `RecordError` for records the model cannot take (the server answers
400 with its message).

`ctx` is a `StageContext`: typed hyperparameters, channel directories, the model and
checkpoint directories, and a logger. The module and its config are named by the
`ml_pipeline` target, which bakes them into the PEX, so `train` needs no arguments.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import logging
import os
import pickle
import posixpath
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Optional, Tuple

# NB: set by the ml_pipeline target in the PEX (pex --inject-env) and thus in the image.
from mlbuild.names import PIPELINE_ADDRESS_ENV as ADDRESS_ENV_VAR
from mlbuild.names import PIPELINE_CONFIG_ENV as CONFIG_ENV_VAR
from mlbuild.names import PIPELINE_MODULE_ENV as MODULE_ENV_VAR
from mlbuild.runtime.config import PipelineConfig, config_text, directory_error, parse_config
from mlbuild.runtime.errors import ConfigError, PipelineError, PlatformError, UserError

REQUIRED_STAGES = ("load", "train", "evaluate")
OPTIONAL_STAGES = ("featurize", "save", "load_model", "predict")
MODEL_FILE = "model.pkl"  # what default_save writes and default_load_model reads


class ReadOnlyHyperparameters(dict):
    """The decoded hyperparameters as a dict that refuses changes (`ctx.hp`).

    A dict, so `json.dumps`, `**ctx.hp` and `dict(ctx.hp)` work as users expect; a stage that
    assigns to it gets a clear error instead of silently training with values the run record
    (and a replay) would not show. Copies and pickles are plain dicts.
    """

    def _refuse(self, *_args: Any, **_kwargs: Any) -> None:
        raise TypeError(
            "ctx.hyperparameters is read-only: the run records the values it was given. "
            "Fix: copy it (`hp = dict(ctx.hp)`) or change the value in pipeline.yaml or as an override."
        )

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> dict:
        import copy

        return copy.deepcopy(dict(self), memo)


@dataclass(frozen=True)
class StageContext:
    hyperparameters: Mapping[str, Any]
    channels: Mapping[str, Path]
    model_dir: Path
    checkpoints_dir: Path
    output_data_dir: Path
    log: logging.Logger
    # The job's hosts, as SageMaker's resourceconfig.json names them (see runtime/contract.py);
    # one host unless the job runs on several instances.
    hosts: Tuple[str, ...] = ("algo-1",)
    current_host: str = "algo-1"
    num_cpus: int = 1
    num_gpus: int = 0
    network_interface: str = "eth0"

    @property
    def hp(self) -> Mapping[str, Any]:
        return self.hyperparameters

    @property
    def is_leader(self) -> bool:
        """SageMaker's convention: the first of the sorted hosts leads (writes the model, say)."""
        return self.current_host == self.hosts[0]


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline module plus its validated config."""

    address: str
    module: ModuleType
    config: PipelineConfig

    def stage(self, name: str) -> Optional[Callable[..., Any]]:
        return getattr(self.module, name, None)

    @property
    def names(self) -> "SourceNames":
        return SourceNames.of(self.module, self.address)


def default_save(ctx: StageContext, model: Any) -> None:
    with open(ctx.model_dir / MODEL_FILE, "wb") as f:
        pickle.dump(model, f, protocol=5)


class RecordError(ValueError):
    """Records that the model cannot take (wrong column count, a word where a number goes).

    `predict` raises it with a message that says what is wrong and how the request should look;
    the server answers 400 with that message (anything else `predict` raises is a 500).
    """


class ModelFileError(UserError):
    """The model directory lacks what `load_model` reads."""


def default_load_model(ctx: StageContext, model_dir: Path) -> Any:
    """Unpickle what `default_save` wrote (`model_dir/model.pkl`)."""
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        found = sorted(p.name for p in Path(model_dir).iterdir()) if Path(model_dir).is_dir() else None
        what = f"it has {', '.join(found) or 'nothing'}" if found is not None else "the folder does not exist"
        raise ModelFileError(
            f"{path}: no model to load ({what}). Fix: serve the model folder of a finished training run "
            f"(its model/ or an unpacked model.tar.gz), or define load_model(ctx, model_dir) in the pipeline "
            f"to read what its save() writes."
        )
    with open(path, "rb") as f:
        return pickle.load(f)


def default_predict(ctx: StageContext, model: Any, records: Any) -> Any:
    """`model.predict` on the records as a 2-D float array: one row per record.

    Rows may be lists of values (numbers, or strings that parse as numbers, as CSV gives them)
    or JSON objects, ordered by the model's `feature_names_in_` (scikit-learn sets it when
    trained on named columns). Anything else, or a column count other than the model's
    `n_features_in_`, is a `RecordError`.
    """
    import numpy

    rows = list(records)
    names = getattr(model, "feature_names_in_", None)
    if rows and isinstance(rows[0], Mapping):
        if names is None:
            raise RecordError(
                "records are JSON objects, but the model does not know its column names (feature_names_in_). "
                "Fix: send each record as a list of values in the training columns' order, or define "
                "predict(ctx, model, records) in the pipeline."
            )
        rows = [_ordered(row, [str(n) for n in names], i) for i, row in enumerate(rows, 1)]
    try:
        x = numpy.asarray(rows, dtype=numpy.float64)
    except (TypeError, ValueError) as e:
        raise RecordError(
            f"records must be numbers for the default predict ({e}). Fix: send numeric columns only, "
            f"or define predict(ctx, model, records) in the pipeline to encode them."
        ) from None
    if x.ndim != 2:
        raise RecordError(f"records must be rows of values (a 2-D table), got an array of shape {x.shape}.")
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and x.shape[1] != int(expected):
        raise RecordError(
            f"each record must have {int(expected)} columns (the training columns without the label), "
            f"got {x.shape[1]}."
        )
    return model.predict(x)


def _ordered(row: Any, names: list, index: int) -> list:
    if not isinstance(row, Mapping):
        raise RecordError(f"record {index} is a {type(row).__name__}, the first is an object: send one kind.")
    missing = [n for n in names if n not in row]
    if missing:
        raise RecordError(f"record {index} lacks {', '.join(missing)} (the model's columns: {', '.join(names)}).")
    return [row[n] for n in names]


def _under_cwd(path: str) -> Optional[str]:
    """`path` relative to the working directory, if it is a file there (not in a hidden folder)."""
    cwd = os.getcwd()
    if cwd == os.sep or not os.path.isfile(path):
        return None
    rel = os.path.relpath(path, cwd)
    # NB: `~/.pex/unzipped_pexes/...` under a home-directory cwd is not a file the user edits.
    if rel.startswith(os.pardir) or any(part.startswith(".") for part in rel.split(os.sep)):
        return None
    return rel


def repo_path(filename: str, package: str, package_dir: Optional[str], address: str) -> Optional[str]:
    """The repo path a user edits for `filename`, a file of (or beside) the pipeline's package.

    1. the file exists under the working directory (`pants run` runs in the repo root):
       that relative path, e.g. `src/python/pipelines/churn/pipeline.py`;
    2. else (a PEX or the image), when the target's address ends with the package's folder
       (`src/python/pipelines/churn:train` and `pipelines.churn`): the address's folder
       joined with the file's path inside the package;
    3. else None: callers keep the path they have.
    """
    absolute = os.path.abspath(filename)
    found = _under_cwd(absolute)
    if found:
        return found
    if not package_dir or not address:
        return None
    inside = os.path.relpath(absolute, os.path.abspath(package_dir))
    if inside.startswith(os.pardir):
        return None
    spec_path = address.partition(":")[0].strip("/")
    folder = package.replace(".", "/")
    if spec_path == folder or spec_path.endswith("/" + folder):
        return posixpath.normpath(posixpath.join(spec_path, inside.replace(os.sep, "/")))
    return None


@dataclass(frozen=True)
class SourceNames:
    """Names files of the pipeline's package by their repo path where that can be known."""

    package: str  # "pipelines.churn"
    package_dir: Optional[str]  # where the package's files are on disk (or in the PEX)
    address: str

    @classmethod
    def of(cls, module: ModuleType, address: str) -> "SourceNames":
        package = module.__name__.rpartition(".")[0]
        file = getattr(module, "__file__", None)
        return cls(package, os.path.dirname(os.path.abspath(file)) if file else None, address)

    def contains(self, filename: str) -> bool:
        if not self.package_dir:
            return False
        return os.path.abspath(filename).startswith(os.path.abspath(self.package_dir) + os.sep)

    def name(self, filename: str) -> str:
        return repo_path(filename, self.package, self.package_dir, self.address) or filename


def load_pipeline(module_name: str, config_resource: str, address: str = "") -> Pipeline:
    """Import the pipeline module and read the config that sits beside it in its package."""
    module = _import(module_name, address)
    names = SourceNames.of(module, address)
    file = getattr(module, "__file__", None)
    module_file = names.name(file) if file else module_name
    missing = [s for s in REQUIRED_STAGES if not callable(getattr(module, s, None))]
    if missing:
        raise ConfigError(
            f"{module_file}: pipeline module {module_name!r} lacks {', '.join(missing)}(). "
            f"Fix: define {', '.join(f'def {m}(ctx, ...)' for m in missing)} (see mlbuild.runtime.pipeline)."
        )
    package = module_name.rpartition(".")[0]
    if not package:
        raise ConfigError(f"pipeline module {module_name!r} must live in a package, beside its config file.")
    # NB: the source-root path (`pipelines/churn/pipeline.yaml`) only when no repo path is known.
    source = f"{package.replace('.', '/')}/{config_resource}"
    if names.package_dir:
        source = (
            repo_path(os.path.join(names.package_dir, config_resource), package, names.package_dir, address) or source
        )
    try:
        data = importlib.resources.files(package).joinpath(config_resource).read_bytes()
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise PlatformError(f"config {config_resource!r} is not packaged beside {module_name!r}: {e}") from e
    except IsADirectoryError:
        raise directory_error(source) from None
    return Pipeline(address or module_name, module, parse_config(config_text(data, source), source))


def _import(module_name: str, address: str) -> ModuleType:
    """Import the pipeline module; errors of its own code (a typo, a bad import) are the user's."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise PlatformError(f"cannot import pipeline module {module_name!r}: {e}") from e
        raise PipelineError(
            f"{_where(e, module_name, address)}importing pipeline module {module_name!r} raised {type(e).__name__}: {e}"
        ) from e
    except SyntaxError as e:
        spot = f"{_names_for(module_name, address).name(e.filename)}:{e.lineno}: " if e.filename else ""
        raise PipelineError(
            f"{spot}pipeline module {module_name!r} has a syntax error: {e.msg}. Fix: correct the code there."
        ) from e
    except Exception as e:  # NB: the module's own top-level code raised
        raise PipelineError(
            f"{_where(e, module_name, address)}importing pipeline module {module_name!r} raised {type(e).__name__}: {e}"
        ) from e


def _names_for(module_name: str, address: str) -> SourceNames:
    """SourceNames of a module that failed to import (found again without running it)."""
    package = module_name.rpartition(".")[0]
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None and spec.has_location else None
    return SourceNames(package, os.path.dirname(os.path.abspath(origin)) if origin else None, address)


def _where(e: BaseException, module_name: str, address: str) -> str:
    """`path:line: ` of the innermost traceback frame in the pipeline's package, if any."""
    names = _names_for(module_name, address)
    frame = user_frame(e, names)
    return f"{names.name(frame.filename)}:{frame.lineno}: " if frame else ""


def user_frame(e: BaseException, names: SourceNames) -> Optional[traceback.FrameSummary]:
    """The innermost frame of `e`'s traceback that lies in the pipeline's package: the user's line."""
    mine = [f for f in traceback.extract_tb(e.__traceback__) if names.contains(f.filename)]
    return mine[-1] if mine else None


def pipeline_from_environ(environ: Mapping[str, str]) -> Pipeline:
    module = environ.get(MODULE_ENV_VAR)
    if not module:
        raise PlatformError(
            f"{MODULE_ENV_VAR} is not set: this executable was not built by an ml_pipeline target. "
            f"Fix: build it with `./pants package <pipeline target>`."
        )
    return load_pipeline(module, environ.get(CONFIG_ENV_VAR, "pipeline.yaml"), environ.get(ADDRESS_ENV_VAR, ""))
