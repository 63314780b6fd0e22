"""Deterministic training job names: `<pipeline>-<request hash>[-r<run>]`.

The hash covers the whole request (canonical JSON, the name excluded), so resubmitting
an identical request maps to the same job (and is deduplicated by `submit.py`) while
any change (image, hyperparameters, instance, data, tags such as the git sha) makes a
new name. SageMaker names are 1-63 characters of `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#sagemaker-CreateTrainingJob-request-TrainingJobName
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from typing import Any, Mapping, Optional

MAX_NAME = 63
HASH_LENGTH = 12
RUN_SUFFIX_LENGTH = 16  # "-r" + YYYYMMDDhhmmss
# NB: the prefix budget leaves room for a run suffix, so a forced re-run keeps the same
# readable prefix and hash as the job it repeats.
MAX_PREFIX = MAX_NAME - 1 - HASH_LENGTH - RUN_SUFFIX_LENGTH
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def canonical_json(request: Mapping[str, Any]) -> str:
    body = {k: v for k, v in request.items() if k != "TrainingJobName"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def request_hash(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(request).encode("ascii")).hexdigest()


def pipeline_name_from_address(address: str) -> str:
    """`src/python/pipelines/churn:train` -> `churn-train`; `a/b/churn` -> `churn`."""
    path, _, target = address.partition(":")
    target, _, generated = target.partition("#")
    directory = path.rstrip("/").rsplit("/", 1)[-1]
    parts = [directory] + [p for p in (target, generated) if p and p != directory]
    return "-".join(p for p in parts if p)


def sanitize(name: str) -> str:
    """Letters and digits kept, every other run of characters one hyphen, ends trimmed."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")
    cleaned = cleaned[:MAX_PREFIX].rstrip("-")
    return cleaned or "mlbuild"


def job_name(pipeline_name: str, request: Mapping[str, Any], run: Optional[datetime.datetime] = None) -> str:
    name = f"{sanitize(pipeline_name)}-{request_hash(request)[:HASH_LENGTH]}"
    if run is not None:
        name += "-r" + run.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    assert len(name) <= MAX_NAME and NAME_PATTERN.match(name), name
    return name
