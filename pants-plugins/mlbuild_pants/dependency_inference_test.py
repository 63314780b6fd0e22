"""An ml_pipeline's inferred dependencies: what its PEX and image need beyond its BUILD file."""

from __future__ import annotations

from textwrap import dedent

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.engine.addresses import Address
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.conftest import BASE_IMAGE, TOY
from mlbuild_pants.dependency_inference import InferMLPipelineDependencies, MLPipelineInferenceFieldSet

RUNTIME = Address("src/mlbuild/runtime", relative_file_path="cli.py")
SERVING = Address("src/mlbuild/serving", relative_file_path="cli.py")


def inferred(rule_runner: RuleRunner, address: Address) -> set:
    target = rule_runner.get_target(address)
    result = rule_runner.request(
        InferredDependencies, [InferMLPipelineDependencies(MLPipelineInferenceFieldSet.create(target))]
    )
    return set(result.include)


def test_infers_the_pipeline_module_the_runtime_serving_and_the_base_image(rule_runner: RuleRunner) -> None:
    assert inferred(rule_runner, TOY) == {
        Address("src/pipez/toy", relative_file_path="model.py"),
        RUNTIME,
        SERVING,
        BASE_IMAGE,
    }


@pytest.mark.parametrize("pipeline", ["helpers.py", "pipez.toy.helpers"])
def test_the_pipeline_field_is_a_file_in_the_folder_or_a_module_name(rule_runner: RuleRunner, pipeline: str) -> None:
    rule_runner.write_files(
        {
            "src/pipez/toy/BUILD": f'python_sources()\nml_pipeline(name="other", pipeline="{pipeline}", config="toy.yaml")'
        }
    )
    assert inferred(rule_runner, Address("src/pipez/toy", target_name="other")) - {BASE_IMAGE} == {
        Address("src/pipez/toy", relative_file_path="helpers.py"),
        RUNTIME,
        SERVING,
    }


def test_the_base_image_field_is_relative_to_the_pipelines_folder(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/pipez/toy/BUILD": dedent(
                """\
                python_sources()
                ml_base_image(name="slim", image="r.io/python@sha256:%s")
                ml_pipeline(name="train", pipeline="model.py", config="toy.yaml", base_image=":slim")
                """
                % ("0" * 64)
            ),
        }
    )
    deps = inferred(rule_runner, TOY)
    assert Address("src/pipez/toy", target_name="slim") in deps and BASE_IMAGE not in deps
