"""`pants publish` for ml_pipeline: pushes and the job, from the image `package` built.

NB: the rule is run with its requests answered by mocks: publishing needs the tool PEX, and
its processes are only described here, never run.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import List, Optional

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.backend.python.util_rules.pex import Pex, PexProcess
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact
from pants.core.util_rules.distdir import DistDir
from pants.engine.addresses import Address
from pants.engine.env_vars import CompleteEnvironmentVars, EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestSubset
from pants.engine.process import Process
from pants.engine.target import AllTargets, WrappedTarget, WrappedTargetRequest
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from mlbuild_pants.conftest import BUILT_MANIFEST as MANIFEST
from mlbuild_pants.conftest import BUILT_PEX_SHA256 as PEX_SHA256
from mlbuild_pants.conftest import TOY, flag
from mlbuild_pants.package import MLPipelineImageArtifact, SourceRevision, SourceRevisionRequest
from mlbuild_pants.publish import MLPipelinePublishFieldSet, PublishMLPipelineRequest, publish_ml_pipeline
from mlbuild_pants.target_types import MLPipelineTarget
from mlbuild_pants.tool import MLBuildToolPex, MLBuildToolPexRequest

REVISION = "0123456789abcdef0123456789abcdef01234567"
PACKAGE_DIGEST = Digest("1" * 64, 100)
LAYOUT_DIGEST = Digest("2" * 64, 50)
IMAGE = MLPipelineImageArtifact("src.pipez.toy/train.oci", manifest_digest=MANIFEST, pex_sha256=PEX_SHA256)
PACKAGES = (
    BuiltPackage(
        PACKAGE_DIGEST,
        (BuiltPackageArtifact("src.pipez.toy/train.pex"), IMAGE, BuiltPackageArtifact("src.pipez.toy/train.oci.tar")),
    ),
)


def mlbuild(**options) -> SimpleNamespace:
    defaults = dict(
        registries={"ci": {"address": "127.0.0.1:5000"}},
        default_repository="{pipeline}",
        ecr_registry=None,
        publish_backend="local",
        local_registry=None,
        wait=True,
        force=False,
    )
    return SimpleNamespace(**{**defaults, **options})


# NB: the user's whole environment; the mock hands the rule only the names it asks for, as Pants does.
HOST_ENV = CompleteEnvironmentVars(
    {
        "AWS_PROFILE": "dev",
        "AWS_REGION": "eu-west-1",
        "PATH": "/bin",
        "HOME": "/home/me",
        "EDITOR": "vi",
        "GITHUB_TOKEN": "secret",
    }
)


def environment_vars(request: EnvironmentVarsRequest) -> EnvironmentVars:
    allowed = None if request.allowed is None else tuple(request.allowed)
    return EnvironmentVars(dict(HOST_ENV.get_subset(tuple(request.requested), allowed=allowed)).items())


PYTHON_SETUP = SimpleNamespace(
    enable_resolves=True, default_resolve="python-default", resolves={"python-default": "d.lock", "torch": "t.lock"}
)


def publish(
    fields: dict,
    packages=PACKAGES,
    options: Optional[SimpleNamespace] = None,
    subsets: Optional[List] = None,
    others: tuple = (),
):
    target = MLPipelineTarget({"pipeline": "model.py", "config": "toy.yaml", "sample_data": "sample", **fields}, TOY)
    request = PublishMLPipelineRequest(MLPipelinePublishFieldSet.create(target), packages)

    def subset(s: DigestSubset) -> Digest:
        (subsets if subsets is not None else []).append(s)
        return LAYOUT_DIGEST

    def process(p: PexProcess) -> Process:
        return Process(
            argv=("tool.pex", *p.argv),
            description=p.description,
            input_digest=p.input_digest or EMPTY_DIGEST,
            env=p.extra_env,
        )

    return run_rule_with_mocks(
        publish_ml_pipeline,
        rule_args=[request, options or mlbuild(), SimpleNamespace(path="/repo"), DistDir(Path("dist")), PYTHON_SETUP],
        mock_gets=[
            MockGet(AllTargets, (), lambda: AllTargets([target, *others])),
            MockGet(WrappedTarget, (WrappedTargetRequest,), lambda _: WrappedTarget(target)),
            MockGet(Digest, (DigestSubset,), subset),
            MockGet(
                MLBuildToolPex, (MLBuildToolPexRequest,), lambda _: MLBuildToolPex(Pex(EMPTY_DIGEST, "tool.pex", None))
            ),
            MockGet(SourceRevision, (SourceRevisionRequest,), lambda _: SourceRevision(REVISION)),
            MockGet(EnvironmentVars, (EnvironmentVarsRequest,), environment_vars),
            MockGet(PexEnvironment, (), lambda: SimpleNamespace(named_caches_dir=PurePath("/caches"))),
            MockGet(Process, (PexProcess,), process),
        ],
    )


def test_a_push_mounts_the_big_layers_from_the_repositories_of_pipelines_of_the_same_resolve() -> None:
    sibling = MLPipelineTarget({"config": "c.yaml"}, Address("src/pipez/other", target_name="train"))
    torch = MLPipelineTarget({"config": "c.yaml", "resolve": "torch"}, Address("src/pipez/deep", target_name="train"))
    quiet = MLPipelineTarget({"config": "c.yaml", "skip_push": True}, Address("src/pipez/quiet", target_name="train"))
    push, _ = publish({"registries": ["@ci"]}, others=(sibling, torch, quiet))
    argv = list(push.process.process.argv)
    # Its sibling's repository only: another resolve shares no layers; a skip_push pipeline pushes none.
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--mount-from"] == ["other-train"]


def test_publish_pushes_then_submits_the_image_package_built() -> None:
    subsets: List[DigestSubset] = []
    push, job = publish({"registries": ["@ci"], "image_tags": ["{git_short_sha}"]}, subsets=subsets)
    # Only the image's layout goes in, taken from the package's digest (nothing is built again).
    (subset,) = subsets
    assert subset.digest == PACKAGE_DIGEST and subset.globs.globs == ("src.pipez.toy/train.oci/**",)
    assert push.process.process.input_digest == job.process.process.input_digest == LAYOUT_DIGEST
    assert push.names == (
        f"127.0.0.1:5000/toy-train@{MANIFEST}",
        "127.0.0.1:5000/toy-train:sha256-abababababababab",
        "127.0.0.1:5000/toy-train:0123456",
    )
    assert list(push.process.process.argv[1:5]) == ["-m", "mlbuild.registry", "push", "--layout"]
    assert flag(push.process.process.argv, "--to") == "127.0.0.1:5000/toy-train"

    argv = job.process.process.argv
    assert list(argv[1:3]) == ["-m", "mlbuild.publish"]
    # What ran is what `package` built: its PEX sha and manifest digest, from the artifact.
    assert (flag(argv, "--pex-sha256"), flag(argv, "--image-digest")) == (PEX_SHA256, MANIFEST)
    assert (flag(argv, "--layout"), flag(argv, "--ref-name")) == ("src.pipez.toy/train.oci", "train")
    assert flag(argv, "--config") == "/repo/src/pipez/toy/toy.yaml"
    assert flag(argv, "--data-dir") == "/repo/src/pipez/toy/sample"
    assert flag(argv, "--git-sha") == REVISION
    assert flag(argv, "--report-dir") == "/repo/dist/mlbuild/publish/src.pipez.toy/train"
    assert flag(argv, "--backend") == "local" and "--wait" in argv and "--force" not in argv
    env = job.process.process.env
    # InteractiveProcess starts from an empty environment: what boto3 and the tools need is forwarded.
    assert (env["AWS_PROFILE"], env["AWS_REGION"], env["PATH"]) == ("dev", "eu-west-1", "/bin")
    assert env["HOME"] == "/home/me" and "EDITOR" not in env and "GITHUB_TOKEN" not in env  # only what it forwards
    assert (env["MLBUILD_LINEAGE_DIR"], env["MLBUILD_LINEAGE_INBOX"]) == (
        "/repo/.mlbuild/lineage",
        "/repo/dist/mlbuild/lineage",
    )
    assert env["PEX_ROOT"].startswith("/caches/")
    assert job.get_output_data()["report_json"] == "dist/mlbuild/publish/src.pipez.toy/train/report.json"
    assert job.get_output_data()["pex_sha256"] == PEX_SHA256


def test_skip_push_pushes_nothing_and_submits_no_job() -> None:
    (skipped,) = publish({"skip_push": True}, options=SimpleNamespace())
    assert skipped.process is None
    assert skipped.names == (f"src.pipez.toy/train.oci@{MANIFEST}",)


def test_packages_without_an_ml_pipeline_image_are_an_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"`pants publish src/pipez/toy:train`: expected one ml_pipeline image among the packages, found 0",
    ):
        publish({}, packages=(BuiltPackage(PACKAGE_DIGEST, (BuiltPackageArtifact("src.pipez.toy/train.pex"),)),))


def test_an_unknown_registry_alias_names_the_target() -> None:
    with pytest.raises(ValueError, match=r"^`pants publish src/pipez/toy:train`: .*@nope"):
        publish({"registries": ["@nope"]})
