"""The AWS publish backend: push the image to ECR, then submit the SageMaker training job.

The ECR registry is the training role's account in the job's region; the repository is the
config's `sagemaker.image_repository` (created if missing, with immutable tags). The job
request, idempotency, waiting and the report are mlbuild.sagemaker's: this module only
hands it the pushed image, pinned by digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from mlbuild.publish.local import layout_digest
from mlbuild.registry.push import push_layout
from mlbuild.runtime.hyperparameters import parse_assignments, resolve
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker import cli as sagemaker_cli
from mlbuild.sagemaker.job_name import pipeline_name_from_address
from mlbuild.sagemaker.job_request import build_request


def ecr_repository(config: PipelineConfig, address: str, environ: Mapping[str, str]) -> str:
    sm = config.sagemaker
    region = sm.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not sm.role or not region:
        raise UserError(
            f"{config.source}: `sagemaker.role` and `sagemaker.region` (or AWS_REGION) are needed to find the "
            "ECR registry. Fix: set them, or publish with the local backend (`sagemaker.backend: local`)."
        )
    account = sm.role.split(":")[4]
    repository = sm.image_repository or pipeline_name_from_address(address)
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"


def publish_aws(
    *,
    layout_dir: Path,
    ref: Optional[str],
    config: PipelineConfig,
    config_path: Path,
    address: str,
    git_sha: str,
    pex_sha256: str,
    assignments: Sequence[str],
    report_json: Path,
    report_md: Path,
    environ: Mapping[str, str],
    wait: bool = False,
    force: bool = False,
    previous_metrics: Optional[Path] = None,
) -> int:
    # NB: validate the whole job request before pushing anything (submit re-validates).
    argv: List[str] = [
        "submit", "--config", str(config_path), "--pipeline-address", address,
        "--git-sha", git_sha, "--pex-sha256", pex_sha256,
        "--report-json", str(report_json), "--report-md", str(report_md),
    ]
    for metric in config.metrics:
        argv += ["--metric", metric]
    if wait:
        argv.append("--wait")
    if force:
        argv.append("--force")
    if previous_metrics:
        argv += ["--previous-metrics", str(previous_metrics)]
    destination = ecr_repository(config, address, environ)
    build_request(
        config,
        image_uri=f"{destination}@{layout_digest(layout_dir, ref)}",
        hyperparameter_values=resolve(config, parse_assignments(assignments), "command line"),
        pipeline_address=address,
        git_sha=git_sha,
        pex_sha256=pex_sha256,
        metric_names=config.metrics,
    )
    result = push_layout(layout_dir, ref, destination, create_repository=True)
    return sagemaker_cli.main([*argv, "--image-uri", result.image_uri, *assignments])
