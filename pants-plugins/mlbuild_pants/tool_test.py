"""The mlbuild tool PEX: built from its target's closure, never a test helper; versioned by its sources."""

from __future__ import annotations

from textwrap import dedent

from pants.engine.fs import Snapshot
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.tool import _ToolRequest

# A library package laid out as the repo's are: library sources, test helpers and tests in
# their own targets; the tool target names the module a rule starts with `python -m`.
OCI_PACKAGE = {
    "src/mlbuild/oci/__init__.py": '"""OCI images."""\n',
    "src/mlbuild/oci/__main__.py": "from mlbuild.oci.build import build\n",
    "src/mlbuild/oci/build.py": "import yaml\n\ndef build(): ...\n",
    "src/mlbuild/oci/unused.py": "X = 1\n",
    "src/mlbuild/oci/testing.py": "from mlbuild.oci.build import build\n",
    "src/mlbuild/oci/build_test.py": "from mlbuild.oci.testing import build\n",
    "src/mlbuild/oci/BUILD": dedent(
        """\
        python_sources(sources=["*.py", "!*_test.py", "!testing.py"])
        python_test_utils(name="test_utils", sources=["testing.py"])
        python_tests(name="tests")
        """
    ),
    "src/mlbuild/BUILD": 'python_sources()\ntarget(name="tool", dependencies=["./oci/__main__.py"])',
    "3rdparty/BUILD": 'python_requirement(name="pyyaml", requirements=["PyYAML==6.0.2"], modules=["yaml"])',
}


def tool(rule_runner: RuleRunner) -> _ToolRequest:
    return rule_runner.request(_ToolRequest, [])


def test_the_tool_is_its_targets_closure_and_never_a_test_helper(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(OCI_PACKAGE)
    request = tool(rule_runner).request
    files = set(rule_runner.request(Snapshot, [request.sources]).files)
    # The entry module, what it imports and the package markers; not a module nothing
    # imports, not the test helper, not the test, not the fake runtime.
    assert files == {
        "mlbuild/__init__.py",
        "mlbuild/oci/__init__.py",
        "mlbuild/oci/__main__.py",
        "mlbuild/oci/build.py",
    }


def test_the_tool_version_names_its_sources_and_not_the_test_helpers(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(OCI_PACKAGE)
    before = tool(rule_runner).version
    rule_runner.write_files({"src/mlbuild/oci/testing.py": "X = 2\n", "src/mlbuild/oci/unused.py": "X = 2\n"})
    assert tool(rule_runner).version == before
    rule_runner.write_files({"src/mlbuild/oci/build.py": "import yaml\n\ndef build(): ...\n# an edit\n"})
    assert tool(rule_runner).version != before


def test_a_tool_target_that_does_not_exist_is_named(rule_runner: RuleRunner) -> None:
    rule_runner.set_options(
        ["--mlbuild-tool-target=src/mlbuild:nope", "--source-root-patterns=['/src']"], env_inherit={"PATH"}
    )
    try:
        tool(rule_runner)
    except Exception as e:  # NB: the engine wraps the rule's error
        assert "src/mlbuild:nope" in str(e) and "[mlbuild].tool_target" in str(e)
    else:
        raise AssertionError("a missing tool target built a tool")
