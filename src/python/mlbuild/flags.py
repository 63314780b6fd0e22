"""The flag glossary: one spelling, and one meaning, for every concept mlbuild's commands share.

Every command line (the `./pants mlbuild` tree and the internal CLIs that Pants rules start
with `python -m`) names these concepts with these flags, so a user who learnt one command knows
the others. `flags_test.py` walks every parser and fails on a synonym from `SYNONYMS` or a
`--json` that does anything but print JSON.

NB: imports only `mlbuild.names`, so every layer (the runtime too) may use it.
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable, Sequence

from mlbuild.names import EXIT_CODES

OUTPUT = "--output"  # the file or folder a command writes
CACHE_DIR = "--cache-dir"  # a cache kept between runs (blobs, .debs, unpacked images)
ALLOW_INSECURE_HTTP = "--allow-insecure-http"  # plain HTTP to a registry
JSON = "--json"  # print the result as JSON on stdout (a flag; never a file to read)
REF_NAME = "--ref-name"  # an image's ref name inside an OCI layout
REGION = "--region"  # the AWS region
LINEAGE_DIR = "--lineage-dir"  # the lineage store's root (else $MLBUILD_LINEAGE_DIR)
RECORD_FILE = "--record-file"  # a lineage record body to read (a file, or - for stdin)

GLOSSARY = {
    OUTPUT: "the file or folder the command writes",
    CACHE_DIR: "a cache directory kept between runs",
    ALLOW_INSECURE_HTTP: "allow plain HTTP to the registry",
    JSON: "print the result as JSON on stdout",
    REF_NAME: "the image's ref name in an OCI layout",
    REGION: "the AWS region",
    LINEAGE_DIR: "the lineage store's root",
    RECORD_FILE: "a lineage record body to read",
}

# The spellings that meant one of the concepts above; no parser may use them.
SYNONYMS = {
    "--out": OUTPUT,
    "--output-dir": OUTPUT,
    "--output-file": OUTPUT,
    "--cache": CACHE_DIR,
    "--insecure": ALLOW_INSECURE_HTTP,
    "--allow-http": ALLOW_INSECURE_HTTP,
    "--ref": REF_NAME,
    "--root": LINEAGE_DIR,
    "--aws-region": REGION,
}

PANTS_COMMAND = "./pants mlbuild"


def add_json(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    parser.add_argument(JSON, action="store_true", help=f"print {what} as JSON on stdout")


def add_allow_insecure_http(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        ALLOW_INSECURE_HTTP,
        action="store_true",
        help="plain HTTP to this non-loopback registry (never with credentials); same as listing it in $MLBUILD_INSECURE_REGISTRIES",
    )


def add_region(parser: argparse.ArgumentParser, default: str = "AWS_REGION, else AWS_DEFAULT_REGION") -> None:
    parser.add_argument(REGION, help=f"AWS region (default: {default})")


def verb(
    sub: Any, name: str, summary: str, examples: Sequence[str], codes: Iterable[int], **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples (`./pants mlbuild ...`) and exit codes."""
    epilog = "examples:\n" + "".join(f"  {PANTS_COMMAND} {e}\n" for e in examples)
    epilog += "\nexit codes:\n" + "".join(f"  {code:>3}  {EXIT_CODES[code]}\n" for code in codes)
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def walk(parser: argparse.ArgumentParser, path: str = "") -> Iterable[tuple]:
    """(command path, parser) for `parser` and every subcommand under it, depth first."""
    yield path, parser
    for action in parser._actions:  # NB: argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}".strip())
