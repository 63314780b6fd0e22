from __future__ import annotations

import copy
import datetime

import pytest

from mlbuild.sagemaker.conftest import CONFIG_TEXT, OTHER_DIGEST, make_config, request_inputs
from mlbuild.sagemaker.job_name import (
    NAME_PATTERN,
    forced_job_names,
    job_name,
    pipeline_name_from_address,
    request_hash,
    sanitize,
)
from mlbuild.sagemaker.job_request import build_request

RUN = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)


def build(**overrides):
    config = overrides.pop("config", None) or make_config()
    return build_request(config, **request_inputs(config=config, **overrides))


def test_deterministic_and_independent_of_key_order() -> None:
    request = build()
    reordered = dict(reversed(list(copy.deepcopy(request).items())))
    assert job_name("demo-train", request) == job_name("demo-train", reordered) == job_name("demo-train", build())
    assert job_name("demo-train", {**request, "TrainingJobName": "ignored"}) == job_name("demo-train", request)


CHANGES = {
    "image": dict(image_uri="repo@" + OTHER_DIGEST),
    "hyperparameter": dict(hyperparameter_values={"max_depth": 5}),
    "git sha": dict(git_sha="1111111"),
    "pex": dict(pex_sha256="00" * 32),
    "address": dict(pipeline_address="src/python/pipelines/demo:other"),
    "metrics": dict(metric_names=["validation:auc"]),
    "instance type": dict(config=make_config(CONFIG_TEXT.replace("ml.m5.xlarge", "ml.m5.2xlarge"))),
    "channel": dict(config=make_config(CONFIG_TEXT.replace("data/train/", "data/train-v2/"))),
}


@pytest.mark.parametrize("overrides", list(CHANGES.values()), ids=list(CHANGES))
def test_any_change_changes_the_name(overrides: dict) -> None:
    assert request_hash(build(**overrides)) != request_hash(build())
    assert job_name("demo-train", build(**overrides)) != job_name("demo-train", build())


@pytest.mark.parametrize(
    "pipeline",
    ["demo-train", "x", "___", "a" * 200, "Churn_Model v2!", "-leading-and-trailing-", "ünïcödé"],
)
def test_names_follow_the_sagemaker_rule(pipeline: str) -> None:
    for run in (None, RUN):
        name = job_name(pipeline, build(), run=run)
        assert len(name) <= 63
        assert NAME_PATTERN.match(name), name


def test_forced_run_keeps_prefix_and_hash() -> None:
    plain = job_name("demo-train", build())
    forced = job_name("demo-train", build(), run=RUN)
    assert forced == plain + "-r20240506070809"
    assert job_name("a" * 200, build(), run=RUN).startswith(job_name("a" * 200, build()))


def test_a_taken_forced_name_moves_on_to_the_next_seconds() -> None:
    names = forced_job_names("demo-train", build(), RUN)
    assert [next(names) for _ in range(3)] == [
        job_name("demo-train", build(), run=RUN + datetime.timedelta(seconds=s)) for s in range(3)
    ]


def test_one_scheme_for_any_jobs_inputs() -> None:
    """A local job's inputs (lineage.reuse.run_inputs) are named by the same function as a request."""
    inputs = {"artifact": OTHER_DIGEST, "hyperparameters": {"max_depth": "3"}, "data": {"train": OTHER_DIGEST}}
    name = job_name("churn-train", inputs)
    assert name == job_name("churn-train", dict(reversed(list(inputs.items())))) and NAME_PATTERN.match(name)
    assert name == f"churn-train-{request_hash(inputs)[:12]}" != job_name("churn-train", {**inputs, "data": {}})


@pytest.mark.parametrize(
    "address,expected",
    [
        ("src/python/pipelines/churn:train", "churn-train"),
        ("src/python/pipelines/churn", "churn"),
        ("src/python/pipelines/churn:churn", "churn"),
        ("src/python/pipelines/churn:train#gpu", "churn-train-gpu"),
        (":root", "root"),
    ],
)
def test_pipeline_name_from_address(address: str, expected: str) -> None:
    assert pipeline_name_from_address(address) == expected


def test_sanitize() -> None:
    assert sanitize("Churn_Model v2!") == "Churn-Model-v2"
    assert sanitize("___") == "mlbuild"


def test_name_is_stable_across_processes_and_hash_seeds() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from mlbuild.sagemaker.conftest import make_config, request_inputs;"
        "from mlbuild.sagemaker.job_request import build_request;"
        "from mlbuild.sagemaker.job_name import job_name;"
        "c = make_config(); print(job_name('demo-train', build_request(c, **request_inputs(config=c))))"
    )
    names = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)}
        names.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    assert names == {job_name("demo-train", build())}
