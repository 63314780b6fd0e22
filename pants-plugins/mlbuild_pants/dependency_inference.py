"""Infer an ml_pipeline's dependencies: its pipeline module, the mlbuild runtime, `serve`
and its base image.

NB: the `base_image` target is a dependency like any other, so `pants dependents` and
`--changed-since` see every pipeline a base image (or its Debian lock) change rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.dependency_inference.module_mapper import (
    PythonModuleOwners,
    PythonModuleOwnersRequest,
)
from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import (
    PythonResolveField,
    ResolvedPexEntryPoint,
    ResolvePexEntryPointRequest,
)
from pants.engine.addresses import Address, AddressInput
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    ExplicitlyProvidedDependencies,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
)
from pants.engine.unions import UnionRule

from mlbuild_pants.package import RUNTIME_ENTRY_POINT, SERVING_ENTRY_POINT
from mlbuild_pants.target_types import (
    MLPipelineBaseImageField,
    MLPipelineDependenciesField,
    MLPipelineModuleField,
    base_image_address_input,
)


@dataclass(frozen=True)
class MLPipelineInferenceFieldSet(FieldSet):
    required_fields = (MLPipelineDependenciesField, MLPipelineModuleField, PythonResolveField)

    dependencies: MLPipelineDependenciesField
    pipeline: MLPipelineModuleField
    resolve: PythonResolveField
    base_image: MLPipelineBaseImageField


class InferMLPipelineDependencies(InferDependenciesRequest):
    infer_from = MLPipelineInferenceFieldSet


@rule(desc="Inferring ml_pipeline dependencies")
async def infer_ml_pipeline_dependencies(
    request: InferMLPipelineDependencies, python_setup: PythonSetup
) -> InferredDependencies:
    field_set = request.field_set
    explicit, entry_point, base_image = await MultiGet(
        Get(ExplicitlyProvidedDependencies, DependenciesRequest(field_set.dependencies)),
        Get(ResolvedPexEntryPoint, ResolvePexEntryPointRequest(field_set.pipeline)),
        Get(Address, AddressInput, base_image_address_input(field_set.address, field_set.base_image)),
    )
    resolve = field_set.resolve.normalized_value(python_setup)
    modules = [RUNTIME_ENTRY_POINT.module, SERVING_ENTRY_POINT.module]
    if entry_point.val is not None:
        modules.append(entry_point.val.module)
    all_owners = await MultiGet(
        Get(PythonModuleOwners, PythonModuleOwnersRequest(module, resolve=resolve)) for module in modules
    )
    inferred: set[Address] = {base_image}
    for module, owners in zip(modules, all_owners):
        explicit.maybe_warn_of_ambiguous_dependency_inference(
            owners.ambiguous,
            field_set.address,
            import_reference="module",
            context=f"The ml_pipeline {field_set.address} needs `{module}`",
        )
        maybe_disambiguated = explicit.disambiguated(owners.ambiguous)
        inferred.update(owners.unambiguous)
        if maybe_disambiguated:
            inferred.add(maybe_disambiguated)
    return InferredDependencies(sorted(inferred))


def rules():
    return [*collect_rules(), UnionRule(InferDependenciesRequest, InferMLPipelineDependencies)]
