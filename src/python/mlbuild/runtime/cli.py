"""The runtime's command line: the PEX entry point and the container's `train`.

    train                     (no arguments) SageMaker's entry: train from /opt/ml
    local --data-dir D --runs-dir R [name=value ...]
                              lay out a run directory like SageMaker would, then train
                              through exactly the same function

Only what runs inside the container lives here. The host side of a `pants run` (the reuse
check, the lineage record) is `mlbuild.lineage.host_run`, which calls `local_command` with
a hook; the runtime never imports lineage, so it is not in the PEX or the image.

Errors become exit codes at the one boundary (`mlbuild.console.run_command`, the codes of
`mlbuild.names`): 2 for the user's mistakes, 3 for mlbuild's, 1 for a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from mlbuild import console
from mlbuild.runtime import contract, local_run
from mlbuild.runtime.hyperparameters import parse_assignments
from mlbuild.runtime.pipeline import pipeline_from_environ
from mlbuild.runtime.train import configure_logging, quiet_missing_tools, run_training

log = logging.getLogger("mlbuild")


def train_command(base_dir: Path) -> int:
    """The container entry point; `local` ends up here too."""
    pipeline = pipeline_from_environ(os.environ)
    run_training(base_dir, pipeline)
    return 0


# NB: what the host does once a run directory is final (succeeded or failed): e.g. record
# it. Returns a line for the summary, or None.
AfterRun = Callable[[Path], Optional[str]]


def _nothing_after(_: Path) -> Optional[str]:
    return None


def local_command(
    data_dir: Path, runs_dir: Path, assignments: Sequence[str], after_run: AfterRun = _nothing_after
) -> int:
    pipeline = pipeline_from_environ(os.environ)
    staging = local_run.prepare_run(
        pipeline.config, pipeline.address, data_dir, runs_dir, parse_assignments(assignments, pipeline.config)
    )
    try:
        train_command(staging)
    except BaseException:
        final = local_run.finish_run(staging, succeeded=False)
        after_run(final)
        log_file = final / contract.LOG_FILE
        also = f" and the log {log_file}" if log_file.is_file() else ""
        print(f"mlbuild: training failed; see {final / contract.FAILURE_FILE}{also}", file=sys.stderr)
        raise
    final = local_run.finish_run(staging, succeeded=True)
    note = after_run(final)
    metrics = (final / contract.METRICS_FILE).read_text()
    print(f"\nmlbuild: run complete: {final}")
    print(f"  model:   {final / contract.MODEL_DIR}/")
    print(f"  metrics: {final / contract.METRICS_FILE}")
    print(f"  log:     {final / contract.LOG_FILE}")
    print("  " + metrics.strip().replace("\n", "\n  "))
    if note:
        print(f"  {note}")
    return 0


def add_local_arguments(parser: argparse.ArgumentParser) -> None:
    """The `local` command's arguments; the host side's command takes the same ones."""
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="the pipeline's sample data folder (one subfolder per channel)"
    )
    parser.add_argument("--runs-dir", type=Path, required=True, help="where run directories go")
    parser.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")


def run_entry_point(command: Callable[[], int], name: str = "train") -> int:
    """Run `command` the way every runtime entry point does: logging set up, then the one boundary
    (`mlbuild.console.run_command`) turns errors into `mlbuild.names`' exit codes. The SageMaker
    failure file is written by the training itself (`run_training`), before the error gets here."""
    configure_logging()
    quiet_missing_tools()
    return console.run_command(command, name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train", description="mlbuild pipeline runtime")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("train", help="train from the SageMaker layout under $MLBUILD_ML_BASE_DIR or /opt/ml")
    local = sub.add_parser("local", help="lay out a local run directory, then train")
    add_local_arguments(local)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv or ["train"])
    if args.command == "local":
        return run_entry_point(lambda: local_command(args.data_dir, args.runs_dir, args.assignments))
    return run_entry_point(lambda: train_command(contract.environ_base_dir()))


if __name__ == "__main__":
    sys.exit(main())
