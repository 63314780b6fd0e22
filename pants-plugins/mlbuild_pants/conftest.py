"""The RuleRunner the plugin's rule tests share: the plugin's rules and a small fake repo.

The repo holds fakes of the mlbuild runtime, serving and host-run entry points (each prints
what it was started with), a base image target, and a toy pipeline at `src/pipez/toy:train`
(`pipeline="model.py"`, `config="toy.yaml"`, `sample_data="sample"`). Tests that need more
files write them with `rule_runner.write_files`.
"""

from __future__ import annotations

from textwrap import dedent

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.backend.python import target_types_rules
from pants.backend.python.target_types import (
    PythonRequirementTarget,
    PythonSourcesGeneratorTarget,
    PythonTestsGeneratorTarget,
    PythonTestUtilsGeneratorTarget,
)
from pants.backend.python.util_rules import pex_from_targets
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.core.goals.tailor import PutativeTargets
from pants.core.target_types import FilesGeneratorTarget, GenericTarget
from pants.core.util_rules import distdir
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, Snapshot
from pants.engine.rules import QueryRule
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants import register
from mlbuild_pants.base_image import BaseImage
from mlbuild_pants.dependency_inference import InferMLPipelineDependencies
from mlbuild_pants.image import PipelineImage
from mlbuild_pants.package import BuiltMLPipeline, MLPipelineFieldSet, MLPipelinePex, MLPipelinePexRequest
from mlbuild_pants.tailor import PutativeMLPipelineTargetsRequest
from mlbuild_pants.tool import _ToolRequest

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

TOY = Address("src/pipez/toy", target_name="train")
# The `base_image` default of every ml_pipeline.
BASE_IMAGE = Address("docker/debian-python3.11", target_name="base")

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
FAKE_SERVING = "def main():\n    print('serve')\n"
# NB: `pants run` starts the host side of a run (mlbuild.lineage.host_run) in the venv; it
# is found on the repo's source root, not in the pipeline's closure.
FAKE_HOST_RUN = (
    "from mlbuild.runtime.cli import main as runtime_main\n\ndef main():\n    print('host-run')\n    runtime_main()\n"
)

FILES = {
    "src/mlbuild/__init__.py": "",
    "src/mlbuild/runtime/__init__.py": "",
    "src/mlbuild/runtime/cli.py": FAKE_RUNTIME,
    "src/mlbuild/serving/__init__.py": "",
    "src/mlbuild/serving/cli.py": FAKE_SERVING,
    "src/mlbuild/lineage/__init__.py": "",
    "src/mlbuild/lineage/host_run.py": FAKE_HOST_RUN,
    # NB: the tool PEX's target (`[mlbuild].tool_target`): the modules rules start with `python -m`.
    "src/mlbuild/BUILD": 'python_sources()\ntarget(name="tool", dependencies=["./runtime/cli.py"])',
    "src/mlbuild/runtime/BUILD": "python_sources()",
    "src/mlbuild/serving/BUILD": "python_sources()",
    # NB: only its address is needed (the tests build no image): the lock is never read.
    "docker/debian-python3.11/packages.lock.json": "{}",
    "docker/debian-python3.11/BUILD": 'ml_base_image(name="base", debian_lock="packages.lock.json")',
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
            QueryRule(_ToolRequest, []),
            QueryRule(Snapshot, [Digest]),
        ],
        target_types=[
            *register.target_types(),
            PythonRequirementTarget,
            PythonSourcesGeneratorTarget,
            PythonTestsGeneratorTarget,
            PythonTestUtilsGeneratorTarget,
            FilesGeneratorTarget,
            GenericTarget,
        ],
    )
    rule_runner.set_options(
        [
            "--python-interpreter-constraints=['CPython==3.11.*']",
            "--python-bootstrap-search-path=['<PYENV>', '<PATH>']",
            "--python-infer-use-rust-parser",
            "--source-root-patterns=['/src']",
            "--mlbuild-tool-target=src/mlbuild:tool",
        ],
        env_inherit=INHERITED_ENV,
    )
    rule_runner.write_files(FILES)
    return rule_runner


def unexpected(*args):
    """A mock for a request the rule must not make on the path under test."""
    raise AssertionError(f"not expected on this path: {args}")


def flag(argv, name: str) -> str:
    """The value after `name` in a command line."""
    return argv[list(argv).index(name) + 1]


def pipeline_field_set(rule_runner: RuleRunner, address: Address = TOY) -> MLPipelineFieldSet:
    return MLPipelineFieldSet.create(rule_runner.get_target(address))


# What `package` built for the toy pipeline, for rules run with mocks (nothing is built).
BUILT_PEX_SHA256 = "cd" * 32
BUILT_MANIFEST = "sha256:" + "ab" * 32
BUILT_TOY = BuiltMLPipeline(
    pex_digest=Digest("1" * 64, 100),
    pex_path="src.pipez.toy/train.pex",
    pex_sha256=BUILT_PEX_SHA256,
    image=PipelineImage(
        digest=Digest("2" * 64, 200),
        layout_path="src.pipez.toy/train.oci",
        shared=EMPTY_DIGEST,
        summary_path="src.pipez.toy/train.image.json",
        manifest_digest=BUILT_MANIFEST,
    ),
    base=BaseImage(
        address=BASE_IMAGE,
        digest=Digest("3" * 64, 300),
        layout_path="docker.debian-python3.11/base.oci",
        ref="base",
        manifest_digest="sha256:" + "ef" * 32,
        python="/usr/bin/python3.11",
    ),
    provenance_path="src.pipez.toy/train.provenance.json",
    record_path="mlbuild/lineage/records/r1.json",
    archive_digest=EMPTY_DIGEST,
    archive_path="",
)
