"""`./pants mlbuild replay JOB|HASH`: replay a training job locally and say whether it came out the same.

    ./pants mlbuild replay JOB|HASH [--sample-data DIR] [--expect-failure] [--json]
        [--local-root DIR] [--cache-dir DIR] [--aws] [--region REGION]

JOB|HASH: a local-backend job name, a lineage hash or unique prefix that leads to one job
(image digest, model sha256, record id), or with --aws a SageMaker job name or ARN.
The run's own output goes to stderr; the verdict to stdout (JSON with --json).

Exit codes: 0 identical (or, with --expect-failure, the same failure), 1 the replay came out
different, 2 a user error (unknown job, ambiguous prefix, changed data, missing credentials),
3 a platform error; errors become codes at the one boundary, `mlbuild.console.run_command`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from mlbuild import console, flags
from mlbuild.container_run.rootfs_cache import default_cache_dir
from mlbuild.lineage.store import Store
from mlbuild.names import EXIT_INTERRUPTED, EXIT_OK, EXIT_PLATFORM_ERROR, EXIT_UNEXPECTED, EXIT_USER_ERROR
from mlbuild.publish.local import LOCAL_ROOT
from mlbuild.replay.job import AWS, resolve
from mlbuild.replay.replay import ReplayResult, replay

EXIT_CODES = (EXIT_OK, EXIT_UNEXPECTED, EXIT_USER_ERROR, EXIT_PLATFORM_ERROR, EXIT_INTERRUPTED)


def add_commands(sub: Any) -> None:
    """The `replay` verb, on `sub` (the `./pants mlbuild` tree's subparsers)."""
    p = flags.verb(
        sub,
        "replay",
        "replay a training job locally and say whether it came out the same",
        [
            "replay churn-train-3f9a1c2b7d4e",
            "replay 3f2a9c --sample-data src/python/pipelines/churn/data --json",
            "replay churn-train-3f9a1c2b7d4e --aws --region eu-west-1",
        ],
        EXIT_CODES,
    )
    p.add_argument(
        "job",
        metavar="JOB|HASH",
        help="a job name (local or, with --aws, SageMaker) or a lineage hash that leads to one",
    )
    p.add_argument(
        "--sample-data", type=Path, help="replay on this folder (one subfolder per channel) instead of the job's data"
    )
    p.add_argument(
        "--expect-failure", action="store_true", help="the job failed: exit 0 when the replay fails the same way"
    )
    flags.add_json(p, "the verdict")
    p.add_argument(
        "--local-root",
        type=Path,
        default=LOCAL_ROOT,
        help="the local publish backend's folder (default: .mlbuild/local)",
    )
    p.add_argument(
        flags.CACHE_DIR,
        type=Path,
        help="pulled images, data and unpacked images (default: ${XDG_CACHE_HOME:-~/.cache}/mlbuild)",
    )
    p.add_argument(
        "--aws", action="store_true", help="look the job up in SageMaker (DescribeTrainingJob) when it is not local"
    )
    flags.add_region(p, "AWS_REGION / AWS_DEFAULT_REGION; with --aws")
    # NB: sys.stdout looked up per call, not bound at import (a test's capture replaces it)
    p.set_defaults(run=lambda args: run(args, sys.stdout), interrupted="the replay's run was marked failed.")


def run(args: argparse.Namespace, out: TextIO) -> int:
    store = Store.configured()
    cache_dir = args.cache_dir or default_cache_dir()
    jobs_dir = args.local_root / "jobs"
    if args.aws:
        from mlbuild.replay import aws  # NB: boto3 only when asked for

        clients = aws.clients(args.region, os.environ)
        job = resolve(args.job, jobs_dir, store, describe=aws.describer(clients))
    else:
        clients = None
        job = resolve(args.job, jobs_dir, store)
    extra: dict[str, Any] = {}
    if job.backend == AWS:
        assert clients is not None
        extra = {"fetch_model": aws.model_fetcher(clients), "fetch_data": aws.data_fetcher(clients, cache_dir)}
    console.say(
        f"replaying job {job.name} ({job.status}) of {job.address or 'an unknown pipeline'}: image {job.image_digest}"
    )
    result = replay(
        job,
        local_root=args.local_root,
        cache_dir=cache_dir,
        store=store,
        sample_data=args.sample_data,
        expect_failure=args.expect_failure,
        stream=sys.stderr,
        **extra,
    )
    show(result, args.json, out)
    return result.verdict.exit_code


def show(result: ReplayResult, as_json: bool, out: TextIO) -> None:
    if as_json:
        doc = {
            **result.verdict.to_json(),
            "record_id": result.record_id,
            "image_pulled": result.image.pulled,
            "image_fetched_bytes": result.image.fetched_bytes,
            "seconds": result.seconds,
        }
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    out.write(result.verdict.text())
    how = f"pulled ({result.image.fetched_bytes} bytes)" if result.image.pulled else "found locally, nothing downloaded"
    out.write(f"  image: {result.image.layout_dir} ({how})\n")
    out.write("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.seconds.items()) + "\n")
    if result.record_id:
        out.write(f"  lineage: {result.record_id}\n")
