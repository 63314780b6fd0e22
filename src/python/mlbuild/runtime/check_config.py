"""`python -m mlbuild.runtime.check_config PATH`: validate a pipeline config, nothing else.

`pants package`/`publish` run this before building anything, so a typo in pipeline.yaml is
reported in seconds, by the same parser the runtime uses when it trains. Exit 0 when the
config is valid, 2 with the runtime's message (file, field, fix) when it is not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

from mlbuild.runtime.config import load_config
from mlbuild.runtime.errors import UserError


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mlbuild.runtime.check_config PATH", file=sys.stderr)
        return 2
    try:
        load_config(Path(args[0]))
    except UserError as e:
        print(str(e), file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
