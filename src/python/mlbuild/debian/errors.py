"""Error types of mlbuild.debian.

Every message names the file or package, the field, and the fix. The CLI turns these
into a message on stderr and a nonzero exit code in one place (`cli.py`).
"""

from __future__ import annotations

from mlbuild.runtime.errors import MLBuildError


class DebianError(MLBuildError):
    """Base class of every error this package reports (an mlbuild error like any other)."""

    exit_code = 1


class LockFileError(DebianError):
    """The package lock file is missing, malformed or inconsistent."""

    exit_code = 2


class ResolveError(DebianError):
    """apt could not resolve the requested packages (or apt is unavailable)."""


class FetchError(DebianError):
    """A locked .deb could not be downloaded."""


class ChecksumMismatch(FetchError):
    """A downloaded or cached .deb does not match the sha256 recorded in the lock."""


class DebFormatError(DebianError):
    """A .deb file is not a well-formed Debian binary package."""


class RootfsError(DebianError):
    """The root filesystem could not be assembled (conflicting or unsafe paths, ...)."""
