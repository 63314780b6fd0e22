"""Connecting to a repository: choose credentials, build the authenticator and transport.

Credentials, first found wins: explicit `credentials`; for ECR hosts, boto3's
GetAuthorizationToken; else Docker's config.json. None is fine for anonymous registries.
"""

from __future__ import annotations

import os
from typing import Mapping

from mlbuild.registry import docker_config, ecr, plain_http
from mlbuild.registry.auth import Authenticator
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.reference import Reference
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.transport import Transport


def connect(
    ref: Reference,
    *,
    push: bool,
    mount_from: tuple[str, ...] = (),
    credentials: Credentials | None = None,
    allow_insecure_http: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    pool_size: int = 4,
    env: Mapping[str, str] = os.environ,
) -> RegistryClient:
    hint = ""
    preemptive = False
    if credentials is None and ref.ecr is not None:
        credentials = ecr.authorization(ref)
        preemptive = True  # NB: ECR always wants Basic; sending it first saves a 401 round trip
    elif credentials is None:
        found = docker_config.lookup(ref.registry, env)
        credentials = found.credentials
        if found.helper and credentials is None:
            hint = (
                f"{found.path} names the credential helper 'docker-credential-{found.helper}' for this host,"
                f" and it holds no credentials for it. Fix: docker login {ref.registry}, or pass credentials."
            )
        else:
            hint = (
                f"Fix: add credentials for {ref.registry} to {found.path} (docker login {ref.registry}), or pass them."
            )
    scopes = (
        f"repository:{ref.repository}:{'pull,push' if push else 'pull'}",
        *(f"repository:{r}:pull" for r in mount_from),
    )
    auth = Authenticator(
        ref.registry, credentials, scopes=scopes, preemptive_basic=preemptive, no_credentials_hint=hint
    )
    insecure = plain_http.insecure_registries(env)
    transport = Transport(
        ref,
        auth,
        retry=retry,
        allow_insecure_http=allow_insecure_http,
        insecure_registries=insecure,
        pool_size=pool_size,
    )
    return RegistryClient(ref, transport)
