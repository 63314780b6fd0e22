"""A buffered registry response, and the one place that turns bad statuses into errors.

Registries explain failures in a JSON body: {"errors": [{"code": "NAME_UNKNOWN", "message": ...}]}
https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from mlbuild.registry.errors import (
    AuthError,
    DigestMismatchError,
    NotFoundError,
    RegistryPlatformError,
    RegistryUserError,
)

_FIXES = {
    "NAME_UNKNOWN": "the repository does not exist; create it first (for ECR pass create_repository=True / --create-repository)",
    "NAME_INVALID": "the repository name is invalid; use lowercase letters, digits, '.', '_', '-' and '/'",
    "MANIFEST_UNKNOWN": "no such manifest; check the digest or tag",
    "BLOB_UNKNOWN": "the registry does not have a blob this request needs",
    "DENIED": "the credentials lack permission on this repository (for ECR check the IAM policy)",
    "UNAUTHORIZED": "log in to the registry (docker login, or $DOCKER_CONFIG/config.json)",
    "TAG_INVALID": "the tag already exists with other content in an immutable repository; use a new tag",
}


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def error_codes(self) -> list[tuple[str, str]]:
        try:
            errors = json.loads(self.body).get("errors") or []
            return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errors if isinstance(e, dict)]
        except (ValueError, AttributeError):
            return []


def error_for(resp: Response, where: str) -> Exception:
    """The error to raise for an unexpected (non-retryable) response to `where`."""
    codes = resp.error_codes()
    detail = "; ".join(f"{c}: {m}" for c, m in codes) or resp.body[:300].decode("utf-8", "replace").strip()
    fixes = "; ".join(dict.fromkeys(_FIXES[c] for c, _ in codes if c in _FIXES))
    message = (
        f"{where}: HTTP {resp.status}" + (f" ({detail})" if detail else "") + (f". Fix: {fixes}." if fixes else ".")
    )
    if resp.status in (401, 403):
        if not fixes:
            message += " Fix: check the credentials and that they may push/pull this repository."
        return AuthError(message)
    if resp.status == 404:
        return NotFoundError(message)
    if any(c == "DIGEST_INVALID" for c, _ in codes):
        return DigestMismatchError(message)
    if 400 <= resp.status < 500:
        return RegistryUserError(message)
    return RegistryPlatformError(message)
