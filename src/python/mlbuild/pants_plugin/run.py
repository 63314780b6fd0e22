"""`pants run` for ml_pipeline: train locally through the same runtime the container runs.

By default the pipeline's PEX runs on the host (`local`); with `--mlbuild-container` the
pipeline's image runs under bubblewrap as SageMaker would run it. Both lay out the same
SageMaker tree in a run directory under `dist/mlbuild/runs/` and reach the same `train`.
"""

from __future__ import annotations

import os

from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.backend.python.util_rules.pex_from_targets import (
    InterpreterConstraintsRequest,
    PexFromTargetsRequest,
)
from pants.core.goals.run import RunRequest
from pants.core.util_rules.distdir import DistDir
from pants.engine.fs import Digest, DigestEntries, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from mlbuild.pants_plugin.image import sha256_of
from mlbuild.pants_plugin.package import (
    BuiltMLPipeline,
    MLPipelineFieldSet,
    MLPipelinePex,
    MLPipelinePexRequest,
)
from mlbuild.pants_plugin.subsystem import MLBuildSubsystem
from mlbuild.pants_plugin.tool import MLBuildToolPex, MLBuildToolPexRequest

RUNS_SUBDIR = "mlbuild/runs"
LINEAGE_SUBDIR = "mlbuild/lineage"  # under dist/: where `package` leaves its records
LINEAGE_STORE = ".mlbuild/lineage"  # under the build root: the store, which takes them in
# NB: names shared with mlbuild.lineage (its store root, inbox and what a run record links to).
LINEAGE_DIR_ENV_VAR = "MLBUILD_LINEAGE_DIR"
LINEAGE_INBOX_ENV_VAR = "MLBUILD_LINEAGE_INBOX"
PEX_SHA256_ENV_VAR = "MLBUILD_PEX_SHA256"
IMAGE_DIGEST_ENV_VAR = "MLBUILD_IMAGE_DIGEST"


def lineage_environment(build_root: str, dist: str) -> dict:
    """The store and its inbox for a process started in (or pointed at) the build root."""
    return {
        LINEAGE_DIR_ENV_VAR: os.path.join(build_root, LINEAGE_STORE),
        LINEAGE_INBOX_ENV_VAR: os.path.join(build_root, dist, LINEAGE_SUBDIR),
    }


@rule(desc="Preparing a local ml_pipeline run")
async def run_ml_pipeline(field_set: MLPipelineFieldSet, dist_dir: DistDir, mlbuild: MLBuildSubsystem) -> RunRequest:
    prepared = await Get(MLPipelinePex, MLPipelinePexRequest(field_set))
    python = await Get(
        PythonExecutable, InterpreterConstraintsRequest, prepared.request.to_interpreter_constraints_request()
    )
    spec_path = field_set.address.spec_path
    common = [
        "--data-dir",
        os.path.join(spec_path, field_set.sample_data.value),
        "--runs-dir",
        os.path.join(str(dist_dir.relpath), RUNS_SUBDIR),
    ]
    lineage_env = lineage_environment("", str(dist_dir.relpath))
    if not mlbuild.container:
        pex = await Get(Pex, PexFromTargetsRequest, prepared.request)
        pex_path = prepared.request.output_filename
        pex_sha256 = sha256_of(await Get(DigestEntries, Digest, pex.digest), pex_path)
        return RunRequest(
            digest=pex.digest,
            args=[python.path, os.path.join("{chroot}", pex_path), "local", *common],
            extra_env={**lineage_env, PEX_SHA256_ENV_VAR: pex_sha256},
        )
    built, tool = await MultiGet(
        Get(BuiltMLPipeline, MLPipelineFieldSet, field_set),
        Get(MLBuildToolPex, MLBuildToolPexRequest()),
    )
    digest = await Get(Digest, MergeDigests([built.image.digest, tool.pex.digest]))
    return RunRequest(
        digest=digest,
        args=[
            python.path,
            os.path.join("{chroot}", tool.pex.name),
            "-m",
            "mlbuild.container_run",
            "--layout",
            os.path.join("{chroot}", built.image.layout_path),
            "--config",
            os.path.join(spec_path, field_set.config.value),
            "--address",
            field_set.address.spec,
            *common,
        ],
        extra_env={**lineage_env, PEX_SHA256_ENV_VAR: built.pex_sha256, IMAGE_DIGEST_ENV_VAR: built.image.manifest_digest},
    )


def rules():
    return [*collect_rules(), *MLPipelineFieldSet.rules()]
