"""Amazon ECR: registry credentials from boto3, and creating the repository if missing.

Credentials come from boto3's default chain (env, profile, SSO, instance role);
`GetAuthorizationToken` returns base64 'AWS:<password>', valid 12 hours, used as Basic
auth. boto3 itself honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECR (botocore >= 1.31),
which is how tests point it at moto. boto3 is imported lazily: only ECR pushes need it.
https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import AuthError, RegistryPlatformError, RegistryUserError
from mlbuild.registry.reference import Reference

_AUTH_CODES = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
}


@dataclass(frozen=True)
class EcrRepositorySettings:
    """Used only when the repository does not exist yet; an existing one is left as it is."""

    immutable_tags: bool = True
    scan_on_push: bool = False


def _ecr_host(ref: Reference) -> tuple[str, str]:
    if ref.ecr is None:
        raise RegistryUserError(
            f"{ref.registry}: not an ECR registry host ('<account>.dkr.ecr.<region>.amazonaws.com')."
        )
    return ref.ecr


def client_for(ref: Reference, session: Any = None) -> Any:
    _, region = _ecr_host(ref)
    try:
        import boto3
    except ImportError as e:
        raise RegistryPlatformError(
            "pushing to ECR needs boto3; add it to the environment (it is in mlbuild's lockfile)."
        ) from e
    return (session or boto3.session.Session()).client("ecr", region_name=region)


def _call(ref: Reference, what: str, fn: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = f"ECR {what} for {ref.repo_uri}"
    try:
        return fn(**kwargs)
    except NoCredentialsError as e:
        raise AuthError(
            f"{where}: no AWS credentials found. Fix: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a role."
        ) from e
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in _AUTH_CODES:
            raise AuthError(
                f"{where}: {code}: {e}. Fix: grant ecr:{what} (and push permissions) to these AWS credentials."
            ) from e
        raise
    except BotoCoreError as e:
        raise RegistryPlatformError(f"{where}: {e}") from e


def authorization(ref: Reference, client: Any = None) -> Credentials:
    account, _ = _ecr_host(ref)
    client = client or client_for(ref)
    data = _call(ref, "GetAuthorizationToken", client.get_authorization_token, registryIds=[account])[
        "authorizationData"
    ]
    if not data:
        raise RegistryPlatformError(f"ECR GetAuthorizationToken for {ref.registry}: no authorizationData in the reply.")
    user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    return Credentials(user, password)


def ensure_repository(
    ref: Reference, settings: EcrRepositorySettings = EcrRepositorySettings(), client: Any = None
) -> bool:
    """Create `ref.repository` if missing; True if it was created."""
    account, _ = _ecr_host(ref)
    client = client or client_for(ref)
    try:
        _call(
            ref,
            "DescribeRepositories",
            client.describe_repositories,
            registryId=account,
            repositoryNames=[ref.repository],
        )
        return False
    except client.exceptions.RepositoryNotFoundException:
        pass
    try:
        _call(
            ref,
            "CreateRepository",
            client.create_repository,
            registryId=account,
            repositoryName=ref.repository,
            imageTagMutability="IMMUTABLE" if settings.immutable_tags else "MUTABLE",
            imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
        )
    except client.exceptions.RepositoryAlreadyExistsException:  # NB: a parallel push created it first
        return False
    return True
