"""`./pants mlbuild VERB ...`: every user-facing verb under one argparse tree.

The verbs live with their libraries (lineage, replay, sagemaker, registry, debian); each
module's `add_commands(sub)` adds its verbs with `set_defaults(run=...)`, and `main` runs the
chosen one through the one error → exit-code boundary, `mlbuild.console.run_command`. Pants
runs it from the repo root (the `./pants` launcher turns `mlbuild VERB` into `run src/python/mlbuild/commands:mlbuild -- VERB`), where the lineage store
(.mlbuild/lineage, taking in dist/mlbuild/lineage) and the local backend (.mlbuild/local) live.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from mlbuild import console, flags
from mlbuild.debian import cli as debian_cli
from mlbuild.lineage import cli as lineage_cli
from mlbuild.names import EXIT_CODES
from mlbuild.registry import cli as registry_cli
from mlbuild.replay import cli as replay_cli
from mlbuild.sagemaker import cli as sagemaker_cli

# NB: in the order `--help` lists them: lineage, replay, SageMaker, registry, maintainers.
GROUPS = (lineage_cli, replay_cli, sagemaker_cli, registry_cli, debian_cli)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=flags.PANTS_COMMAND,
        description="Build, run, trace and ship mlbuild pipelines. `./pants mlbuild VERB --help` shows a verb's flags and examples.",
        epilog="exit codes:\n" + "".join(f"  {code:>3}  {meaning}\n" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group in GROUPS:
        group.add_commands(sub)
    return p


def verbs() -> List[str]:
    return [path for path, _ in flags.walk(parser()) if path]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return console.run_command(
        lambda: args.run(args), f"mlbuild {args.verb}", interrupted=getattr(args, "interrupted", "")
    )


if __name__ == "__main__":
    sys.exit(main())
