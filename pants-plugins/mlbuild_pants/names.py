"""Names the plugin shares with mlbuild's plain modules, which it may not import.

NB: the plugin lives in its own source root so that pantsd restarts only when the plugin
changes; importing `mlbuild.*` would put the whole library on Pants' path again. Each name
here is checked against its owner in `names_test.py`.
"""

from typing import Tuple

# = mlbuild.sagemaker.env.FORWARDED_ENV_VARS: what a SageMaker call needs from the caller's env.
FORWARDED_ENV_VARS: Tuple[str, ...] = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_STS",
    "HOME",
)
