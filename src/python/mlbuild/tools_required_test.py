from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlbuild.tools_required import (
    REQUIRE_TOOLS_ENV,
    MissingToolWarning,
    cross_check_tool,
    require_tool,
    skip_or_fail,
    tool_path,
    tools_required,
)

ABSENT = "mlbuild-no-such-tool"


@pytest.fixture
def path_with_one_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tool = tmp_path / "present-tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tool


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)])
def test_the_switch(monkeypatch: pytest.MonkeyPatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    else:
        monkeypatch.setenv(REQUIRE_TOOLS_ENV, value)
    assert tools_required() is expected


@pytest.mark.parametrize("switch", ["0", "1"])
def test_a_present_tool_never_skips_or_fails(
    path_with_one_tool: Path, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, switch)
    mark = require_tool("present-tool", "pkg")
    assert mark.name == "skipif" and mark.args == (False,)
    assert tool_path("present-tool", "pkg") == str(path_with_one_tool)
    assert cross_check_tool("present-tool", "pkg") == str(path_with_one_tool)


def test_a_missing_tool_skips_visibly_without_the_switch(
    path_with_one_tool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    mark = require_tool(ABSENT, "the-package")
    assert mark.name == "skipif" and mark.args == (True,)
    assert mark.kwargs["reason"] == f"`{ABSENT}` is not installed (apt-get install the-package)"
    with pytest.raises(pytest.skip.Exception, match="apt-get install the-package"):
        tool_path(ABSENT, "the-package")
    with pytest.warns(MissingToolWarning, match="cross-check was left out"):
        assert cross_check_tool(ABSENT, "the-package") is None


def test_a_missing_tool_fails_under_the_switch(path_with_one_tool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    for call in (require_tool, tool_path, cross_check_tool):
        with pytest.raises(pytest.fail.Exception, match=f"apt-get install the-package.*{REQUIRE_TOOLS_ENV} is set"):
            call(ABSENT, "the-package")
    with pytest.raises(pytest.fail.Exception, match="no namespaces"):
        skip_or_fail("no namespaces")


SESSION_TEST = f"""
from mlbuild.tools_required import require_tool, tool_path

@require_tool("{ABSENT}", "the-package")
def test_marked():
    pass

def test_called():
    tool_path("{ABSENT}", "the-package")
"""


@pytest.mark.parametrize("switch", ["0", "1"])
def test_in_a_pytest_session_the_switch_turns_the_skips_into_failures(tmp_path: Path, switch: str) -> None:
    (tmp_path / "needs_tool_test.py").write_text(SESSION_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), REQUIRE_TOOLS_ENV: switch}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "needs_tool_test.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    if switch == "0":
        assert proc.returncode == 0, proc.stdout
        assert "2 skipped" in proc.stdout and proc.stdout.count("apt-get install the-package") == 2
    else:
        assert proc.returncode not in (0, 5), proc.stdout
        assert "skipped" not in proc.stdout and "1 error" in proc.stdout
        assert f"{REQUIRE_TOOLS_ENV} is set, so this fails instead of skipping" in proc.stdout
