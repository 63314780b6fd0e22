"""Which backend a publish uses: `local` (offline) or `aws` (ECR + SageMaker)."""

from __future__ import annotations

from typing import Callable, Mapping, Optional

from mlbuild.names import aws_region
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import UserError


def aws_credentials_available() -> bool:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return False
    try:
        return boto3.session.Session().get_credentials() is not None
    except BotoCoreError as e:
        # NB: e.g. AWS_PROFILE names a profile ~/.aws/config lacks: say so, don't guess "local".
        raise UserError(f"AWS is configured but unusable: {e}. Fix: correct or unset AWS_PROFILE/AWS_* variables, or pass --mlbuild-publish-backend=local.") from e


def choose_backend(
    config: PipelineConfig,
    requested: Optional[str],
    environ: Mapping[str, str],
    has_credentials: Callable[[], bool] = aws_credentials_available,
) -> str:
    """The command line wins, then the config's `sagemaker.backend`; `auto` means aws only
    when AWS is configured (credentials and a region) and the config names a role and an
    output path, so a fresh clone publishes locally with nothing set up."""
    choice = requested or config.sagemaker.backend
    if choice != "auto":
        return choice
    region = aws_region(config.sagemaker.region, environ)
    ready = bool(region and config.sagemaker.role and config.sagemaker.output_path)
    return "aws" if ready and has_credentials() else "local"

