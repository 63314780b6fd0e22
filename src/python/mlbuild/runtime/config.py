"""The pipeline config file (`pipeline.yaml`): "config, not code".

One YAML file per pipeline holds its hyperparameters (typed defaults), its data channels
(a local sample path and an S3 URI each) and its SageMaker job settings. Everything is
validated on load; an error names the file, the key, what was expected and how to fix it.
Every key, its default and what is refused: docs/reference/pipeline-yaml.md (keep it in step
with this parser).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

from mlbuild.runtime.errors import ConfigError, HyperparameterError

HYPERPARAMETER_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
INPUT_MODES = ("File", "Pipe", "FastFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/.+$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._\-/][a-z0-9]+)*$")
# NB: AWS region codes (us-east-1, us-gov-west-1, cn-north-1, eu-central-2); botocore raises
# InvalidRegionError from deep inside client creation for anything else.
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
# NB: SageMaker's CreateTrainingJob limits (ResourceConfig.VolumeSizeInGB <= 16384,
# StoppingCondition.Max{Runtime,WaitTime}InSeconds <= 28 days); a larger number is a typo.
MAX_VOLUME_SIZE_GB = 16384
MAX_RUNTIME_SECONDS = 28 * 24 * 3600
MAX_INSTANCE_COUNT = 1000
# Where `pants publish` sends the job: `local` runs it in mlbuild's local container runner,
# `aws` pushes to ECR and submits to SageMaker, `auto` picks aws when AWS is configured.
BACKENDS = ("auto", "local", "aws")


@dataclass(frozen=True)
class HyperparameterSpec:
    name: str
    type: str
    default: Any
    choices: Optional[Tuple[Any, ...]] = None
    min: Optional[float] = None
    max: Optional[float] = None

    def check(self, value: Any, source: str) -> None:
        """Raise HyperparameterError unless `value` (already of the spec's type) is allowed."""
        if self.choices is not None and value not in self.choices:
            raise HyperparameterError(
                f"{source}: hyperparameter {self.name!r} is {value!r}, not one of {list(self.choices)}. "
                f"Fix: pick one of those values."
            )
        if self.min is not None and value < self.min:
            raise HyperparameterError(
                f"{source}: hyperparameter {self.name!r} is {value!r}, below its min {self.min}. Fix: raise it."
            )
        if self.max is not None and value > self.max:
            raise HyperparameterError(
                f"{source}: hyperparameter {self.name!r} is {value!r}, above its max {self.max}. Fix: lower it."
            )


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    local: str
    s3: Optional[str] = None
    content_type: Optional[str] = None
    input_mode: str = "File"
    distribution: str = "FullyReplicated"


@dataclass(frozen=True)
class SageMakerConfig:
    role: Optional[str] = None
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    output_path: Optional[str] = None
    region: Optional[str] = None
    spot: bool = False
    max_wait_seconds: Optional[int] = None
    checkpoint_s3_uri: Optional[str] = None
    subnets: Tuple[str, ...] = ()
    security_group_ids: Tuple[str, ...] = ()
    image_repository: Optional[str] = None
    backend: str = "auto"


@dataclass(frozen=True)
class PipelineConfig:
    source: str
    hyperparameters: Tuple[HyperparameterSpec, ...]
    channels: Tuple[ChannelConfig, ...]
    sagemaker: SageMakerConfig = field(default_factory=SageMakerConfig)
    metrics: Tuple[str, ...] = ()

    def hyperparameter(self, name: str) -> HyperparameterSpec:
        return {h.name: h for h in self.hyperparameters}[name]

    @property
    def defaults(self) -> Dict[str, Any]:
        return {h.name: h.default for h in self.hyperparameters}


class _Reader:
    """Walks the parsed YAML, keeping the file name and key path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str, fix: str) -> ConfigError:
        where = f"{self.source}: `{key}`" if key else self.source
        return ConfigError(f"{where}: {problem}. Fix: {fix}")

    def mapping(self, value: Any, key: str) -> Dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_describe(value)}", "write `key: value` entries under it")
        return value

    def only_keys(self, value: Mapping[str, Any], key: str, allowed: Tuple[str, ...]) -> None:
        for k in value:
            if k not in allowed:
                guess = difflib.get_close_matches(str(k), allowed, n=1)
                hint = f"did you mean `{guess[0]}`?" if guess else f"allowed keys are {', '.join(allowed)}"
                raise self.fail(f"{key}.{k}" if key else str(k), "unknown key", hint)

    def typed(self, value: Any, key: str, expected: type, fix: str) -> Any:
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise self.fail(key, f"expected {expected.__name__}, got {_describe(value)}", fix)
        if expected is float and not math.isfinite(value):
            # NB: NaN compares false with everything, so a `.nan` default would slip past min/max.
            raise self.fail(key, f"expected a finite number, got {value!r}", fix)
        return value

    def optional(self, value: Mapping[str, Any], key: str, name: str, expected: type, default: Any, fix: str) -> Any:
        if value.get(name) is None:
            return default
        return self.typed(value[name], f"{key}.{name}", expected, fix)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing (null)"


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key given twice in one mapping is an error instead of "last one wins"."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line})")
                seen[key] = line
            except TypeError:  # NB: an unhashable key; SafeLoader reports it below
                pass
        return super().construct_mapping(node, deep=deep)


def parse_config(text: str, source: str) -> PipelineConfig:
    """Parse and validate a pipeline config; `source` names the file in errors."""
    r = _Reader(source)
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as e:
        raise ConfigError(f"{source}: {e}. Fix: keep one of them (YAML would silently use the last).") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{source}: malformed YAML{where}: {problem}. Fix: correct the YAML syntax there.") from e
    doc = r.mapping(doc, "")
    r.only_keys(doc, "", ("hyperparameters", "channels", "metrics", "sagemaker"))
    return PipelineConfig(
        source=source,
        hyperparameters=_parse_hyperparameters(r, doc.get("hyperparameters")),
        channels=_parse_channels(r, doc.get("channels")),
        sagemaker=_parse_sagemaker(r, doc.get("sagemaker")),
        metrics=_parse_metrics(r, doc.get("metrics")),
    )


def _parse_metrics(r: _Reader, raw: Any) -> Tuple[str, ...]:
    """The metric names SageMaker should scrape from the log (what `evaluate` returns)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        raise r.fail("metrics", f"expected a list of metric names, got {_describe(raw)}", "write e.g. [validation:auc]")
    return tuple(raw)


def load_config(path: Path) -> PipelineConfig:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found. Fix: create it, or point the target's `config` field at it."
        ) from None
    except IsADirectoryError:
        raise directory_error(str(path)) from None
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the config file ({e.strerror}). Fix: check the path and its permissions."
        ) from e
    return parse_config(config_text(data, str(path)), str(path))


def directory_error(source: str) -> ConfigError:
    return ConfigError(
        f"{source}: is a directory, not a config file. Fix: point at the pipeline's YAML file inside it."
    )


def config_text(data: bytes, source: str) -> str:
    """The config file's bytes as text; anything but UTF-8 is the user's to fix, not a traceback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{source}: not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}). Fix: save the config file as UTF-8."
        ) from None


def _parse_hyperparameters(r: _Reader, raw: Any) -> Tuple[HyperparameterSpec, ...]:
    specs = []
    for name, value in r.mapping(raw, "hyperparameters").items():
        key = f"hyperparameters.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise r.fail(key, "not a valid hyperparameter name", "use letters, digits and underscores")
        if isinstance(value, dict):
            r.only_keys(value, key, ("type", "default", "choices", "min", "max"))
            type_name = value.get("type")
            if type_name not in HYPERPARAMETER_TYPES:
                raise r.fail(
                    f"{key}.type", f"expected one of {', '.join(HYPERPARAMETER_TYPES)}, got {type_name!r}", "set `type`"
                )
            if "default" not in value:
                raise r.fail(f"{key}.default", "missing", "give the hyperparameter a default value")
            expected = HYPERPARAMETER_TYPES[type_name]
            default = r.typed(value["default"], f"{key}.default", expected, f"write a {type_name} default")
            choices = value.get("choices")
            if choices is not None:
                if not isinstance(choices, list) or not choices:
                    raise r.fail(f"{key}.choices", "expected a non-empty list", "list the allowed values")
                choices = tuple(r.typed(c, f"{key}.choices", expected, f"list {type_name} values") for c in choices)
            bounds = {}
            for bound in ("min", "max"):
                if value.get(bound) is not None:
                    if type_name not in ("int", "float"):
                        raise r.fail(
                            f"{key}.{bound}",
                            f"bounds only apply to int and float, not {type_name}",
                            f"remove `{bound}`",
                        )
                    bounds[bound] = r.typed(value[bound], f"{key}.{bound}", float, "write a number")
            if bounds.get("min", -math.inf) > bounds.get("max", math.inf):
                raise r.fail(
                    f"{key}.min", f"{bounds['min']} is above max {bounds['max']}", "swap or correct the bounds"
                )
            spec = HyperparameterSpec(name, type_name, default, choices, bounds.get("min"), bounds.get("max"))
        elif isinstance(value, (bool, int, float, str)):
            type_name = {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]
            spec = HyperparameterSpec(name, type_name, r.typed(value, key, type(value), "write a finite default"))
        else:
            raise r.fail(
                key, f"expected a default value or {{type, default}}, got {_describe(value)}", "write `name: default`"
            )
        try:
            spec.check(spec.default, f"{r.source}: `{key}` default")
        except HyperparameterError as e:
            raise ConfigError(str(e)) from None
        specs.append(spec)
    return tuple(specs)


def _parse_channels(r: _Reader, raw: Any) -> Tuple[ChannelConfig, ...]:
    channels = []
    for name, value in r.mapping(raw, "channels").items():
        key = f"channels.{name}"
        if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
            raise r.fail(key, "not a valid SageMaker channel name", "use letters, digits, '.', '-' and '_'")
        value = r.mapping(value, key)
        r.only_keys(value, key, ("local", "s3", "content_type", "input_mode", "distribution"))
        local = r.optional(value, key, "local", str, name, "give a path relative to the sample data folder")
        if Path(local).is_absolute() or ".." in Path(local).parts:
            raise r.fail(f"{key}.local", f"{local!r} leaves the sample data folder", "use a relative path inside it")
        s3 = r.optional(value, key, "s3", str, None, "write an s3:// URI")
        check_s3_uri(r, f"{key}.s3", s3)
        input_mode = r.optional(value, key, "input_mode", str, "File", "write File, Pipe or FastFile")
        if input_mode not in INPUT_MODES:
            raise r.fail(
                f"{key}.input_mode",
                f"expected one of {', '.join(INPUT_MODES)}, got {input_mode!r}",
                "pick one of those",
            )
        distribution = r.optional(
            value, key, "distribution", str, "FullyReplicated", "write FullyReplicated or ShardedByS3Key"
        )
        if distribution not in DISTRIBUTIONS:
            raise r.fail(
                f"{key}.distribution",
                f"expected one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}",
                "pick one of those",
            )
        content_type = r.optional(value, key, "content_type", str, None, "write a MIME type such as text/csv")
        channels.append(ChannelConfig(name, local, s3, content_type, input_mode, distribution))
    return tuple(channels)


def _parse_sagemaker(r: _Reader, raw: Any) -> SageMakerConfig:
    key = "sagemaker"
    value = r.mapping(raw, key)
    allowed = tuple(SageMakerConfig.__dataclass_fields__)
    r.only_keys(value, key, allowed)
    role = r.optional(value, key, "role", str, None, "write an IAM role ARN")
    if role is not None and not _ROLE_ARN.match(role):
        raise r.fail(
            f"{key}.role", f"expected an IAM role ARN, got {role!r}", "write arn:aws:iam::<account>:role/<name>"
        )
    instance_type = r.optional(
        value, key, "instance_type", str, "ml.m5.large", "write an instance type such as ml.m5.large"
    )
    if not _INSTANCE_TYPE.match(instance_type):
        raise r.fail(
            f"{key}.instance_type", f"expected an ml.* instance type, got {instance_type!r}", "write e.g. ml.m5.large"
        )
    # NB: keyword arguments of SageMakerConfig, checked field by field above it.
    ints: Dict[str, Any] = {}
    for name, default, high in (
        ("instance_count", 1, MAX_INSTANCE_COUNT),
        ("volume_size_gb", 30, MAX_VOLUME_SIZE_GB),
        ("max_runtime_seconds", 3600, MAX_RUNTIME_SECONDS),
    ):
        ints[name] = _bounded_int(r, value, key, name, default, high)
    output_path = r.optional(value, key, "output_path", str, None, "write an s3:// URI")
    checkpoint = r.optional(value, key, "checkpoint_s3_uri", str, None, "write an s3:// URI")
    for name, uri in (("output_path", output_path), ("checkpoint_s3_uri", checkpoint)):
        check_s3_uri(r, f"{key}.{name}", uri)
    spot = r.optional(value, key, "spot", bool, False, "write true or false")
    max_wait = _bounded_int(r, value, key, "max_wait_seconds", None, MAX_RUNTIME_SECONDS)
    if spot and max_wait is not None and max_wait < ints["max_runtime_seconds"]:
        raise r.fail(
            f"{key}.max_wait_seconds",
            f"must be at least max_runtime_seconds ({max_wait} < {ints['max_runtime_seconds']}); SageMaker counts the "
            f"wait for spot capacity and the training time together",
            "raise it or lower max_runtime_seconds",
        )
    if spot and not checkpoint:
        # NB: SageMaker would accept it, but an interrupted spot job then starts over from step 0
        # every time: managed spot without checkpoints is almost always a mistake.
        raise r.fail(
            f"{key}.checkpoint_s3_uri",
            "missing, but `spot: true`: a spot interruption would restart training from scratch",
            "add `checkpoint_s3_uri: s3://<bucket>/<prefix>/` under `sagemaker:` and save checkpoints to "
            "ctx.checkpoints_dir (mlbuild.runtime.checkpoints), or set `spot: false`",
        )
    lists: Dict[str, Any] = {}
    for name in ("subnets", "security_group_ids"):
        items = value.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise r.fail(
                f"{key}.{name}", f"expected a list of strings, got {_describe(items)}", "write a YAML list of IDs"
            )
        lists[name] = tuple(items)
    if bool(lists["subnets"]) != bool(lists["security_group_ids"]):
        raise r.fail(key, "VPC config needs both `subnets` and `security_group_ids`", "set both or neither")
    repository = r.optional(value, key, "image_repository", str, None, "write an ECR repository name")
    if repository is not None and not _REPOSITORY.match(repository):
        raise r.fail(
            f"{key}.image_repository",
            f"{repository!r} is not a valid repository name",
            "use lowercase letters, digits, '.', '_', '-' and '/'",
        )
    backend = r.optional(value, key, "backend", str, "auto", "write auto, local or aws")
    if backend not in BACKENDS:
        raise r.fail(f"{key}.backend", f"expected one of {', '.join(BACKENDS)}, got {backend!r}", "pick one of those")
    return SageMakerConfig(
        role=role,
        image_repository=repository,
        backend=backend,
        instance_type=instance_type,
        output_path=output_path,
        region=_region(r, value, key),
        spot=spot,
        max_wait_seconds=max_wait,
        checkpoint_s3_uri=checkpoint,
        **ints,
        **lists,
    )


def _bounded_int(
    r: _Reader, value: Mapping[str, Any], key: str, name: str, default: Optional[int], high: int
) -> Optional[int]:
    number = r.optional(value, key, name, int, default, "write a whole number")
    if number is not None and not 1 <= number <= high:
        raise r.fail(
            f"{key}.{name}", f"must be between 1 and {high}, got {number}", f"write a whole number from 1 to {high}"
        )
    return number


def region_problem(region: str) -> Optional[str]:
    """Why `region` is no AWS region code, or None when it looks like one."""
    if _REGION.match(region):
        return None
    return f"{region!r} is not an AWS region code"


def _region(r: _Reader, value: Mapping[str, Any], key: str) -> Optional[str]:
    region = r.optional(value, key, "region", str, None, "write an AWS region such as us-east-1")
    if region is not None and region_problem(region):
        raise r.fail(f"{key}.region", str(region_problem(region)), "write a region code such as us-east-1 or eu-west-2")
    return region


def s3_uri_problem(uri: str) -> Optional[str]:
    """Why `uri` is no usable `s3://bucket[/prefix]` URI, or None when it is one."""
    if not uri.startswith("s3://"):
        return f"expected an s3:// URI, got {uri!r}"
    bucket = uri[len("s3://") :].partition("/")[0]
    if not bucket:
        return f"{uri!r} names no bucket"
    if not _BUCKET.match(bucket) or ".." in bucket or _is_ip_address(bucket):
        return f"{bucket!r} in {uri!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')"
    return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_s3_uri(r: _Reader, key: str, uri: Optional[str]) -> None:
    problem = s3_uri_problem(uri) if uri is not None else None
    if problem:
        raise r.fail(key, problem, "write s3://<bucket>/<prefix>/ with a valid bucket name")
