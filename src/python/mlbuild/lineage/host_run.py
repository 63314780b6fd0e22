"""`pants run` from sources, host side: reuse an identical finished run, else train and record it.

    python -m mlbuild.lineage.host_run local --data-dir D --runs-dir R
        [--sources-sha256 H --requirements-sha256 H | --pex-sha256 H [--image-digest D]]
        [--force] [name=value ...]

The runtime's `local` command lays out the run directory and trains (what the container
runs too); this module wraps it with what only the host does: the reuse check before and
the lineage record after, both keyed on the pins passed here as arguments. Under Pants it
runs in the pipeline's requirements venv with the repo's sources on the path (the rule
sets `PEX_MODULE=mlbuild.lineage.host_run:main`), so the pipeline trains in this process.
`container_run` shares `producers.record_run`/`RunPins` for its own runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from mlbuild.lineage.producers import RunPins, print_reused, record_run, reusable_run_dir
from mlbuild.runtime import hyperparameters, local_run
from mlbuild.runtime.cli import add_local_arguments, local_command, run_entry_point
from mlbuild.runtime.hyperparameters import parse_assignments
from mlbuild.runtime.pipeline import pipeline_from_environ

INSPECT_COMMAND = "./pants mlbuild inspect"


def previous_run(data_dir: Path, assignments: Sequence[str], pins: RunPins) -> Optional[Path]:
    """A finished run of the same code, hyperparameters and data, if the store has one."""
    pipeline = pipeline_from_environ(os.environ)
    overrides = parse_assignments(assignments, pipeline.config)
    encoded = hyperparameters.encode(hyperparameters.resolve(pipeline.config, overrides, "command line"))
    return reusable_run_dir(encoded, local_run.local_channel_dirs(pipeline.config, data_dir), pins)


def run_on_host(data_dir: Path, runs_dir: Path, assignments: Sequence[str], pins: RunPins, force: bool = False) -> int:
    if not force:
        previous = previous_run(data_dir, assignments, pins)
        if previous is not None:
            print_reused(previous, pins)
            return 0
    address = pipeline_from_environ(os.environ).address

    def record(run_dir: Path) -> Optional[str]:
        record_id = record_run(run_dir, address, pins)
        return f"lineage: {record_id} (inspect it: {INSPECT_COMMAND} {record_id[:12]})" if record_id else None

    return local_command(data_dir, runs_dir, assignments, after_run=record)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlbuild.lineage.host_run", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="reuse an identical finished run, else train locally and record the run")
    add_local_arguments(local)
    local.add_argument("--force", action="store_true", help="train even if an identical run already finished")
    local.add_argument("--pex-sha256", help="the packaged PEX that runs (a packaged run)")
    local.add_argument("--image-digest", help="the image that runs, sha256:<hex> (a container run)")
    local.add_argument("--sources-sha256", help="digest of the sources and config (a run from sources)")
    local.add_argument("--requirements-sha256", help="digest of the locked requirements venv (a run from sources)")
    return parser


def pins_of(args: argparse.Namespace) -> RunPins:
    """The pins the Pants rule put on the command line."""
    return RunPins(args.pex_sha256, args.image_digest, args.sources_sha256, args.requirements_sha256)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_entry_point(
        lambda: run_on_host(args.data_dir, args.runs_dir, args.assignments, pins_of(args), args.force)
    )


if __name__ == "__main__":
    sys.exit(main())
