"""`python -m mlbuild.runtime.check_config PATH`: validate a pipeline config, nothing else.

`pants package`/`publish` run this before building anything, so a typo in pipeline.yaml is
reported in seconds, by the same parser the runtime uses when it trains. Exit 0 when the
config is valid, 2 with the runtime's message (file, field, fix) when it is not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

from mlbuild import console
from mlbuild.names import EXIT_USER_ERROR
from mlbuild.runtime.config import load_config


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        return console.fail("usage: python -m mlbuild.runtime.check_config PATH", EXIT_USER_ERROR)
    path = Path(args[0])

    def check() -> int:
        load_config(path)
        return 0

    return console.run_command(check, "mlbuild.runtime.check_config")


if __name__ == "__main__":
    sys.exit(main())
