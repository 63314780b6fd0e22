"""The SageMaker verbs of `./pants mlbuild` (submit, wait, transform, pull-data): a thin CLI over the modules.

    submit --config pipeline.yaml --image-uri REPO@sha256:... --pipeline-address ADDR
           --git-sha SHA --pex-sha256 HEX [--metric NAME ...] [--force] [--wait]
           [--report-json F] [--report-md F] [--previous-metrics F] [name=value ...]
    wait JOB_NAME [--region R] [--no-logs] [--report-json F] [--report-md F]
    transform TRAINING_JOB --input s3://... --output s3://... [--wait] [--endpoint]
    pull-data --config pipeline.yaml [--output data] [--channel NAME ...]

Progress goes to stderr as `mlbuild: ` lines (mlbuild.console), a transform's status lines
too; the Markdown report, and a transform's model/job/endpoint names, go to stdout. AWS credentials come from
boto3's default chain: under Pants, forward `env.FORWARDED_ENV_VARS`. Errors become exit
codes at the one boundary, `mlbuild.console.run_command`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from mlbuild import console, flags
from mlbuild.job_report import JobReport, render_markdown
from mlbuild.names import (
    EXIT_INTERRUPTED,
    EXIT_JOB_CONFLICT,
    EXIT_JOB_FAILED,
    EXIT_JOB_STILL_RUNNING,
    EXIT_OK,
    EXIT_PLATFORM_ERROR,
    EXIT_UNEXPECTED,
    EXIT_USER_ERROR,
)
from mlbuild.runtime.config import load_config
from mlbuild.runtime.errors import UserError
from mlbuild.runtime.hyperparameters import parse_assignments, resolve

# NB: the meanings live in mlbuild.names' one table; these are the ones this command uses.
EXIT_CODES = (
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USER_ERROR,
    EXIT_PLATFORM_ERROR,
    EXIT_JOB_CONFLICT,
    EXIT_JOB_FAILED,
    EXIT_JOB_STILL_RUNNING,
    EXIT_INTERRUPTED,
)


Followed = Tuple[JobReport, Any]  # (report, wait.Outcome or None when not followed)


def submit_command(args: argparse.Namespace, log: Callable[[str], None] = console.say) -> Followed:
    from mlbuild.sagemaker.aws import Clients
    from mlbuild.sagemaker.job_name import pipeline_name_from_address
    from mlbuild.sagemaker.job_request import build_request
    from mlbuild.sagemaker.submit import submit_job

    config = load_config(args.config)
    values = resolve(config, parse_assignments(args.assignments, config), "command line")
    request = build_request(
        config,
        image_uri=args.image_uri,
        hyperparameter_values=values,
        pipeline_address=args.pipeline_address,
        git_sha=args.git_sha,
        pex_sha256=args.pex_sha256,
        metric_names=args.metric,
        image_digest=args.image_digest,
    )
    # NB: everything above is validation; nothing has touched AWS yet.
    clients = Clients.create(args.region or config.sagemaker.region)
    name = args.pipeline_name or pipeline_name_from_address(args.pipeline_address)
    report = submit_job(
        request,
        pipeline_name=name,
        clients=clients,
        force=args.force,
        previous_metrics=_previous(args.previous_metrics),
        log=log,
    )
    if args.wait:
        return _follow(report, clients, args, log)
    return report, None


def transform_command(args: argparse.Namespace, log: Callable[[str], None] = console.say) -> int:
    """CreateModel + CreateTransformJob for a finished training job's model; --wait follows it."""
    from mlbuild.names import aws_region
    from mlbuild.sagemaker.aws import Clients, describe_training_job
    from mlbuild.sagemaker.transform import deploy_endpoint, follow_transform, spec_from_training_job, submit_transform
    from mlbuild.serving.transform import TransformConfig

    clients = Clients.create(args.region or aws_region(None, os.environ))
    described = describe_training_job(clients.sagemaker, args.training_job)
    if described is None:
        raise UserError(
            f"no training job named {args.training_job!r} in this account and region. Fix: check the name and AWS_REGION."
        )
    pipeline = args.pipeline_name or args.training_job.rsplit("-", 1)[0]
    config = TransformConfig(args.content_type, None, "Line", args.batch_strategy, args.max_payload_mb, "Line", 1)
    spec = spec_from_training_job(
        described,
        pipeline,
        args.input,
        args.output,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        transform=config,
    )
    submission = submit_transform(spec, clients.sagemaker, log)
    print(f"model: {submission.model.name} ({'created' if submission.model.created else 'existing'})")
    print(
        f"transform job: {submission.job.name} ({'created' if submission.job.created else 'existing, ' + submission.status})"
    )
    if args.endpoint:
        deployment = deploy_endpoint(
            submission.model.name, pipeline, clients.sagemaker, instance_type=args.instance_type, log=log
        )
        print(f"endpoint: {deployment.endpoint_name} ({deployment.action}, config {deployment.config.name})")
    if args.wait:
        follow_transform(submission.job.name, sagemaker=clients.sagemaker, out=log).raise_for_status()
    return 0


def wait_command(args: argparse.Namespace, log: Callable[[str], None] = console.say) -> Followed:
    from mlbuild.sagemaker import tags
    from mlbuild.sagemaker.aws import Clients, describe_training_job, translate
    from mlbuild.sagemaker.report import report_for_job

    clients = Clients.create(args.region)
    job = describe_training_job(clients.sagemaker, args.job_name)
    if job is None:
        raise UserError(
            f"no training job named {args.job_name!r} in {clients.region}. Fix: check the name and --region."
        )
    with translate("ListTags"):
        found = tags.tags_to_dict(clients.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", []))
    report = report_for_job(
        job,
        clients.region,
        pipeline_address=found.get(tags.PIPELINE_ADDRESS, ""),
        git_sha=found.get(tags.GIT_SHA) or None,
        pex_sha256=found.get(tags.PEX_SHA256) or None,
        previous_metrics=_previous(args.previous_metrics),
    )
    return _follow(report, clients, args, log)


def _follow(report: JobReport, clients: Any, args: argparse.Namespace, log: Callable[[str], None]) -> Followed:
    from mlbuild.sagemaker.wait import FollowOptions, follow_report

    return follow_report(
        report, clients, FollowOptions(args.poll_seconds, args.timeout_seconds, not args.no_logs), out=log
    )


def pull_data_command(args: argparse.Namespace, log: Callable[[str], None] = console.say) -> None:
    from mlbuild.sagemaker.aws import Clients
    from mlbuild.sagemaker.s3_data import pull_config

    config = load_config(args.config)
    clients = Clients.create(args.region or config.sagemaker.region)
    pull_config(clients.s3, config, args.output, args.channel, log=log)
    log(f"Local run on this data: pass --data-dir {args.output} to the runtime's `local` command.")


def _previous(path: Optional[Path]) -> Optional[Dict[str, float]]:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(
            f"{path}: cannot read previous metrics ({e}). Fix: pass a JSON object of metric name to number."
        ) from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of metric name to number.")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _write_reports(report: JobReport, args: argparse.Namespace) -> None:
    if getattr(args, "report_json", None):
        Path(args.report_json).write_text(report.to_json())
    if getattr(args, "report_md", None):
        Path(args.report_md).write_text(render_markdown(report))


def _seconds(text: str, least: float = 0.0, inclusive: bool = False) -> float:
    """A finite number of seconds above `least` (NaN or a negative wait never ends or errs late)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value >= least if inclusive else value > least)):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds {'from' if inclusive else 'above'} {least:g}, got {text}"
        )
    return value


def _poll_seconds(text: str) -> float:
    return _seconds(text, inclusive=True)  # NB: 0 polls without pausing (moto finishes jobs at once)


def _report_command(command: Callable[[argparse.Namespace], Followed]) -> Callable[[argparse.Namespace], int]:
    """submit and wait: the report is written and printed before a failed job turns into an exit code."""

    def run(args: argparse.Namespace) -> int:
        report, outcome = command(args)
        _write_reports(report, args)
        print(render_markdown(report), end="", flush=True)
        if outcome is not None:
            outcome.raise_for_status()
        return 0

    return run


def _pull_data(args: argparse.Namespace) -> int:
    pull_data_command(args)
    return 0


def add_commands(sub: Any) -> None:
    """The SageMaker verbs, on `sub` (the `./pants mlbuild` tree's subparsers)."""
    still_running = "a submitted job keeps running in SageMaker."

    def follow_options(p: argparse.ArgumentParser) -> None:
        flags.add_region(p, "the config's sagemaker.region, else AWS_REGION")
        p.add_argument("--poll-seconds", type=_poll_seconds, default=15.0)
        p.add_argument("--timeout-seconds", type=_seconds, default=None)
        p.add_argument("--no-logs", action="store_true", help="do not stream CloudWatch log lines")
        p.add_argument("--report-json", type=Path, help="write the report as JSON here")
        p.add_argument("--report-md", type=Path, help="write the report as Markdown here")
        p.add_argument("--previous-metrics", type=Path, help="JSON {metric: value} to compare with")

    s = flags.verb(
        sub,
        "submit",
        "build, validate and submit a SageMaker training job (idempotent)",
        [
            "submit --config src/python/pipelines/churn/pipeline.yaml --image-uri 123.dkr.ecr.eu-west-1.amazonaws.com/churn@sha256:<hex> "
            "--pipeline-address src/python/pipelines/churn:train --git-sha <sha> --pex-sha256 <hex> --wait C=0.5"
        ],
        EXIT_CODES,
    )
    s.add_argument("--config", type=Path, required=True, help="the pipeline's pipeline.yaml")
    s.add_argument("--image-uri", required=True, help="<registry>/<repository>@sha256:<digest>")
    s.add_argument("--image-digest", help="sha256:<hex>; must match the URI's digest")
    s.add_argument("--pipeline-address", required=True, help="the ml_pipeline target's address")
    s.add_argument("--pipeline-name", help="job name prefix (default: from the address)")
    s.add_argument("--git-sha", required=True)
    s.add_argument("--pex-sha256", required=True)
    s.add_argument(
        "--metric", action="append", default=[], help="a metric name to scrape besides the config's `metrics` (repeat)"
    )
    s.add_argument("--force", action="store_true", help="deliberate re-run: a new job under a run-suffixed name")
    s.add_argument("--wait", action="store_true", help="follow the job to its end")
    follow_options(s)
    s.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")
    s.set_defaults(run=_report_command(submit_command), interrupted=still_running)

    w = flags.verb(
        sub,
        "wait",
        "follow a training job: statuses, log lines, final metrics and artifact",
        ["wait churn-train-3f9a1c2b7d4e", "wait churn-train-3f9a1c2b7d4e --no-logs --report-md report.md"],
        EXIT_CODES,
    )
    w.add_argument("job_name")
    follow_options(w)
    w.set_defaults(run=_report_command(wait_command), interrupted=still_running)

    t = flags.verb(
        sub,
        "transform",
        "batch transform S3 data with a finished training job's model (idempotent)",
        ["transform churn-train-3f9a1c2b7d4e --input s3://bucket/in/ --output s3://bucket/out/ --wait"],
        EXIT_CODES,
    )
    t.add_argument("training_job", help="the finished training job whose model and image to use")
    t.add_argument("--input", required=True, help="s3://bucket/prefix/: every object under it is transformed")
    t.add_argument(flags.OUTPUT, required=True, help="s3://bucket/prefix/: `<key>.out` files go here")
    t.add_argument("--pipeline-name", help="model/job name prefix (default: the training job's, before its hash)")
    t.add_argument("--instance-type", default="ml.m5.large")
    t.add_argument("--instance-count", type=int, default=1)
    t.add_argument("--content-type", default="text/csv")
    t.add_argument("--batch-strategy", choices=("MultiRecord", "SingleRecord"), default="MultiRecord")
    t.add_argument("--max-payload-mb", type=int, default=6)
    t.add_argument("--wait", action="store_true", help="follow the transform job to its end")
    t.add_argument("--endpoint", action="store_true", help="also create (or move) a real-time endpoint on the model")
    flags.add_region(t)
    t.set_defaults(run=transform_command, interrupted="a submitted transform job keeps running in SageMaker.")

    p = flags.verb(
        sub,
        "pull-data",
        "pull a pipeline config's S3 channels into local folders",
        ["pull-data --config src/python/pipelines/churn/pipeline.yaml --output data --channel train"],
        EXIT_CODES,
    )
    p.add_argument("--config", type=Path, required=True, help="the pipeline's pipeline.yaml")
    p.add_argument(
        flags.OUTPUT, type=Path, default=Path("data"), help="folder for <channel>/ and manifests (default: data)"
    )
    p.add_argument("--channel", action="append", default=[], help="only this channel (repeat)")
    flags.add_region(p, "the config's sagemaker.region, else AWS_REGION")
    p.set_defaults(run=_pull_data)
