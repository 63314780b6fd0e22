"""Error types of the mlbuild runtime.

User errors (bad config, bad data, bad hyperparameters, a pipeline that raises) and
platform errors (mlbuild itself is broken) are different types; `cli.py` turns both
into an exit code and a `failure` file in exactly one place.
"""

from __future__ import annotations


class MLBuildError(Exception):
    """Base class of every error mlbuild reports to a user."""

    exit_code = 1


class UserError(MLBuildError):
    """The user's input is wrong; the message names the file, the field and the fix."""

    exit_code = 2


class ConfigError(UserError):
    """The pipeline config file is invalid."""


class HyperparameterError(UserError):
    """A hyperparameter is unknown, mistyped or malformed."""


class DataError(UserError):
    """An input data channel is missing or unreadable."""


class PipelineError(UserError):
    """The pipeline's own code raised an exception."""


class PlatformError(MLBuildError):
    """mlbuild itself (or the machine) failed; not the user's fault."""

    exit_code = 3
