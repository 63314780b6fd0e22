"""`python -m mlbuild.zipapp`: a thin command line over `assemble`, run by Pants as a Process.

    --requirements REQS.pex --sources DIR --output OUT.pex --entry-point MODULE:FUNC [--env NAME=VALUE ...] [--layout zipapp|packed]

`--layout packed`: REQS.pex and OUT.pex are folders; only the code-dependent files are
written to OUT.pex (PEX-INFO, __main__.py, the sources); the caller adds `.bootstrap` and `.deps/`.

Prints the new pex hash. Exit codes (the boundary, `mlbuild.console.run_command`): 0 ok, 1 a bug,
2 user error, 3 platform error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from mlbuild import console, flags
from mlbuild.zipapp.assemble import assemble, assemble_packed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.zipapp", description=__doc__.splitlines()[0])
    p.add_argument("--requirements", required=True, type=Path, help="the requirements-only zipapp PEX")
    p.add_argument("--sources", required=True, type=Path, help="the code, source roots stripped")
    p.add_argument(flags.OUTPUT, required=True, type=Path, help="the PEX to write")
    p.add_argument("--entry-point", required=True)
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="baked into PEX-INFO (inject_env)")
    p.add_argument("--layout", choices=("zipapp", "packed"), default="zipapp", help="pex's layout of both PEXes")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            p.error(f"--env {item!r}: expected NAME=VALUE")
        env[name] = value
    build = assemble_packed if args.layout == "packed" else assemble
    return console.run_command(
        lambda: print(build(args.requirements, args.sources, args.output, args.entry_point, env)) or 0, "mlbuild.zipapp"
    )


if __name__ == "__main__":
    sys.exit(main())
