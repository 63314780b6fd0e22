"""Hyperparameters: typed values from config defaults, CLI overrides and SageMaker's map.

SageMaker hands `train` a string-to-string map (`hyperparameters.json`). What arrives in
practice is either JSON-encoded (`"0.1"`, `"\\"log_loss\\""`, `"true"`; what the SageMaker
Python SDK and mlbuild's `encode` write) or raw (`"log_loss"`, `"True"`; what a console
user or boto3 caller types). `decode` accepts both, guided by the declared type, so
`decode(encode(values)) == values` and hand-written maps work too.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Dict, Iterable, Mapping, Optional

from mlbuild.runtime.config import HyperparameterSpec, PipelineConfig
from mlbuild.runtime.errors import HyperparameterError

# Keys SageMaker itself adds to the map (HPO, framework containers); not the pipeline's.
_PLATFORM_PREFIXES = ("sagemaker_", "_")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_ARTICLE = {"int": "an", "float": "a", "bool": "a", "str": "a"}


def encode(values: Mapping[str, Any]) -> Dict[str, str]:
    """The one canonical string form: each value JSON-encoded, keys sorted."""
    return {name: json.dumps(values[name], sort_keys=True) for name in sorted(values)}


def coerce(spec: HyperparameterSpec, raw: str, source: str) -> Any:
    """Turn one string (JSON-encoded or raw) into a value of the spec's type."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = raw
    if spec.type == "str":
        value: Any = decoded if isinstance(decoded, str) else raw
    elif spec.type == "bool":
        text = str(decoded).strip().lower()
        if isinstance(decoded, bool):
            value = decoded
        elif text in _TRUE:
            value = True
        elif text in _FALSE:
            value = False
        else:
            raise _type_error(spec, raw, source)
    elif spec.type == "int":
        if isinstance(decoded, bool):
            raise _type_error(spec, raw, source)
        if isinstance(decoded, int):
            value = decoded
        elif isinstance(decoded, float) and decoded.is_integer():
            value = int(decoded)
        elif isinstance(decoded, str):
            try:
                value = int(decoded.strip())
            except ValueError:
                raise _type_error(spec, raw, source) from None
        else:
            raise _type_error(spec, raw, source)
    else:  # float
        if isinstance(decoded, bool):
            raise _type_error(spec, raw, source)
        try:
            value = float(decoded)
        except (TypeError, ValueError):
            raise _type_error(spec, raw, source) from None
        if math.isnan(value) or math.isinf(value):
            raise _type_error(spec, raw, source)
    spec.check(value, source)
    return value


def _type_error(spec: HyperparameterSpec, raw: str, source: str) -> HyperparameterError:
    return HyperparameterError(
        f"{source}: hyperparameter {spec.name!r} must be {spec.type}, got {raw!r}. "
        f"Fix: give {_ARTICLE[spec.type]} {spec.type} value (its default is {spec.default!r})."
    )


def resolve(config: PipelineConfig, overrides: Mapping[str, str], source: str) -> Dict[str, Any]:
    """Config defaults with string overrides applied; unknown names are errors."""
    specs = {spec.name: spec for spec in config.hyperparameters}
    values = dict(config.defaults)
    for name in sorted(overrides):
        if name.startswith(_PLATFORM_PREFIXES):
            continue
        if name not in specs:
            guess = difflib.get_close_matches(name, list(specs), n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else f"declare it under `hyperparameters:` in {config.source}"
            known = ", ".join(sorted(specs)) or "none"
            raise HyperparameterError(f"{source}: unknown hyperparameter {name!r} (known: {known}). Fix: {hint}")
        values[name] = coerce(specs[name], overrides[name], source)
    return values


def decode(config: PipelineConfig, encoded: Mapping[str, str], source: str) -> Dict[str, Any]:
    """SageMaker's string map back to typed values (defaults fill what is absent)."""
    return resolve(config, encoded, source)


def example_assignment(config: Optional[PipelineConfig], name: str = "") -> str:
    """`name=default` of the pipeline's own hyperparameter `name` (else its first one), for error hints."""
    specs = list(config.hyperparameters) if config is not None else []
    if not specs:
        return "name=value"
    spec = next((s for s in specs if s.name == name), specs[0])
    default = spec.default if isinstance(spec.default, str) else json.dumps(spec.default)
    return f"{spec.name}={default}"


def parse_assignments(args: Iterable[str], config: Optional[PipelineConfig] = None) -> Dict[str, str]:
    """`name=value` command-line overrides, as raw strings; `config` makes the hint its own."""
    result: Dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name:
            raise HyperparameterError(
                f"command line: {arg!r} is not a hyperparameter override. "
                f"Fix: write name=value, e.g. {example_assignment(config, name)}."
            )
        if name in result and result[name] != value:
            raise HyperparameterError(
                f"command line: hyperparameter {name!r} is given twice ({name}={result[name]} and {arg}). "
                f"Fix: give it once."
            )
        result[name] = value
    return result
