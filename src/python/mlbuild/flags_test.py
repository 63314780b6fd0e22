"""Every parser (the `./pants mlbuild` tree and the internal CLIs Pants rules start) speaks the glossary."""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import pytest

from mlbuild import base_image, flags, shared_blobs
from mlbuild.commands import cli as commands
from mlbuild.container_run import cli as container_run
from mlbuild.container_run import serve_cli
from mlbuild.lineage import build_cli, host_run
from mlbuild.oci import cli as oci_cli
from mlbuild.publish import cli as publish_cli
from mlbuild.registry import cli as registry_cli
from mlbuild.runtime import cli as runtime_cli
from mlbuild.serving import cli as serving_cli
from mlbuild.zipapp import __main__ as zipapp

PARSERS: Dict[str, Callable[[], argparse.ArgumentParser]] = {
    "./pants mlbuild": commands.parser,
    "python -m mlbuild.registry": registry_cli._parser,
    "python -m mlbuild.lineage.build_cli": build_cli._parser,
    "python -m mlbuild.lineage.host_run": host_run._parser,
    "python -m mlbuild.container_run": container_run.parser,
    "python -m mlbuild.container_run.serve_cli": serve_cli._parser,
    "python -m mlbuild.publish": publish_cli._parser,
    "python -m mlbuild.oci": oci_cli.parser,
    "python -m mlbuild.zipapp": zipapp.parser,
    "python -m mlbuild.shared_blobs": shared_blobs.parser,
    "python -m mlbuild.base_image": base_image.parser,
    "train (runtime)": runtime_cli._parser,
    "serve": serving_cli._serve_parser,
    "serve transform": serving_cli._transform_parser,
}


def _options():
    for name, factory in PARSERS.items():
        for path, parser in flags.walk(factory()):
            for action in parser._actions:
                for option in action.option_strings:
                    yield f"{name} {path}".strip(), option, action


def glossary_violations(options) -> list:
    found = []
    for where, option, action in options:
        if option in flags.SYNONYMS:
            found.append(f"{where}: {option} is spelled {flags.SYNONYMS[option]} in every mlbuild command")
        if option == flags.JSON and not (isinstance(action, argparse._StoreTrueAction)):
            found.append(
                f"{where}: --json must mean 'print JSON on stdout' (a flag); reading a file is {flags.RECORD_FILE}"
            )
    return found


def test_every_parser_uses_the_glossary_s_one_spelling() -> None:
    assert glossary_violations(_options()) == []


def test_the_walk_sees_every_parser_and_verb() -> None:
    seen = {where for where, _, _ in _options()}
    assert {
        "./pants mlbuild inspect",
        "./pants mlbuild lock-debian",
        "python -m mlbuild.oci build",
        "serve transform",
    } <= seen


@pytest.mark.parametrize(
    "add, message",
    [
        (lambda p: p.add_argument("--insecure", action="store_true"), "--insecure is spelled --allow-insecure-http"),
        (lambda p: p.add_argument("--json", help="a record body file"), "--json must mean 'print JSON on stdout'"),
        (lambda p: p.add_argument("--out"), "--out is spelled --output"),
    ],
)
def test_the_check_fails_on_a_synonym_or_a_json_that_reads_a_file(add, message: str) -> None:
    parser = argparse.ArgumentParser(prog="x")
    add(parser)
    options = [("x", o, a) for a in parser._actions for o in a.option_strings]
    assert any(message in v for v in glossary_violations(options))


def test_host_and_container_runs_take_the_same_force() -> None:
    """`pants run PIPELINE -- --force` and `pants run --mlbuild-container PIPELINE -- --force` end up here."""
    host = host_run._parser().parse_args(["local", "--data-dir", "d", "--runs-dir", "r", "--force", "C=1"])
    container = container_run.parser().parse_args(
        ["--layout", "l", "--config", "c", "--address", "a:b", "--data-dir", "d", "--runs-dir", "r", "--force", "C=1"]
    )
    assert (host.force, host.assignments) == (container.force, container.assignments) == (True, ["C=1"])
