"""The ml_pipeline and ml_base_image fields: bad values name the target and the fix."""

from __future__ import annotations

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.target_types import MLPipelineSampleDataField

PINNED = "r.io/python:3.11@sha256:" + "0" * 64


@pytest.mark.parametrize(
    "fields, message",
    [
        ('config="conf/toy.yaml"', "is 'conf/toy.yaml', which is not in the target's folder"),
        ('pipeline="model.py:main"', "names a function ('model.py:main'); it must name a module"),
        ('sample_data="../elsewhere"', "The `sample_data` field of src/pipez/bad:train is '../elsewhere'"),
        ('sample_data="/data"', "The `sample_data` field of src/pipez/bad:train is '/data'"),
        (
            "layer_split_mb=0",
            "The `layer_split_mb` field of src/pipez/bad:train is 0. Fix: give a size in MB of at least 1",
        ),
    ],
)
def test_bad_pipeline_fields_name_the_target_and_the_fix(rule_runner: RuleRunner, fields: str, message: str) -> None:
    rule_runner.write_files({"src/pipez/bad/BUILD": f'ml_pipeline(name="train", {fields})'})
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src/pipez/bad", target_name="train"))
    assert message in str(e.value)


def test_sample_data_is_normalised_for_the_paths_run_and_publish_join(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"src/pipez/ok/BUILD": 'ml_pipeline(name="train", sample_data="./data//sample/")'})
    target = rule_runner.get_target(Address("src/pipez/ok", target_name="train"))
    assert target[MLPipelineSampleDataField].value == "data/sample"


@pytest.mark.parametrize(
    "fields, message",
    [
        ('debian_lock="packages.lock.json", image="' + PINNED + '"', "sets both of `debian_lock` and `image`"),
        ("", "sets neither of `debian_lock` and `image`"),
        ('image="r.io/python:3.11"', "is 'r.io/python:3.11', which is not pinned by digest"),
        (
            'image="' + PINNED + '", python="python3.11"',
            "The `python` field of src/base:b is 'python3.11'. Fix: give an absolute path",
        ),
    ],
)
def test_bad_base_image_fields_name_the_target_and_the_fix(rule_runner: RuleRunner, fields: str, message: str) -> None:
    rule_runner.write_files(
        {"src/base/packages.lock.json": "{}", "src/base/BUILD": f'ml_base_image(name="b", {fields})'}
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src/base", target_name="b"))
    assert message in str(e.value)
