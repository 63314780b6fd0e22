"""`pants package` for ml_pipeline: the pipeline's PEX, with the runtime as its entry point."""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.target_types import (
    EntryPoint,
    InterpreterConstraintsField,
    PythonResolveField,
    ResolvedPexEntryPoint,
    ResolvePexEntryPointRequest,
)
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import (
    BuiltPackage,
    BuiltPackageArtifact,
    OutputPathField,
    PackageFieldSet,
)
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior
from pants.core.util_rules.source_files import SourceFiles
from pants.core.util_rules.stripped_source_files import StrippedSourceFiles
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict

from mlbuild.pants_plugin.target_types import (
    MLPipelineConfigField,
    MLPipelineModuleField,
    MLPipelineSampleDataField,
)

# NB: the runtime's command line is the PEX's entry point; it finds the pipeline through
# these variables, which pex bakes into PEX-INFO (`--inject-env`), so the container's
# `train` needs no arguments. Names match mlbuild.runtime.pipeline (which Pants can't import).
RUNTIME_ENTRY_POINT = EntryPoint("mlbuild.runtime.cli", "main")
MODULE_ENV_VAR = "MLBUILD_PIPELINE_MODULE"
CONFIG_ENV_VAR = "MLBUILD_PIPELINE_CONFIG"
ADDRESS_ENV_VAR = "MLBUILD_PIPELINE_ADDRESS"


@dataclass(frozen=True)
class MLPipelineFieldSet(PackageFieldSet, RunFieldSet):
    # NB: a local run reads sample data from the repo and writes under dist/, so it can't be
    # sandboxed.
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED
    required_fields = (MLPipelineModuleField, MLPipelineConfigField)

    pipeline: MLPipelineModuleField
    config: MLPipelineConfigField
    sample_data: MLPipelineSampleDataField
    resolve: PythonResolveField
    interpreter_constraints: InterpreterConstraintsField
    output_path: OutputPathField


@dataclass(frozen=True)
class MLPipelinePexRequest:
    field_set: MLPipelineFieldSet


@dataclass(frozen=True)
class MLPipelinePex:
    """The PexFromTargetsRequest for a pipeline (run needs its interpreter constraints)."""

    request: PexFromTargetsRequest


@rule(desc="Preparing an ml_pipeline PEX")
async def ml_pipeline_pex_request(request: MLPipelinePexRequest) -> MLPipelinePex:
    field_set = request.field_set
    entry_point, config_sources = await MultiGet(
        Get(ResolvedPexEntryPoint, ResolvePexEntryPointRequest(field_set.pipeline)),
        Get(HydratedSources, HydrateSourcesRequest(field_set.config)),
    )
    # NB: the config travels inside the PEX as a resource of the pipeline's package.
    stripped_config = await Get(StrippedSourceFiles, SourceFiles(config_sources.snapshot, ()))
    assert entry_point.val is not None
    return MLPipelinePex(
        PexFromTargetsRequest(
            addresses=[field_set.address],
            internal_only=False,
            main=RUNTIME_ENTRY_POINT,
            inject_env=FrozenDict(
                {
                    MODULE_ENV_VAR: entry_point.val.module,
                    CONFIG_ENV_VAR: field_set.config.value,
                    ADDRESS_ENV_VAR: field_set.address.spec,
                }
            ),
            output_filename=field_set.output_path.value_or_default(file_ending="pex"),
            additional_sources=stripped_config.snapshot.digest,
            include_local_dists=True,
            description=f"Building the PEX of ml_pipeline {field_set.address}",
        )
    )


@rule(desc="Packaging an ml_pipeline")
async def package_ml_pipeline(field_set: MLPipelineFieldSet) -> BuiltPackage:
    prepared = await Get(MLPipelinePex, MLPipelinePexRequest(field_set))
    pex = await Get(Pex, PexFromTargetsRequest, prepared.request)
    return BuiltPackage(pex.digest, (BuiltPackageArtifact(prepared.request.output_filename),))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, MLPipelineFieldSet)]
