"""Error types of mlbuild.registry.

They extend mlbuild.oci's UserError / PlatformError, so one CLI boundary turns both
libraries' errors into exit codes. A user error is something the caller can fix (a bad
reference, missing credentials, a denied repository); a platform error is the registry,
the network or mlbuild misbehaving. Every message names the registry, repository and
digest involved and, where there is one, the fix.
"""

from __future__ import annotations

from mlbuild.oci.errors import PlatformError, UserError


class RegistryUserError(UserError):
    """The caller's input or setup is wrong (reference, credentials, permissions)."""


class ReferenceError(RegistryUserError):
    """An image reference does not parse, or is a mutable tag where a digest is needed."""


class AuthError(RegistryUserError):
    """401/403: no credentials, wrong credentials, or no permission on the repository."""


class NotFoundError(RegistryUserError):
    """404 on a name: the repository, manifest or blob does not exist."""


class RegistryPlatformError(PlatformError):
    """The registry or the network failed, or answered against the spec."""


class TransientError(RegistryPlatformError):
    """A failure worth retrying (408/429/5xx, reset, timeout); raised once retries run out."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DigestMismatchError(RegistryPlatformError):
    """Bytes on the wire or on disk do not hash to the digest they are addressed by."""
