"""The command reference, rendered from the argparse tree: every verb, flag and exit code.

`docs/reference/commands.md` is this module's output, committed; `reference_test.py` fails
when the two differ. Regenerate with:

    python3.11 -c 'import sys; sys.path.insert(0, "src/python"); from mlbuild.commands import reference; reference.write()'
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from mlbuild import flags
from mlbuild.commands.cli import parser
from mlbuild.names import EXIT_CODES

REFERENCE_PATH = Path("docs/reference/commands.md")
REGENERATE = (
    'python3.11 -c \'import sys; sys.path.insert(0, "src/python"); '
    "from mlbuild.commands import reference; reference.write()'"
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _flag_rows(p: argparse.ArgumentParser) -> List[str]:
    rows = []
    for action in p._actions:  # NB: argparse keeps a parser's arguments only here
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0:
            name += f" `{action.metavar or action.dest.upper()}`"
        notes = []
        if action.required and action.option_strings:
            notes.append("required")
        if action.choices:
            notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if action.default not in (None, False, [], argparse.SUPPRESS) and not action.required:
            notes.append(f"default `{action.default}`")
        help_text = _cell((action.help or "") % {"default": action.default} if action.help else "")
        rows.append(f"| {name} | {help_text}{' (' + '; '.join(notes) + ')' if notes else ''} |")
    return rows


def render() -> str:
    tree = parser()
    lines = [
        "# Command reference",
        "",
        f"Generated from the code (`mlbuild/commands/reference.py`); do not edit. Regenerate with `{REGENERATE}`.",
        "",
        f"Every command is `{flags.PANTS_COMMAND} VERB [FLAGS]`, run from the repo root. `{flags.PANTS_COMMAND} --help` lists the",
        "verbs; `VERB --help` shows a verb's flags and examples.",
        "",
        "| verb | what it does |",
        "|---|---|",
    ]
    verbs = [(path, p) for path, p in flags.walk(tree) if path]
    lines += [f"| [`{path}`](#{path.replace(' ', '-')}) | {_cell(p.description or '')} |" for path, p in verbs]
    lines += ["", "## Exit codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_CODES.items()]
    lines += [
        "",
        "## Shared flags",
        "",
        "One spelling for each concept, in every command:",
        "",
        "| flag | means |",
        "|---|---|",
    ]
    lines += [f"| `{flag}` | {meaning} |" for flag, meaning in flags.GLOSSARY.items()]
    for path, p in verbs:
        usage = " ".join(p.format_usage().split()).removeprefix("usage: ")
        lines += [
            "",
            f"## {path}",
            "",
            _cell(p.description or ""),
            "",
            "```",
            usage,
            "```",
            "",
            "| flag | |",
            "|---|---|",
        ]
        lines += _flag_rows(p)
        lines += ["", "```", (p.epilog or "").rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write(path: Path = REFERENCE_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
