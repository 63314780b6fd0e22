"""RuleRunner tests for the ml_pipeline target: package, run, inference, tailor, validation."""

from __future__ import annotations

import os
import subprocess
import zipfile
from textwrap import dedent

import pytest
from pants.backend.python import target_types_rules
from pants.backend.python.target_types import PythonSourcesGeneratorTarget
from pants.backend.python.util_rules import pex_from_targets
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.core.goals.tailor import AllOwnedSources, PutativeTarget, PutativeTargets
from pants.core.util_rules import distdir
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import RuleRunner

from mlbuild.pants_plugin import register
from mlbuild.pants_plugin.dependency_inference import (
    InferMLPipelineDependencies,
    MLPipelineInferenceFieldSet,
)
from mlbuild.pants_plugin.image import layer_groups
from mlbuild.pants_plugin.package import MLPipelineFieldSet, MLPipelinePex, MLPipelinePexRequest
from mlbuild.pants_plugin.tailor import PutativeMLPipelineTargetsRequest
from mlbuild.pants_plugin.target_types import MLPipelineTarget

# NB: the launcher puts the locally built pex CLI and the machine's pip/CA workarounds in
# PANTS_* variables; a RuleRunner reads options from its environment, so pass them on.
INHERITED_ENV = {
    "PATH",
    "HOME",
    "PYENV_ROOT",
    "PANTS_PEX_CLI_URL_TEMPLATE",
    "PANTS_PEX_CLI_KNOWN_VERSIONS",
    "PANTS_CA_CERTS_PATH",
    "PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS",
}

FAKE_RUNTIME = dedent(
    """\
    import importlib.resources, os, sys

    def main():
        module = os.environ["MLBUILD_PIPELINE_MODULE"]
        package = module.rpartition(".")[0]
        config = importlib.resources.files(package).joinpath(os.environ["MLBUILD_PIPELINE_CONFIG"]).read_text()
        print(module, os.environ["MLBUILD_PIPELINE_ADDRESS"], config.strip(), *sys.argv[1:])
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    rule_runner = RuleRunner(
        rules=[
            *register.rules(),
            *pex_from_targets.rules(),
            *target_types_rules.rules(),
            *distdir.rules(),
            QueryRule(BuiltPackage, [MLPipelineFieldSet]),
            QueryRule(MLPipelinePex, [MLPipelinePexRequest]),
            QueryRule(Pex, [PexFromTargetsRequest]),
            QueryRule(RunRequest, [MLPipelineFieldSet]),
            QueryRule(InferredDependencies, [InferMLPipelineDependencies]),
            QueryRule(PutativeTargets, [PutativeMLPipelineTargetsRequest, AllOwnedSources]),
        ],
        target_types=[MLPipelineTarget, PythonSourcesGeneratorTarget],
    )
    rule_runner.set_options(
        [
            "--python-interpreter-constraints=['CPython==3.11.*']",
            "--python-bootstrap-search-path=['<PYENV>', '<PATH>']",
            "--python-infer-use-rust-parser",
            "--source-root-patterns=['/src']",
        ],
        env_inherit=INHERITED_ENV,
    )
    rule_runner.write_files(
        {
            "src/mlbuild/__init__.py": "",
            "src/mlbuild/runtime/__init__.py": "",
            "src/mlbuild/runtime/cli.py": FAKE_RUNTIME,
            "src/mlbuild/BUILD": "python_sources()",
            "src/mlbuild/runtime/BUILD": "python_sources()",
            "src/pipes/__init__.py": "",
            "src/pipes/BUILD": "python_sources()",
            "src/pipes/toy/__init__.py": "",
            "src/pipes/toy/model.py": "import pipes.toy.helpers\ndef load(ctx): ...\n",
            "src/pipes/toy/helpers.py": "",
            "src/pipes/toy/toy.yaml": "hyperparameters: {depth: 3}\n",
            "src/pipes/toy/BUILD": dedent(
                """\
                python_sources()
                ml_pipeline(name="train", pipeline="model.py", config="toy.yaml", sample_data="sample")
                """
            ),
        }
    )
    return rule_runner


def field_set(rule_runner: RuleRunner, address: Address = Address("src/pipes/toy", target_name="train")):
    return MLPipelineFieldSet.create(rule_runner.get_target(address))


def test_the_pipeline_pex_carries_the_pipeline_and_its_config(rule_runner: RuleRunner) -> None:
    prepared = rule_runner.request(MLPipelinePex, [MLPipelinePexRequest(field_set(rule_runner))])
    assert prepared.request.output_filename == "src.pipes.toy/train.pex"
    built = rule_runner.request(Pex, [prepared.request])
    rule_runner.write_digest(built.digest, path_prefix="dist")
    pex = os.path.join(rule_runner.build_root, "dist/src.pipes.toy/train.pex")
    names = zipfile.ZipFile(pex).namelist()
    assert {"pipes/toy/model.py", "pipes/toy/helpers.py", "pipes/toy/toy.yaml", "mlbuild/runtime/cli.py"} <= set(names)
    out = subprocess.run(["python3.11", pex, "train"], capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]})
    assert out.stdout.split() == ["pipes.toy.model", "src/pipes/toy:train", "hyperparameters:", "{depth:", "3}", "train"]


def test_run_trains_on_the_sample_data_into_dist(rule_runner: RuleRunner) -> None:
    request = rule_runner.request(RunRequest, [field_set(rule_runner)])
    assert request.args[1:] == (
        "{chroot}/src.pipes.toy/train.pex",
        "local",
        "--data-dir",
        "src/pipes/toy/sample",
        "--runs-dir",
        "dist/mlbuild/runs",
    )
    assert "3.11" in os.path.basename(request.args[0]) or "python" in request.args[0]


def test_infers_the_pipeline_module_and_the_runtime(rule_runner: RuleRunner) -> None:
    target = rule_runner.get_target(Address("src/pipes/toy", target_name="train"))
    inferred = rule_runner.request(
        InferredDependencies, [InferMLPipelineDependencies(MLPipelineInferenceFieldSet.create(target))]
    )
    assert set(inferred.include) == {
        Address("src/pipes/toy", relative_file_path="model.py"),
        Address("src/mlbuild/runtime", relative_file_path="cli.py"),
    }


def test_tailor_adds_a_target_for_an_unowned_pipeline_config(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"src/pipes/new/pipeline.yaml": "{}", "src/pipes/other/pipeline.yml": "{}"})
    putative = rule_runner.request(
        PutativeTargets,
        [PutativeMLPipelineTargetsRequest(("src/pipes/new", "src/pipes/other", "src/pipes/toy")), AllOwnedSources(["src/pipes/toy/toy.yaml"])],
    )
    assert putative == PutativeTargets(
        [
            PutativeTarget.for_target_type(MLPipelineTarget, "src/pipes/new", "train", ["pipeline.yaml"]),
            PutativeTarget.for_target_type(MLPipelineTarget, "src/pipes/other", "train", ["pipeline.yml"], kwargs={"config": "pipeline.yml"}),
        ]
    )


@pytest.mark.parametrize(
    "fields, message",
    [
        ('config="conf/toy.yaml"', "is 'conf/toy.yaml', which is not in the target's folder"),
        ('pipeline="model.py:main"', "names a function ('model.py:main'); it must name a module"),
        ('sample_data="../elsewhere"', "The `sample_data` field of src/pipes/bad:train is '../elsewhere'"),
    ],
)
def test_bad_fields_name_the_target_and_the_fix(rule_runner: RuleRunner, fields: str, message: str) -> None:
    rule_runner.write_files({"src/pipes/bad/BUILD": f'ml_pipeline(name="train", {fields})'})
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src/pipes/bad", target_name="train"))
    assert message in str(e.value)


def test_a_config_that_is_not_yaml_is_rejected_when_packaging(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/pipes/json/toy.json": "{}",
            "src/pipes/json/BUILD": 'ml_pipeline(name="train", pipeline="pipes.toy.model", config="toy.json")',
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(BuiltPackage, [field_set(rule_runner, Address("src/pipes/json", target_name="train"))])
    assert "toy.json" in str(e.value) and ".yaml" in str(e.value)


def test_layers_put_large_wheels_alone_and_code_on_top() -> None:
    entries = [
        (".bootstrap/pex/pex.py", 10),
        (".deps/torch-2.1-cp311.whl/torch/a.so", 90),
        (".deps/torch-2.1-cp311.whl/torch/b.so", 20),
        (".deps/numpy-2.1.3-cp311.whl/numpy/x.so", 50),
        (".deps/PyYAML-6.0.2-cp311.whl/yaml/y.py", 1),
        ("PEX-INFO", 1),
        ("__main__.py", 1),
        ("pipes/toy/model.py", 1),
        ("mlbuild/runtime/cli.py", 1),
    ]
    assert layer_groups(entries, split_bytes=100) == [
        ("dep-torch", [".deps/torch-2.1-cp311.whl"]),
        ("deps", [".bootstrap", ".deps/PyYAML-6.0.2-cp311.whl", ".deps/numpy-2.1.3-cp311.whl"]),
        ("app", ["PEX-INFO", "__main__.py", "mlbuild", "pipes"]),
    ]
