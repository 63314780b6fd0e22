"""The mlbuild tool PEX: the library's modules, never its test helpers; versioned by its sources."""

from __future__ import annotations

from pants.engine.fs import Snapshot
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.conftest import FAKE_RUNTIME
from mlbuild_pants.tool import _ToolRequest


def tool(rule_runner: RuleRunner) -> _ToolRequest:
    return rule_runner.request(_ToolRequest, [])


def test_the_tool_ships_the_library_and_none_of_its_test_helpers(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/mlbuild/oci/__init__.py": "",
            "src/mlbuild/oci/build.py": "",
            "src/mlbuild/oci/testing.py": "",
            "src/mlbuild/oci/build_test.py": "",
            "src/mlbuild/oci/conftest.py": "",
            "src/mlbuild/oci/hostile_corpus.py": "",
            "src/mlbuild/registry/push.py": "",
            "src/mlbuild/registry/local_server.py": "",
            "src/mlbuild/sagemaker/moto_server.py": "",
            "src/mlbuild/experimental/idea.py": "",  # not a tool package
        }
    )
    files = set(rule_runner.request(Snapshot, [tool(rule_runner).request.sources]).files)
    assert files == {
        "mlbuild/__init__.py",
        "mlbuild/lineage/__init__.py",
        "mlbuild/lineage/host_run.py",
        "mlbuild/oci/__init__.py",
        "mlbuild/oci/build.py",
        "mlbuild/registry/push.py",
        "mlbuild/runtime/__init__.py",
        "mlbuild/runtime/cli.py",
        "mlbuild/serving/__init__.py",
        "mlbuild/serving/cli.py",
    }


def test_the_tool_version_names_its_sources_and_not_the_test_helpers(rule_runner: RuleRunner) -> None:
    before = tool(rule_runner).version
    rule_runner.write_files({"src/mlbuild/runtime/testing.py": "X = 1\n"})
    assert tool(rule_runner).version == before
    rule_runner.write_files({"src/mlbuild/runtime/cli.py": FAKE_RUNTIME + "# an edit\n"})
    assert tool(rule_runner).version != before
