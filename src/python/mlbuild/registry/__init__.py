"""mlbuild's OCI distribution client: push OCI layouts to registries, pull base images by digest.

Pure Python on urllib3 (already a botocore dependency); never imports Pants, never runs
docker/skopeo/crane. See README.md for behaviour, quirks and the oras-py evaluation.

    reference.py      parse 'host:port/repo:tag@sha256:..', ECR host detection
    errors.py         user vs platform error types (extend mlbuild.oci.errors)
    retry.py          backoff + jitter, Retry-After, what is retryable
    quirks.py         every registry quirk, one function each, with its link
    docker_config.py  credentials from Docker's config.json
    auth.py           WWW-Authenticate: Basic and Bearer token flow
    ecr.py            ECR credentials and repository creation via boto3
    plain_http.py     when plain HTTP is allowed; never credentials over it off loopback
    transport.py      urllib3: scheme, auth retries, redirects, retries
    responses.py      buffered responses; status -> error, in one place
    client.py         one method per distribution API endpoint
    session.py        connect(): credentials + authenticator + transport -> client
    upload.py         one blob: HEAD-skip, mount (202 fallback), monolithic or chunked upload
    upload_journal.py open upload sessions written down; the next push cancels a killed push's
    layout_source.py  what to push, read byte for byte from an OCI layout
    push.py           push_layout() -> PushResult
    pull.py           pull_to_layout(), resolve_digest()
    progress.py       bytes and bytes/sec lines on stderr
    cli.py            `python -m mlbuild.registry push|pull|resolve`, exit codes
"""

from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.ecr import EcrRepositorySettings
from mlbuild.registry.errors import (
    AuthError,
    DigestMismatchError,
    NotFoundError,
    ReferenceError,
    RegistryPlatformError,
    RegistryUserError,
    TransientError,
)
from mlbuild.registry.pull import PullResult, pull_to_layout, resolve_digest
from mlbuild.registry.push import PushResult, content_tag, push_layout
from mlbuild.registry.reference import Reference, parse_reference
from mlbuild.registry.retry import RetryPolicy

__all__ = [
    "AuthError",
    "Credentials",
    "DigestMismatchError",
    "EcrRepositorySettings",
    "NotFoundError",
    "PullResult",
    "PushResult",
    "Reference",
    "ReferenceError",
    "RegistryPlatformError",
    "RegistryUserError",
    "RetryPolicy",
    "TransientError",
    "content_tag",
    "parse_reference",
    "pull_to_layout",
    "push_layout",
    "resolve_digest",
]
