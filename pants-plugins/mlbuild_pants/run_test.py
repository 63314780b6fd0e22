"""`pants run` for ml_pipeline: the current sources on a cached requirements venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import Tuple

from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.backend.python.util_rules.pex_from_targets import InterpreterConstraintsRequest, PexFromTargetsRequest
from pants.core.goals.run import RunRequest
from pants.core.util_rules.distdir import DistDir
from pants.engine.fs import Digest, MergeDigests
from pants.testutil.rule_runner import MockGet, RuleRunner, run_rule_with_mocks

from mlbuild_pants.conftest import (
    BUILT_MANIFEST,
    BUILT_PEX_SHA256,
    BUILT_TOY,
    TOY,
    flag,
    pipeline_field_set,
    unexpected,
)
from mlbuild_pants.package import BuiltMLPipeline, MLPipelineFieldSet, MLPipelinePex, MLPipelinePexRequest
from mlbuild_pants.run import SourcesRunRequest, run_ml_pipeline
from mlbuild_pants.target_types import MLPipelineTarget
from mlbuild_pants.tool import MLBuildToolPex, MLBuildToolPexRequest

TOOL_DIGEST = Digest("4" * 64, 400)


def test_run_trains_the_current_sources_on_a_cached_requirements_venv(rule_runner: RuleRunner) -> None:
    request = rule_runner.request(RunRequest, [pipeline_field_set(rule_runner)])
    assert request.args[0].startswith("{chroot}/") and "mlbuild_requirements.pex" in request.args[0]
    assert request.args[1:6] == ("local", "--data-dir", "src/pipez/toy/sample", "--runs-dir", "dist/mlbuild/runs")
    pins = dict(zip(request.args[6::2], request.args[7::2]))
    assert list(pins) == ["--sources-sha256", "--requirements-sha256"] and all(len(v) == 64 for v in pins.values())
    env = request.extra_env
    # The repo's source root first (errors name the files the user edits), then the chroot's copy.
    assert env["PEX_EXTRA_SYS_PATH"] == "src:{chroot}/src"
    assert (env["MLBUILD_PIPELINE_MODULE"], env["MLBUILD_PIPELINE_CONFIG"], env["MLBUILD_PIPELINE_ADDRESS"]) == (
        "pipez.toy.model",
        "toy.yaml",
        "src/pipez/toy:train",
    )
    # Relative to the build root, where `pants run` starts the process: the store and the inbox
    # `package` also writes to.
    assert (env["MLBUILD_LINEAGE_DIR"], env["MLBUILD_LINEAGE_INBOX"]) == (".mlbuild/lineage", "dist/mlbuild/lineage")
    # Run it as `pants run` would: the host side (PEX_MODULE) starts, then the runtime, which
    # reads the module, address and config.
    chroot = os.path.join(rule_runner.build_root, "chroot")
    rule_runner.write_digest(request.digest, path_prefix="chroot")
    argv = [a.replace("{chroot}", chroot) for a in request.args]
    run_env = {k: v.replace("{chroot}", chroot) for k, v in env.items()}
    out = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=rule_runner.build_root)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.split()
    assert printed[:3] == ["host-run", "pipez.toy.model", "src/pipez/toy:train"]
    # The config packaged beside the module, then the run's own arguments.
    assert printed[3:8] == ["hyperparameters:", "{depth:", "3}", "local", "--data-dir"]


def test_an_edit_changes_the_sources_pin_and_not_the_requirements_venv(rule_runner: RuleRunner) -> None:
    def pins() -> dict:
        args = rule_runner.request(RunRequest, [pipeline_field_set(rule_runner)]).args
        return dict(zip(args[6::2], args[7::2]))

    before = pins()
    rule_runner.write_files({"src/pipez/toy/helpers.py": "X = 1\n"})
    after = pins()
    assert after["--sources-sha256"] != before["--sources-sha256"]
    assert after["--requirements-sha256"] == before["--requirements-sha256"]


def run_with_mocks(**options) -> Tuple[RunRequest, list]:
    """`pants run --mlbuild-container`/`--mlbuild-serve`: the packaged image, run by the tool."""
    merged: list = []

    def merge(request: MergeDigests) -> Digest:
        merged.append(request)
        return Digest("9" * 64, 1)

    target = MLPipelineTarget({"pipeline": "model.py", "config": "toy.yaml", "sample_data": "sample"}, TOY)
    mlbuild = SimpleNamespace(**{"container": False, "serve": False, "instance_count": None, "model": None, **options})
    pex_request = PexFromTargetsRequest([TOY], output_filename="src.pipez.toy/train.pex", internal_only=False)
    request = run_rule_with_mocks(
        run_ml_pipeline,
        rule_args=[MLPipelineFieldSet.create(target), DistDir(Path("dist")), mlbuild],
        mock_gets=[
            MockGet(RunRequest, (SourcesRunRequest,), unexpected),
            MockGet(MLPipelinePex, (MLPipelinePexRequest,), lambda _: MLPipelinePex(pex_request)),
            MockGet(
                PythonExecutable, (InterpreterConstraintsRequest,), lambda _: PythonExecutable("/usr/bin/python3.11")
            ),
            MockGet(BuiltMLPipeline, (MLPipelineFieldSet,), lambda _: BUILT_TOY),
            MockGet(
                MLBuildToolPex,
                (MLBuildToolPexRequest,),
                lambda _: MLBuildToolPex(Pex(TOOL_DIGEST, "mlbuild_tool.pex", None)),
            ),
            MockGet(PexEnvironment, (), lambda: SimpleNamespace(named_caches_dir=PurePath("/caches"))),
            MockGet(Digest, (MergeDigests,), merge),
        ],
    )
    return request, merged


def test_a_container_run_runs_the_packaged_image_and_records_what_it_was() -> None:
    request, merged = run_with_mocks(container=True, instance_count=2)
    assert merged == [MergeDigests([BUILT_TOY.image.digest, TOOL_DIGEST])]
    args = request.args
    assert list(args[:4]) == ["/usr/bin/python3.11", "{chroot}/mlbuild_tool.pex", "-m", "mlbuild.container_run"]
    assert flag(args, "--layout") == "{chroot}/src.pipez.toy/train.oci"
    # Relative to the build root, where `pants run` starts it: the repo's config and sample data.
    assert flag(args, "--config") == "src/pipez/toy/toy.yaml" and flag(args, "--data-dir") == "src/pipez/toy/sample"
    assert flag(args, "--instance-count") == "2"
    assert (flag(args, "--pex-sha256"), flag(args, "--image-digest")) == (BUILT_PEX_SHA256, BUILT_MANIFEST)
    assert flag(args, "--runs-dir") == "dist/mlbuild/runs"
    assert request.extra_env["MLBUILD_LINEAGE_INBOX"] == "dist/mlbuild/lineage"
    # The tool PEX unpacks into a cache of its own, never the account's ~/.pex.
    assert request.extra_env["PEX_ROOT"].startswith("/caches/")


def test_a_serve_run_serves_the_packaged_image_with_the_model_asked_for() -> None:
    request, _ = run_with_mocks(serve=True, model="job-1")
    args = request.args
    assert list(args[2:4]) == ["-m", "mlbuild.container_run.serve_cli"]
    assert flag(args, "--layout") == "{chroot}/src.pipez.toy/train.oci" and flag(args, "--model") == "job-1"
    assert "--model" not in run_with_mocks(serve=True)[0].args
