"""`pants run` for ml_pipeline: train locally through the same runtime the container runs."""

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
from pants.engine.rules import Get, collect_rules, rule

from mlbuild.pants_plugin.package import MLPipelineFieldSet, MLPipelinePex, MLPipelinePexRequest

RUNS_SUBDIR = "mlbuild/runs"


@rule(desc="Preparing a local ml_pipeline run")
async def run_ml_pipeline(field_set: MLPipelineFieldSet, dist_dir: DistDir) -> RunRequest:
    prepared = await Get(MLPipelinePex, MLPipelinePexRequest(field_set))
    pex = await Get(Pex, PexFromTargetsRequest, prepared.request)
    python = await Get(
        PythonExecutable, InterpreterConstraintsRequest, prepared.request.to_interpreter_constraints_request()
    )
    data_dir = os.path.join(field_set.address.spec_path, field_set.sample_data.value)
    return RunRequest(
        digest=pex.digest,
        args=[
            python.path,
            os.path.join("{chroot}", prepared.request.output_filename),
            "local",
            "--data-dir",
            data_dir,
            "--runs-dir",
            os.path.join(str(dist_dir.relpath), RUNS_SUBDIR),
        ],
    )


def rules():
    return [*collect_rules(), *MLPipelineFieldSet.rules()]
