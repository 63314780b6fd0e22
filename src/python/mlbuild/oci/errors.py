"""Error types of mlbuild.oci.

User errors (a bad spec, an unsafe layer, a broken contract) and platform errors (the
machine or mlbuild failed) are different types; `cli.py` turns them into exit codes in
exactly one place.
"""

from __future__ import annotations

from mlbuild.runtime import errors as mlbuild_errors


class OCIError(mlbuild_errors.MLBuildError):
    """Base class of every error mlbuild.oci reports (an mlbuild error like any other)."""

    exit_code = 1


class UserError(OCIError, mlbuild_errors.UserError):
    """The input is wrong; the message names the file, the field and the fix."""

    exit_code = 2


class SpecError(UserError):
    """The build spec (spec.json) is invalid."""


class UnsafeLayerError(UserError):
    """A layer tries to write outside the rootfs, or holds an entry we refuse to create."""

    def __init__(self, layer_digest: str, entry: str, reason: str) -> None:
        super().__init__(f"layer {layer_digest}: entry {entry!r}: {reason}")
        self.layer_digest = layer_digest
        self.entry = entry
        self.reason = reason


class ContractError(UserError):
    """The image breaks SageMaker's bring-your-own-container contract."""


class PlatformError(OCIError, mlbuild_errors.PlatformError):
    """mlbuild.oci itself (or the machine) failed; not the user's fault."""

    exit_code = 3
