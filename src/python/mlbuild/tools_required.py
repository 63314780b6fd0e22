"""Tests that need a system tool (skopeo, umoci, bwrap, docker-registry, htpasswd).

On a developer's machine a missing tool is a visible skip that says what to install. Under
CI (`.ci/run` exports MLBUILD_REQUIRE_TOOLS=1) it is a failure, so the strongest tests cannot
vanish from a green run because a package failed to install.

    pytestmark = require_tool("docker-registry", "docker-registry")     # a module or a test

    @require_tool("skopeo", "skopeo")
    def test_...

    path = tool_path("htpasswd", "apache2-utils")   # inside a test or fixture
    skopeo = cross_check_tool("skopeo", "skopeo")   # an extra check inside a test: None + a warning
    skip_or_fail("bwrap cannot create namespaces here: ...")   # any other "the tool can't run here"
"""

from __future__ import annotations

import os
import shutil
import warnings
from typing import NoReturn, Optional

import pytest

from mlbuild.names import REQUIRE_TOOLS_ENV


class MissingToolWarning(UserWarning):
    """A cross-check was left out because its tool is not installed."""


def tools_required() -> bool:
    """True under CI: MLBUILD_REQUIRE_TOOLS set to anything but "" or "0"."""
    return os.environ.get(REQUIRE_TOOLS_ENV, "").strip() not in ("", "0")


def missing_message(name: str, apt_package: str) -> str:
    return f"`{name}` is not installed (apt-get install {apt_package})"


def _required_message(reason: str) -> str:
    return f"{reason}; {REQUIRE_TOOLS_ENV} is set, so this fails instead of skipping"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the running test (or fixture) for `reason`, or fail it under MLBUILD_REQUIRE_TOOLS."""
    if tools_required():
        pytest.fail(_required_message(reason), pytrace=False)
    pytest.skip(reason)


def tool_path(name: str, apt_package: str) -> str:
    """The tool's path; otherwise skips the running test, or fails it under MLBUILD_REQUIRE_TOOLS."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(missing_message(name, apt_package))
    return path


def require_tool(name: str, apt_package: str) -> pytest.MarkDecorator:
    """A mark for a test or a module (`pytestmark`) that needs `name` on PATH.

    Installed: a mark that does nothing. Missing: a skip mark naming the package, or, under
    MLBUILD_REQUIRE_TOOLS, a failure at collection (marks are made when the module is
    imported, so the whole module fails, with the reason).
    """
    reason = missing_message(name, apt_package)
    missing = shutil.which(name) is None
    if missing and tools_required():
        pytest.fail(_required_message(reason), pytrace=False)
    return pytest.mark.skipif(missing, reason=reason)


def cross_check_tool(name: str, apt_package: str) -> Optional[str]:
    """For an extra check inside a test that stands without it: the tool's path, or None and
    a MissingToolWarning (listed in pytest's summary); a failure under MLBUILD_REQUIRE_TOOLS."""
    path = shutil.which(name)
    if path is None:
        reason = missing_message(name, apt_package) + "; its cross-check was left out"
        if tools_required():
            pytest.fail(_required_message(reason), pytrace=False)
        warnings.warn(MissingToolWarning(reason), stacklevel=2)
    return path
