"""The environment a SageMaker submission needs, for callers that clear it.

AWS credentials come from boto3's default chain (env vars, then AWS_PROFILE /
~/.aws config, then container/instance metadata). Pants runs the publish step as an
`InteractiveProcess`, which starts from an *empty* environment, so the Pants rule must
forward these variables explicitly (e.g. `InteractiveProcess(..., env=forwarded_env(...))`
with values from `Get(EnvironmentVars, EnvironmentVarsRequest(FORWARDED_ENV_VARS))`),
and `HOME` too if the ~/.aws files are to be found.

NB: this module imports nothing but the standard library and must stay importable on
CPython 3.9: the Pants plugin imports it.
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

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
    # NB: boto3 >= 1.28 also reads one endpoint per service, AWS_ENDPOINT_URL_<SERVICE ID>
    # (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). Pants asks
    # for env vars by exact name, so the services mlbuild calls are listed; `forwarded_env`
    # also passes any other AWS_ENDPOINT_URL_* it sees.
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_STS",
    # NB: not AWS, but AWS_PROFILE is useless without it: ~/.aws/config lives under HOME.
    "HOME",
)

FORWARDED_ENV_VAR_PREFIXES: Tuple[str, ...] = ("AWS_ENDPOINT_URL_",)


def forwarded_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """The subset of `environ` a submission needs, in a stable order."""
    names = set(FORWARDED_ENV_VARS) | {n for n in environ if n.startswith(FORWARDED_ENV_VAR_PREFIXES)}
    return {name: environ[name] for name in sorted(names) if name in environ}
