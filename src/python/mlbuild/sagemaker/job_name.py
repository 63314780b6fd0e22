"""Deterministic job names, one scheme for both publish backends: `<pipeline>-<inputs hash>[-r<run>]`.

The hash covers the job's inputs (canonical JSON, a `TrainingJobName` in them excluded), so
the same inputs always map to the same job, which each backend looks up by that name (AWS:
DescribeTrainingJob, deduplicated by `submit.py`; local: `jobs/<name>/job.json`), while any
change makes a new name. A SageMaker job's inputs are its whole CreateTrainingJob request
(image, hyperparameters, instance, S3 data, tags such as the git sha); a local job's are
`lineage.reuse.run_inputs` (image digest, hyperparameter strings, data checksums). A forced
re-run adds its UTC time; a name already taken moves on to the next second (`forced_job_names`).
SageMaker names are 1-63 characters of `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#sagemaker-CreateTrainingJob-request-TrainingJobName
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import re
from typing import Any, Iterator, Mapping, Optional

MAX_NAME = 63
HASH_LENGTH = 12
RUN_SUFFIX_LENGTH = 16  # "-r" + YYYYMMDDhhmmss
# NB: the prefix budget leaves room for a run suffix, so a forced re-run keeps the same
# readable prefix and hash as the job it repeats.
MAX_PREFIX = MAX_NAME - 1 - HASH_LENGTH - RUN_SUFFIX_LENGTH
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def canonical_json(inputs: Mapping[str, Any]) -> str:
    body = {k: v for k, v in inputs.items() if k != "TrainingJobName"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def request_hash(inputs: Mapping[str, Any]) -> str:
    """The sha256 of a job's inputs: a CreateTrainingJob request, or a local job's inputs."""
    return hashlib.sha256(canonical_json(inputs).encode("ascii")).hexdigest()


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


def job_name(pipeline_name: str, inputs: Mapping[str, Any], run: Optional[datetime.datetime] = None) -> str:
    name = f"{sanitize(pipeline_name)}-{request_hash(inputs)[:HASH_LENGTH]}"
    if run is not None:
        name += "-r" + run.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    assert len(name) <= MAX_NAME and NAME_PATTERN.match(name), name
    return name


def forced_job_names(pipeline_name: str, inputs: Mapping[str, Any], run: datetime.datetime) -> Iterator[str]:
    """A forced re-run's names, in the order to try them: `run`'s, then each next second's, so
    a name taken by another forced run of the same second keeps the format and length."""
    for second in itertools.count():
        yield job_name(pipeline_name, inputs, run=run + datetime.timedelta(seconds=second))
