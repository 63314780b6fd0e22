"""The image's `serve` program, and `transform`.

    serve                      (no arguments) SageMaker's entry: the model in
                               $MLBUILD_ML_BASE_DIR/model or /opt/ml/model, on 0.0.0.0:8080
                               ($SAGEMAKER_BIND_TO_PORT), one worker per CPU
    serve --bind 127.0.0.1:0 --port-file F [--model-dir D] [--workers N] [--max-payload-mb M]
          [--timeout S] [--queue Q] [--header-timeout S] [--body-timeout S]
    transform INPUT --output DIR (--url http://HOST:PORT | --model-dir D|model.tar.gz) [...]
                               a batch transform of a file or folder, driving a running server
                               (--url) or one started on loopback for the model in D

The pipeline is the one `train` runs (MLBUILD_PIPELINE_MODULE, set in the PEX and the image).
Errors become exit codes here and only here: 2 for the user's mistakes, 3 for mlbuild's,
5 for a failed transform.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from mlbuild import console
from mlbuild.runtime import contract
from mlbuild.runtime.errors import MLBuildError, UserError
from mlbuild.runtime.pipeline import pipeline_from_environ
from mlbuild.runtime.train import configure_logging, quiet_missing_tools
from mlbuild.serving.app import DEFAULT_MAX_PAYLOAD_MB, MAX_PAYLOAD_ENV_VAR, InvocationsApp, LoadFailedApp
from mlbuild.serving.content_types import SUPPORTED, media_type
from mlbuild.serving.front import Limits
from mlbuild.serving.predictor import Predictor
from mlbuild.serving.server import (
    DEFAULT_TIMEOUT_SECONDS,
    QUEUE_PER_WORKER,
    TIMEOUT_ENV_VAR,
    ServerOptions,
    default_bind,
    default_timeout,
    default_workers,
    run_server,
)
from mlbuild.serving.transform import ASSEMBLE_WITH, BATCH_STRATEGIES, SPLIT_TYPES, TransformConfig, run_transform

log = logging.getLogger("mlbuild.serving")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 or more")
    return value


def _bind(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 (port 0: a free one)")
    return text


def default_max_payload_mb(environ: Mapping[str, str]) -> int:
    value = environ.get(MAX_PAYLOAD_ENV_VAR, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_PAYLOAD_MB


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve", description="Serve the pipeline's model on SageMaker's hosting contract."
    )
    parser.add_argument("--bind", type=_bind, help="HOST:PORT (default 0.0.0.0:$SAGEMAKER_BIND_TO_PORT, else 8080)")
    parser.add_argument(
        "--workers", type=_positive, help="worker processes (default $SAGEMAKER_MODEL_SERVER_WORKERS, else one per CPU)"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="the model folder (default $MLBUILD_ML_BASE_DIR/model, else /opt/ml/model)"
    )
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    parser.add_argument(
        "--max-payload-mb",
        type=_positive,
        help=f"largest request body (default ${MAX_PAYLOAD_ENV_VAR}, else {DEFAULT_MAX_PAYLOAD_MB})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        help=f"seconds an invocation may take before a 504 (default ${TIMEOUT_ENV_VAR}, else {DEFAULT_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "--queue",
        type=_positive,
        help=f"invocations waiting for a worker before a 503 (default {QUEUE_PER_WORKER} per worker)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_positive,
        default=int(Limits.header_seconds),
        help="seconds a request's headers may take from their first byte (default %(default)s): then 408",
    )
    parser.add_argument(
        "--body-timeout",
        type=_positive,
        default=int(Limits.body_seconds),
        help="seconds a request's body may take (default %(default)s): then 408",
    )
    return parser


def load_failure(e: Exception) -> str:
    """The line a failed load is answered with, logged once with the traceback of what raised
    (the pipeline's load_model, or mlbuild's bug); none for mlbuild's own complete message,
    such as a missing model.pkl."""
    line = str(e) if isinstance(e, MLBuildError) else f"{type(e).__name__}: {e}"
    raised = e.__cause__ if isinstance(e, MLBuildError) else e
    log.error("the model failed to load: %s", line, exc_info=raised)
    return line


def serve_command(args: argparse.Namespace) -> int:
    environ = os.environ
    base_dir = contract.environ_base_dir()
    model_dir = args.model_dir or base_dir / contract.MODEL_DIR
    workers = args.workers or default_workers(environ)
    max_payload_mb = args.max_payload_mb or default_max_payload_mb(environ)
    options = ServerOptions(
        args.bind or default_bind(environ),
        workers,
        args.timeout or default_timeout(environ),
        args.port_file,
        max_payload_mb,
        args.queue,
        args.header_timeout,
        args.body_timeout,
    )
    pipeline = pipeline_from_environ(environ)  # NB: not a pipeline image (no MLBUILD_PIPELINE_MODULE): exit 3 at once
    try:
        predictor = Predictor.load(pipeline, base_dir, model_dir)
    except Exception as e:  # NB: SageMaker must see a failing /ping (and why), not a container that exits
        return run_server(LoadFailedApp(load_failure(e)), options, model_loaded=False)
    return run_server(InvocationsApp(predictor, max_payload_mb, workers), options)


def _transform_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve transform", description="Batch transform a file or folder, as SageMaker's transform job does."
    )
    parser.add_argument("input", type=Path, help="a file or a folder of files")
    parser.add_argument("--output", type=Path, required=True, help="where `<input>.out` files go")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server, http://HOST:PORT")
    where.add_argument(
        "--model-dir", type=Path, help="start a server on loopback for this model folder or model.tar.gz"
    )
    parser.add_argument(
        "--workers", type=_positive, default=1, help="with --model-dir: the server's workers (default 1)"
    )
    parser.add_argument(
        "--content-type", default="text/csv", help=f"ContentType: {', '.join(SUPPORTED)} (default text/csv)"
    )
    parser.add_argument("--accept", help="Accept (default: the content type)")
    parser.add_argument("--split-type", choices=SPLIT_TYPES, default="Line")
    parser.add_argument("--batch-strategy", choices=BATCH_STRATEGIES, default="MultiRecord")
    parser.add_argument("--max-payload-mb", type=_positive, default=6)
    parser.add_argument("--assemble-with", choices=ASSEMBLE_WITH, default="Line")
    parser.add_argument("--max-concurrent-transforms", type=_positive, default=1)
    return parser


def transform_command(args: argparse.Namespace) -> int:
    if media_type(args.content_type) not in SUPPORTED:
        raise UserError(f"--content-type {args.content_type!r}: expected one of {', '.join(SUPPORTED)}.")
    config = TransformConfig(
        args.content_type,
        args.accept,
        args.split_type,
        args.batch_strategy,
        args.max_payload_mb,
        args.assemble_with,
        args.max_concurrent_transforms,
    ).validate()
    say = lambda line: print(f"mlbuild: {line}", file=sys.stderr)
    if args.url:
        result = run_transform(args.url, args.input, args.output, config, say)
    else:
        from mlbuild.serving.local_server import local_server
        from mlbuild.serving.model_source import model_folder

        with model_folder(args.model_dir) as model_dir, local_server(model_dir, workers=args.workers) as url:
            result = run_transform(url, args.input, args.output, config, say)
    rate = result.records / result.seconds if result.seconds > 0 else float("inf")
    print(
        f"mlbuild: transformed {result.records} records from {len(result.files)} files in {result.seconds:.2f}s ({rate:.0f} records/s) into {args.output}"
    )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    quiet_missing_tools()
    if args[:1] == ["serve"]:  # NB: `docker run IMAGE serve` with an Entrypoint passes it on
        args = args[1:]
    if args[:1] == ["transform"]:
        transform_args = _transform_parser().parse_args(args[1:])
        return console.run_command(lambda: transform_command(transform_args), "serve transform")
    serve_args = _serve_parser().parse_args(args)
    return console.run_command(lambda: serve_command(serve_args), "serve")


if __name__ == "__main__":
    sys.exit(main())
