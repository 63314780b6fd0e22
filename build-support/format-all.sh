#!/usr/bin/env bash
# Formats the whole tree the way `./pants lint` checks it: imports sorted (ruff's isort rules,
# I001) and every file through black (config: pyproject.toml). Safe to rerun; it changes only
# what the checks would refuse.
#
# NB: ruff runs with `--select=I` here, so `fix` only sorts imports; the fixes of the other
# rules (e.g. deleting an import ruff thinks unused) stay a person's call.
set -euo pipefail
cd "$(dirname "$0")/.."
PANTS_CONCURRENT=True ./pants --no-pantsd --ruff-args="--select=I" fix ::
