"""`pants tailor`: add an ml_pipeline target to a folder with a pipeline config but none."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.core.goals.tailor import (
    PutativeTarget,
    PutativeTargets,
    PutativeTargetsRequest,
)
from pants.engine.fs import PathGlobs, Paths
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import AllTargets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from mlbuild_pants.target_types import MLPipelineConfigField, MLPipelineTarget

CONFIG_NAMES = ("pipeline.yaml", "pipeline.yml")


@dataclass(frozen=True)
class PutativeMLPipelineTargetsRequest(PutativeTargetsRequest):
    pass


@rule(level=LogLevel.DEBUG, desc="Determine candidate ml_pipeline targets to create")
async def find_putative_ml_pipelines(
    request: PutativeMLPipelineTargetsRequest, all_targets: AllTargets
) -> PutativeTargets:
    # NB: only an ml_pipeline's `config` makes a pipeline config "owned". Other targets may
    # own the file too (a `files` target globbing `src/**` for tests, a `resources` target),
    # and Pants' AllOwnedSources would then hide the new pipeline from tailor.
    configs = await Get(Paths, PathGlobs, request.path_globs(*CONFIG_NAMES))
    pipeline_configs = {
        os.path.join(t.address.spec_path, t[MLPipelineConfigField].value)
        for t in all_targets
        if t.has_field(MLPipelineConfigField) and t[MLPipelineConfigField].value
    }
    putative = []
    for config in sorted(set(configs.files) - pipeline_configs):
        dirname, filename = os.path.split(config)
        kwargs = {} if filename == MLPipelineConfigField.default else {"config": filename}
        # NB: no owned sources: the config is a field, not a `sources` glob. Otherwise Pants'
        # tailor sees the `files` target that also globs the config as a conflict and writes a
        # `sources=[...]` kwarg that ml_pipeline does not have (found by the first-hour e2e test).
        putative.append(
            PutativeTarget(
                dirname, "train", MLPipelineTarget.alias, triggering_sources=[filename], owned_sources=(), kwargs=kwargs
            )
        )
    return PutativeTargets(putative)


def rules():
    return [*collect_rules(), UnionRule(PutativeTargetsRequest, PutativeMLPipelineTargetsRequest)]
