"""`python -m mlbuild.container_run`: run an image's `train` locally, like SageMaker, without Docker.

    python -m mlbuild.container_run --layout DIR [--ref-name REF] --config PIPELINE_YAML \
        --address ADDR --data-dir DIR --runs-dir DIR [--cache-dir DIR] [--network] \
        [--instance-count N] [--no-gpus] [--force] [name=value ...]

An identical finished run (same image, hyperparameters and data) is reused, as `pants run`
reuses one, unless `--force`.

`--instance-count N` runs N hosts together (default: the config's `sagemaker.instance_count`),
as SageMaker runs `InstanceCount` instances; see multi_host.py.

Exit codes: 0 the run succeeded; otherwise train's own exit code
(as `docker run` does; 128+N if killed by signal N), 2 for a user error (config,
hyperparameters, data, image), 3 for a platform error (bwrap unusable, I/O failure), decided
at the one boundary (`mlbuild.console.run_command`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence, TextIO

from mlbuild import console, flags
from mlbuild.container_run.outcome import RunOutcome
from mlbuild.container_run.rootfs_cache import DEFAULT_KEEP, check_keep
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.lineage.producers import RunPins, print_reused, record_run, reusable_run_dir
from mlbuild.runtime import hyperparameters, local_run
from mlbuild.runtime.config import load_config
from mlbuild.runtime.errors import HyperparameterError, MLBuildError
from mlbuild.runtime.hyperparameters import parse_assignments


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlbuild.container_run",
        description="Run an OCI image like SageMaker's `docker run IMAGE train`, under bubblewrap.",
    )
    p.add_argument("--layout", required=True, type=Path, help="OCI image layout directory")
    p.add_argument(flags.REF_NAME, help="the image's ref name in the layout (default: its only image)")
    p.add_argument("--config", required=True, type=Path, help="the pipeline's pipeline.yaml")
    p.add_argument(
        "--address", required=True, help="the pipeline target's address, e.g. src/python/pipelines/churn:train"
    )
    p.add_argument("--data-dir", required=True, type=Path, help="sample data folder (one subfolder per channel)")
    p.add_argument("--runs-dir", required=True, type=Path, help="where run directories go")
    p.add_argument("--cache-dir", type=Path, help="default: ${XDG_CACHE_HOME:-~/.cache}/mlbuild")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="unpacked images to keep in the cache")
    p.add_argument(
        "--network", action="store_true", help="share the host network (default: none, like network isolation)"
    )
    p.add_argument(
        "--instance-count",
        type=int,
        metavar="N",
        help="hosts to run together (algo-1..algo-N; default: the config's sagemaker.instance_count)",
    )
    p.add_argument("--no-gpus", action="store_true", help="give the sandbox no GPUs even when the host has some")
    p.add_argument("--pex-sha256", help="the PEX the image was built with, for the run's lineage record")
    p.add_argument("--image-digest", help="the image's manifest digest (sha256:...), for the run's lineage record")
    p.add_argument(
        "--force",
        action="store_true",
        help="train even if an identical run already finished (same image, hyperparameters and data), as `pants run` takes it",
    )
    p.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")
    return p


def report(outcome: RunOutcome, out: TextIO) -> None:
    verdict = "run complete" if outcome.succeeded else f"run FAILED (exit code {outcome.exit_code})"
    out.write(f"\nmlbuild: {verdict}: {outcome.run_dir}\n")
    out.write(f"  model:   {outcome.model_dir}/\n")
    if outcome.metrics is not None:
        out.write("  metrics: " + json.dumps(outcome.metrics, sort_keys=True) + "\n")
    if outcome.failure_reason:
        out.write("  failure: " + outcome.failure_reason.strip().replace("\n", "\n           ") + "\n")


def outcome_exit_code(outcome: RunOutcome) -> int:
    """The run's own exit code, as `docker run` passes it on."""
    if outcome.exit_code < 0:
        return 128 + -outcome.exit_code  # NB: the shell's convention for "killed by signal N".
    return min(outcome.exit_code, 255)


def _overrides(assignments: Sequence[str], config_path: Path) -> dict[str, str]:
    """The `name=value` overrides; a malformed one is explained with the pipeline's own names."""
    try:
        return parse_assignments(assignments)
    except HyperparameterError:
        try:
            config = load_config(config_path)
        except MLBuildError:
            config = None  # NB: run_image reports a bad config; here it only shapes the hint
        return parse_assignments(assignments, config)


def previous_run(args: argparse.Namespace, overrides: dict[str, str]) -> Path | None:
    """A finished run of this image with these hyperparameters and data (the reuse `pants run` does).

    NB: only for the config's own host count: `--instance-count` runs what the image does not pin.
    """
    if not args.image_digest or args.instance_count is not None:
        return None
    config = load_config(args.config)
    encoded = hyperparameters.encode(hyperparameters.resolve(config, overrides, "command line"))
    return reusable_run_dir(
        encoded, local_run.local_channel_dirs(config, args.data_dir), RunPins(image_digest=args.image_digest)
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    return console.run_command(lambda: run(args, out), "container_run", interrupted="the run was marked failed.")


def run(args: argparse.Namespace, out: TextIO) -> int:
    check_keep(args.keep)  # NB: before anything runs or is written
    overrides = _overrides(args.assignments, args.config)
    previous = None if args.force else previous_run(args, overrides)
    if previous is not None:
        print_reused(previous, RunPins(image_digest=args.image_digest), out)
        return 0
    plan = RunPlan(
        args.layout,
        args.ref_name,
        load_config(args.config),
        args.address,
        args.data_dir,
        args.runs_dir,
        overrides,
        cache_dir=args.cache_dir,
        network=args.network,
        keep=args.keep,
        instance_count=args.instance_count,
        use_gpus=not args.no_gpus,
    )
    outcome = run_image(plan, stream=out)
    report(outcome, out)
    pins = RunPins(pex_sha256=args.pex_sha256, image_digest=args.image_digest)
    record_id = record_run(outcome.run_dir, args.address, pins)
    if record_id:
        print(f"  lineage: {record_id}", file=out)
    return outcome_exit_code(outcome)
