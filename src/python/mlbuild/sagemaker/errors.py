"""Error types of the SageMaker client side.

User errors (bad config, bad image URI, missing credentials) reuse the runtime's
`UserError`/`ConfigError`; these add AWS failures (a platform error) and the two
outcomes of a submission that are neither: a name conflict and a failed job.
`cli.py` maps every one of them to an exit code in one place.
"""

from __future__ import annotations

from mlbuild.names import EXIT_JOB_CONFLICT, EXIT_JOB_FAILED, EXIT_JOB_STILL_RUNNING
from mlbuild.runtime.errors import MLBuildError, PlatformError


class AwsError(PlatformError):
    """An AWS call failed (throttled past retries, denied, service error)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"AWS {operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code


class JobConflictError(MLBuildError):
    """A job with the derived name exists but is a different job; nothing was submitted."""

    exit_code = EXIT_JOB_CONFLICT


class JobFailedError(MLBuildError):
    """The training job ended Failed or Stopped."""

    exit_code = EXIT_JOB_FAILED


class WaitTimeoutError(MLBuildError):
    """Following a job gave up before the job ended; the job itself keeps running."""

    exit_code = EXIT_JOB_STILL_RUNNING
