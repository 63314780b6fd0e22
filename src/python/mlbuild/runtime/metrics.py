"""Metrics: one JSON file, and log lines a SageMaker metric-definition regex can read.

SageMaker scrapes the job's CloudWatch log with one regex per metric
(https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html); mlbuild prints
each metric as `mlbuild-metric <name>=<value>;` and `metric_definitions` returns the
matching regexes, so the runtime and the job request cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Dict, List, Mapping

PREFIX = "mlbuild-metric"
_NAME = re.compile(r"^[A-Za-z0-9_.:/\-]+$")
_NUMBER = r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"


def format_line(name: str, value: float) -> str:
    return f"{PREFIX} {name}={value!r};"


def metric_regex(name: str) -> str:
    return rf"{PREFIX} {re.escape(name)}=({_NUMBER});"


def metric_definitions(names: List[str]) -> List[Dict[str, str]]:
    return [{"Name": name, "Regex": metric_regex(name)} for name in sorted(names)]


def validate(metrics: Mapping[str, object], source: str) -> Dict[str, float]:
    from mlbuild.runtime.errors import PipelineError

    if not isinstance(metrics, Mapping):
        raise PipelineError(
            f"{source}: evaluate() must return a dict of metric name to number, got {type(metrics).__name__}."
        )
    result = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise PipelineError(f"{source}: metric name {name!r} is invalid. Fix: use letters, digits and _.:/-")
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise PipelineError(f"{source}: metric {name!r} is {value!r}, not a number.")
        result[name] = float(value)
    return dict(sorted(result.items()))


def emit(metrics: Mapping[str, float], path: Path, print_line: Callable[[str], None] = print) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    finite = {k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}
    path.write_text(json.dumps(finite, indent=2, sort_keys=True) + "\n")
    for name, value in sorted(metrics.items()):
        print_line(format_line(name, value))
