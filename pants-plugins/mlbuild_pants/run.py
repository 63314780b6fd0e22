"""`pants run` for ml_pipeline: train locally through the same runtime the container runs.

By default the pipeline runs on the host (`local`) the way Pants runs a `python_source`:
the current sources from the repo, on a venv of the locked requirements that is built once
per requirement set and cached, so an edit rebuilds nothing. The entry point, arguments and
environment are the packaged PEX's (`train local` → the runtime's `train`); the lineage
record pins what ran by its sources digest and its requirements digest. With
`--mlbuild-container` the pipeline's image runs under bubblewrap as SageMaker would run it.
Both lay out the same SageMaker tree in a run directory under `dist/mlbuild/runs/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.target_types import PexLayout
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.backend.python.util_rules.pex_from_targets import (
    InterpreterConstraintsRequest,
    PexFromTargetsRequest,
)
from pants.backend.python.util_rules.python_sources import PythonSourceFiles, PythonSourceFilesRequest
from pants.core.goals.run import RunRequest
from pants.core.util_rules.distdir import DistDir
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest, TransitiveTargets, TransitiveTargetsRequest

from mlbuild_pants.names import (
    DIST_LINEAGE_SUBDIR as LINEAGE_SUBDIR,  # under dist/: where `package` leaves its records
)
from mlbuild_pants.names import (
    DIST_RUNS_SUBDIR as RUNS_SUBDIR,
)
from mlbuild_pants.names import (
    LINEAGE_DIR_ENV as LINEAGE_DIR_ENV_VAR,
)
from mlbuild_pants.names import (
    LINEAGE_INBOX_ENV as LINEAGE_INBOX_ENV_VAR,
)
from mlbuild_pants.names import (
    LINEAGE_STORE_DIR as LINEAGE_STORE,  # under the build root: the store, which takes them in
)
from mlbuild_pants.names import (
    SOURCE_REVISION_ENV as SOURCE_REVISION_ENV_VAR,  # `<sha>`, `<sha>-dirty` or `unknown`
)
from mlbuild_pants.package import (
    BuiltMLPipeline,
    MLPipelineFieldSet,
    MLPipelinePex,
    MLPipelinePexRequest,
    SourceRevision,
    SourceRevisionRequest,
    requirements_only,
)
from mlbuild_pants.subsystem import MLBuildSubsystem
from mlbuild_pants.tool import MLBuildToolPex, MLBuildToolPexRequest, tool_pex_environment

HOST_RUN_ENTRY_POINT = "mlbuild.lineage.host_run:main"
# NB: one name for every pipeline's requirements venv, so pipelines with the same locked
# requirements share one.
REQUIREMENTS_PEX = "mlbuild_requirements.pex"


def lineage_environment(build_root: str, dist: str) -> dict:
    """The store and its inbox for a process started in (or pointed at) the build root."""
    return {
        LINEAGE_DIR_ENV_VAR: os.path.join(build_root, LINEAGE_STORE),
        LINEAGE_INBOX_ENV_VAR: os.path.join(build_root, dist, LINEAGE_SUBDIR),
    }


@dataclass(frozen=True)
class SourcesRunRequest:
    field_set: MLPipelineFieldSet
    common_args: Tuple[str, ...]
    dist_dir: str


@rule(desc="Preparing an ml_pipeline run from sources")
async def run_from_sources(request: SourcesRunRequest, pex_env: PexEnvironment) -> RunRequest:
    """What Pants does for a `python_source`, with the runtime's entry point and environment."""
    field_set = request.field_set
    # NB: no separate config check: nothing heavy is built before the runtime reads the
    # config, which is the first thing it does.
    prepared, transitive, config, revision = await MultiGet(
        Get(MLPipelinePex, MLPipelinePexRequest(field_set)),
        Get(TransitiveTargets, TransitiveTargetsRequest([field_set.address])),
        Get(HydratedSources, HydrateSourcesRequest(field_set.config)),
        Get(SourceRevision, SourceRevisionRequest()),
    )
    # NB: the sources reach the venv through PEX_EXTRA_SYS_PATH, which pex must keep.
    requirements_request = requirements_only(
        prepared.request, REQUIREMENTS_PEX, PexLayout.ZIPAPP, additional_args=("--no-strip-pex-env",)
    )
    pex_request, sources = await MultiGet(
        Get(PexRequest, PexFromTargetsRequest, requirements_request),
        Get(PythonSourceFiles, PythonSourceFilesRequest(transitive.closure, include_files=True)),
    )
    workspace_env = pex_env.in_workspace()
    venv, python, code = await MultiGet(
        Get(VenvPex, VenvPexRequest(pex_request, workspace_env)),
        Get(PythonExecutable, InterpreterConstraintsRequest, requirements_request.to_interpreter_constraints_request()),
        Get(Digest, MergeDigests([sources.source_files.snapshot.digest, config.snapshot.digest])),
    )
    digest = await Get(Digest, MergeDigests([venv.digest, sources.source_files.snapshot.digest]))
    # NB: the repo's source roots first, so tracebacks and errors name the files the user
    # edits; the chroot copies follow for generated sources (as Pants' own python run does).
    sys_path = [*sources.source_roots, *(os.path.join("{chroot}", root) for root in sources.source_roots)]
    return RunRequest(
        digest=digest,
        args=[
            os.path.join("{chroot}", venv.pex.argv0),
            "local",
            *request.common_args,
            # NB: what ran, for the reuse check and the run's lineage record.
            "--sources-sha256",
            code.fingerprint,
            "--requirements-sha256",
            venv.digest.fingerprint,
        ],
        extra_env={
            **workspace_env.environment_dict(python=python),
            "PEX_EXTRA_SYS_PATH": os.pathsep.join(sys_path),
            # NB: the host side of a run (reuse check, lineage record) around the runtime's
            # `local`, which is what the PEX's entry point runs; it imports from the repo's roots.
            "PEX_MODULE": HOST_RUN_ENTRY_POINT,
            # NB: the pipeline's module, config and address: what the PEX bakes into PEX-INFO.
            **prepared.request.inject_env,
            SOURCE_REVISION_ENV_VAR: revision.value,
            **lineage_environment("", request.dist_dir),
        },
        append_only_caches={**workspace_env.append_only_caches, **(venv.append_only_caches or {})},
    )


@rule(desc="Preparing a local ml_pipeline run")
async def run_ml_pipeline(field_set: MLPipelineFieldSet, dist_dir: DistDir, mlbuild: MLBuildSubsystem) -> RunRequest:
    spec_path = field_set.address.spec_path
    common = (
        "--data-dir",
        os.path.join(spec_path, field_set.sample_data.value),
        "--runs-dir",
        os.path.join(str(dist_dir.relpath), RUNS_SUBDIR),
    )
    if not (mlbuild.container or mlbuild.serve):
        return await Get(RunRequest, SourcesRunRequest(field_set, common, str(dist_dir.relpath)))
    lineage_env = lineage_environment("", str(dist_dir.relpath))
    prepared = await Get(MLPipelinePex, MLPipelinePexRequest(field_set))
    python = await Get(
        PythonExecutable, InterpreterConstraintsRequest, prepared.request.to_interpreter_constraints_request()
    )
    built, tool, pex_env = await MultiGet(
        Get(BuiltMLPipeline, MLPipelineFieldSet, field_set),
        Get(MLBuildToolPex, MLBuildToolPexRequest()),
        Get(PexEnvironment),
    )
    digest = await Get(Digest, MergeDigests([built.image.digest, tool.pex.digest]))
    if mlbuild.serve:
        return RunRequest(
            digest=digest,
            args=[
                python.path,
                os.path.join("{chroot}", tool.pex.name),
                "-m",
                "mlbuild.container_run.serve_cli",
                "--layout",
                os.path.join("{chroot}", built.image.layout_path),
                "--address",
                field_set.address.spec,
                "--runs-dir",
                os.path.join(str(dist_dir.relpath), RUNS_SUBDIR),
                *(("--model", mlbuild.model) if mlbuild.model else ()),
            ],
            extra_env={**lineage_env, **tool_pex_environment(pex_env)},
        )
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
            *(("--instance-count", str(mlbuild.instance_count)) if mlbuild.instance_count is not None else ()),
            # NB: what ran, for the run's lineage record.
            "--pex-sha256",
            built.pex_sha256,
            "--image-digest",
            built.image.manifest_digest,
            *common,
        ],
        extra_env={**lineage_env, **tool_pex_environment(pex_env)},
    )


def rules():
    return [*collect_rules(), *MLPipelineFieldSet.rules()]
