"""Error types of mlbuild.container_run, on top of the runtime's user/platform split.

`cli.py` turns every one of them (and mlbuild.oci's) into an exit code in one place.
"""

from __future__ import annotations

from mlbuild.runtime.errors import PlatformError, UserError


class ImageCommandError(UserError):
    """The image cannot run `train`: nothing executable on PATH, a missing interpreter, ..."""


class RootfsError(UserError):
    """The unpacked image cannot host the sandbox (e.g. `/opt` is a file or an escaping symlink)."""


class SandboxUnavailableError(PlatformError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


class GpuDriverError(PlatformError):
    """The host has NVIDIA GPU devices but not the driver libraries a sandbox needs with them."""


class HostFailedError(UserError):
    """One host of a multi-host job failed; the message names it (the job fails, as on SageMaker)."""
