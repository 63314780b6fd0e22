"""The runtime's command line: the PEX entry point and the container's `train`.

    train                     (no arguments) SageMaker's entry: train from /opt/ml
    local --data-dir D --runs-dir R [name=value ...]
                              what `pants run` calls: lay out a run directory like SageMaker
                              would, then train through exactly the same function

Errors become exit codes here and only here: 2 for the user's mistakes, 3 for mlbuild's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from mlbuild.lineage.producers import record_run, reusable_run_dir
from mlbuild.runtime import contract, hyperparameters, local_run
from mlbuild.runtime.errors import MLBuildError
from mlbuild.runtime.hyperparameters import parse_assignments
from mlbuild.runtime.pipeline import pipeline_from_environ
from mlbuild.runtime.train import configure_logging, quiet_missing_tools, run_training

log = logging.getLogger("mlbuild")


def train_command(base_dir: Path) -> int:
    """The container entry point; `local` ends up here too."""
    pipeline = pipeline_from_environ(os.environ)
    run_training(base_dir, pipeline)
    return 0


def local_command(data_dir: Path, runs_dir: Path, assignments: Sequence[str], force: bool = False) -> int:
    pipeline = pipeline_from_environ(os.environ)
    if not force:
        overrides = parse_assignments(assignments, pipeline.config)
        encoded = hyperparameters.encode(hyperparameters.resolve(pipeline.config, overrides, "command line"))
        previous = reusable_run_dir(encoded, local_run.local_channel_dirs(pipeline.config, data_dir))
        if previous is not None:
            print(f"mlbuild: an identical run already finished (same PEX, hyperparameters and data): {previous}")
            print(f"  model:   {previous / contract.MODEL_DIR}/")
            print("  " + (previous / contract.METRICS_FILE).read_text().strip().replace("\n", "\n  "))
            print("  (pass -- --force to train again)")
            return 0
    staging = local_run.prepare_run(
        pipeline.config, pipeline.address, data_dir, runs_dir, parse_assignments(assignments, pipeline.config)
    )
    try:
        train_command(staging)
    except BaseException:
        final = local_run.finish_run(staging, succeeded=False)
        record_run(final, pipeline.address)
        log_file = final / contract.LOG_FILE
        also = f" and the log {log_file}" if log_file.is_file() else ""
        print(f"mlbuild: training failed; see {final / contract.FAILURE_FILE}{also}", file=sys.stderr)
        raise
    final = local_run.finish_run(staging, succeeded=True)
    record_id = record_run(final, pipeline.address)
    metrics = (final / contract.METRICS_FILE).read_text()
    print(f"\nmlbuild: run complete: {final}")
    print(f"  model:   {final / contract.MODEL_DIR}/")
    print(f"  metrics: {final / contract.METRICS_FILE}")
    print(f"  log:     {final / contract.LOG_FILE}")
    print("  " + metrics.strip().replace("\n", "\n  "))
    if record_id:
        print(f"  lineage: {record_id} (inspect it: ./pants run src/python/mlbuild/lineage:mlbuild-lineage -- inspect {record_id[:12]})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train", description="mlbuild pipeline runtime")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("train", help="train from the SageMaker layout under $MLBUILD_ML_BASE_DIR or /opt/ml")
    local = sub.add_parser("local", help="lay out a local run directory, then train")
    local.add_argument("--data-dir", type=Path, required=True, help="the pipeline's sample data folder (one subfolder per channel)")
    local.add_argument("--runs-dir", type=Path, required=True, help="where run directories go")
    local.add_argument("--force", action="store_true", help="train even if an identical run already finished")
    local.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    quiet_missing_tools()
    args = _parser().parse_args(argv or ["train"])
    try:
        if args.command == "local":
            return local_command(args.data_dir, args.runs_dir, args.assignments, args.force)
        return train_command(contract.environ_base_dir())
    except MLBuildError as e:
        print(f"mlbuild: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
