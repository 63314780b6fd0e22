"""RuleRunner tests for the ml_pipeline target: package, run, inference, tailor, validation."""

from __future__ import annotations

import os
import subprocess
import zipfile
from textwrap import dedent

import pytest
from pants.backend.python import target_types_rules
from pants.backend.python.target_types import PythonSourcesGeneratorTarget
from pants.core.target_types import FilesGeneratorTarget
from pants.backend.python.util_rules import pex_from_targets
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.core.goals.tailor import PutativeTarget, PutativeTargets
from pants.core.util_rules import distdir
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants import register
from mlbuild_pants.dependency_inference import (
    InferMLPipelineDependencies,
    MLPipelineInferenceFieldSet,
)
from mlbuild_pants.image import layer_groups
from mlbuild_pants.package import MLPipelineFieldSet, MLPipelinePex, MLPipelinePexRequest
from mlbuild_pants.tailor import PutativeMLPipelineTargetsRequest
from mlbuild_pants.target_types import MLPipelineTarget

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
# NB: `pants run` starts the host side of a run (mlbuild.lineage.host_run) in the venv; it
# is found on the repo's source root, not in the pipeline's closure.
FAKE_HOST_RUN = "from mlbuild.runtime.cli import main as runtime_main\n\ndef main():\n    print('host-run')\n    runtime_main()\n"


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
            QueryRule(PutativeTargets, [PutativeMLPipelineTargetsRequest]),
        ],
        target_types=[MLPipelineTarget, PythonSourcesGeneratorTarget, FilesGeneratorTarget],
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
            "src/mlbuild/lineage/__init__.py": "",
            "src/mlbuild/lineage/host_run.py": FAKE_HOST_RUN,
            "src/mlbuild/BUILD": "python_sources()",
            "src/mlbuild/runtime/BUILD": "python_sources()",
            "src/pipez/__init__.py": "",
            "src/pipez/BUILD": "python_sources()",
            "src/pipez/toy/__init__.py": "",
            "src/pipez/toy/model.py": "import pipez.toy.helpers\ndef load(ctx): ...\n",
            "src/pipez/toy/helpers.py": "",
            "src/pipez/toy/toy.yaml": "hyperparameters: {depth: 3}\n",
            "src/pipez/toy/BUILD": dedent(
                """\
                python_sources()
                ml_pipeline(name="train", pipeline="model.py", config="toy.yaml", sample_data="sample")
                """
            ),
        }
    )
    return rule_runner


def field_set(rule_runner: RuleRunner, address: Address = Address("src/pipez/toy", target_name="train")):
    return MLPipelineFieldSet.create(rule_runner.get_target(address))


def test_the_pipeline_pex_carries_the_pipeline_and_its_config(rule_runner: RuleRunner) -> None:
    prepared = rule_runner.request(MLPipelinePex, [MLPipelinePexRequest(field_set(rule_runner))])
    assert prepared.request.output_filename == "src.pipez.toy/train.pex"
    built = rule_runner.request(Pex, [prepared.request])
    rule_runner.write_digest(built.digest, path_prefix="dist")
    pex = os.path.join(rule_runner.build_root, "dist/src.pipez.toy/train.pex")
    names = zipfile.ZipFile(pex).namelist()
    assert {"pipez/toy/model.py", "pipez/toy/helpers.py", "pipez/toy/toy.yaml", "mlbuild/runtime/cli.py"} <= set(names)
    # NB: a PEX_ROOT of its own: running a PEX writes into it, and ~/.pex is the user's.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "PEX_ROOT": os.path.join(rule_runner.build_root, ".pex_root")}
    out = subprocess.run(["python3.11", pex, "train"], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["pipez.toy.model", "src/pipez/toy:train", "hyperparameters:", "{depth:", "3}", "train"]


def test_run_trains_the_current_sources_on_a_cached_requirements_venv(rule_runner: RuleRunner) -> None:
    request = rule_runner.request(RunRequest, [field_set(rule_runner)])
    assert request.args[0].startswith("{chroot}/") and "mlbuild_requirements.pex" in request.args[0]
    assert request.args[1:6] == ("local", "--data-dir", "src/pipez/toy/sample", "--runs-dir", "dist/mlbuild/runs")
    pins = dict(zip(request.args[6::2], request.args[7::2]))
    assert list(pins) == ["--sources-sha256", "--requirements-sha256"] and all(len(v) == 64 for v in pins.values())
    env = request.extra_env
    assert env["PEX_MODULE"] == "mlbuild.lineage.host_run:main"
    # The repo's source root first (errors name the files the user edits), then the chroot's copy.
    assert env["PEX_EXTRA_SYS_PATH"] == "src:{chroot}/src"
    assert (env["MLBUILD_PIPELINE_MODULE"], env["MLBUILD_PIPELINE_CONFIG"], env["MLBUILD_PIPELINE_ADDRESS"]) == (
        "pipez.toy.model", "toy.yaml", "src/pipez/toy:train"
    )
    # Run it as `pants run` would: the fake runtime reads the module, address and config.
    chroot = os.path.join(rule_runner.build_root, "chroot")
    rule_runner.write_digest(request.digest, path_prefix="chroot")
    argv = [a.replace("{chroot}", chroot) for a in request.args]
    run_env = {k: v.replace("{chroot}", chroot) for k, v in env.items()}
    out = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=rule_runner.build_root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:3] == ["host-run", "pipez.toy.model", "src/pipez/toy:train"]


def test_an_edit_changes_the_sources_pin_and_not_the_requirements_venv(rule_runner: RuleRunner) -> None:
    def pins() -> dict:
        args = rule_runner.request(RunRequest, [field_set(rule_runner)]).args
        return dict(zip(args[6::2], args[7::2]))

    before = pins()
    rule_runner.write_files({"src/pipez/toy/helpers.py": "X = 1\n"})
    after = pins()
    assert after["--sources-sha256"] != before["--sources-sha256"]
    assert after["--requirements-sha256"] == before["--requirements-sha256"]


def test_infers_the_pipeline_module_and_the_runtime(rule_runner: RuleRunner) -> None:
    target = rule_runner.get_target(Address("src/pipez/toy", target_name="train"))
    inferred = rule_runner.request(
        InferredDependencies, [InferMLPipelineDependencies(MLPipelineInferenceFieldSet.create(target))]
    )
    assert set(inferred.include) == {
        Address("src/pipez/toy", relative_file_path="model.py"),
        Address("src/mlbuild/runtime", relative_file_path="cli.py"),
    }


def test_tailor_adds_a_target_for_an_unowned_pipeline_config(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"src/pipez/new/pipeline.yaml": "{}", "src/pipez/other/pipeline.yml": "{}"})
    # NB: a `files` target that globs the configs (as the repo's e2e input does) must not hide them.
    rule_runner.write_files({"src/BUILD": 'files(name="everything", sources=["**/*.yaml", "**/*.yml"])'})
    putative = rule_runner.request(
        PutativeTargets,
        [PutativeMLPipelineTargetsRequest(("src/pipez/new", "src/pipez/other", "src/pipez/toy"))],
    )
    assert putative == PutativeTargets(
        [
            PutativeTarget("src/pipez/new", "train", "ml_pipeline", ["pipeline.yaml"], ()),
            PutativeTarget("src/pipez/other", "train", "ml_pipeline", ["pipeline.yml"], (), kwargs={"config": "pipeline.yml"}),
        ]
    )
    # What tailor writes: no `sources=` kwarg (ml_pipeline has none), whatever else globs the config.
    first = list(putative)[0]
    stanza = first.generate_build_file_stanza("    ")
    assert stanza.startswith("ml_pipeline(") and "sources" not in stanza and not first.owned_sources


@pytest.mark.parametrize(
    "fields, message",
    [
        ('config="conf/toy.yaml"', "is 'conf/toy.yaml', which is not in the target's folder"),
        ('pipeline="model.py:main"', "names a function ('model.py:main'); it must name a module"),
        ('sample_data="../elsewhere"', "The `sample_data` field of src/pipez/bad:train is '../elsewhere'"),
    ],
)
def test_bad_fields_name_the_target_and_the_fix(rule_runner: RuleRunner, fields: str, message: str) -> None:
    rule_runner.write_files({"src/pipez/bad/BUILD": f'ml_pipeline(name="train", {fields})'})
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src/pipez/bad", target_name="train"))
    assert message in str(e.value)


def test_a_config_that_is_not_yaml_is_rejected_when_packaging(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/pipez/json/toy.json": "{}",
            "src/pipez/json/BUILD": 'ml_pipeline(name="train", pipeline="pipez.toy.model", config="toy.json")',
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(BuiltPackage, [field_set(rule_runner, Address("src/pipez/json", target_name="train"))])
    assert "toy.json" in str(e.value) and ".yaml" in str(e.value), str(e.value)


def test_layers_put_large_wheels_alone_and_the_rest_together() -> None:
    wheels = [("torch-2.1-cp311.whl", 110), ("numpy-2.1.3-cp311.whl", 50), ("PyYAML-6.0.2-cp311.whl", 1)]
    assert layer_groups(wheels, split_bytes=100) == [
        ("dep-torch", ["torch-2.1-cp311.whl"]),
        ("deps", ["PyYAML-6.0.2-cp311.whl", "numpy-2.1.3-cp311.whl"]),
    ]
    assert layer_groups([], split_bytes=100) == []
