from __future__ import annotations

import json

import pytest

from mlbuild import names
from mlbuild.commands import cli

# The verbs people type; a verb that moves or disappears must change this table on purpose.
VERBS = [
    "inspect",
    "fetch",
    "runs",
    "diff",
    "previous",
    "plot",
    "verify-provenance",
    "verify",
    "replay",
    "submit",
    "wait",
    "transform",
    "pull-data",
    "push",
    "pull",
    "resolve",
    "lock-debian",
]


def test_every_verb_is_in_the_tree() -> None:
    assert cli.verbs() == VERBS


def test_the_top_help_lists_every_verb_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: ./pants mlbuild")
    assert all(f"\n    {verb}" in out for verb in VERBS), out
    assert "130  interrupted (Ctrl-C)" in out


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_s_help_has_an_example_and_its_exit_codes(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([verb, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: ./pants mlbuild {verb}")
    assert f"examples:\n  ./pants mlbuild {verb}" in out and "exit codes:\n    0  success" in out


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runs", "--lineage-dir", str(tmp_path)]) == names.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mlbuild: error: no runs in {tmp_path}")


def test_a_verb_s_json_goes_to_stdout(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["previous", "src/python/pipelines/churn:train", "--lineage-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) is None


def test_ctrl_c_and_a_bug_go_through_the_boundary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlbuild.lineage import cli as lineage_cli

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(lineage_cli.compare, "runs", interrupted)
    assert cli.main(["runs"]) == names.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "mlbuild: interrupted\n"

    def bug(*_):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(lineage_cli.compare, "runs", bug)
    assert cli.main(["runs"]) == names.EXIT_UNEXPECTED
    assert capsys.readouterr().err.endswith(
        "mlbuild: error: mlbuild runs failed unexpectedly (a bug); please report the traceback above.\n"
    )


def test_a_bad_flag_is_argparse_s_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["inspect", "abc123", "--insecure"])  # NB: the glossary's flag is --allow-insecure-http
    assert e.value.code == names.EXIT_USER_ERROR and "unrecognized arguments: --insecure" in capsys.readouterr().err
