"""The registry verbs (push, pull, resolve: images by digest): parse and call; errors become exit codes at the boundary.

`./pants mlbuild push|pull|resolve` for people; `python -m mlbuild.registry` (the same parser) for
the Pants rules that push and pull. Exit codes: 0 ok; 2 user error (bad reference, credentials,
permissions: fix the input); 3 platform error (registry/network failure, digest mismatch: retry
or report); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from mlbuild import console, flags
from mlbuild.names import EXIT_INTERRUPTED, EXIT_OK, EXIT_PLATFORM_ERROR, EXIT_UNEXPECTED, EXIT_USER_ERROR
from mlbuild.registry import plain_http, quirks
from mlbuild.registry.ecr import EcrRepositorySettings
from mlbuild.registry.pull import PullResult, pull_to_layout, resolve_digest
from mlbuild.registry.push import PushResult, push_layout
from mlbuild.registry.reference import parse_reference

EXIT_CODES = (EXIT_OK, EXIT_UNEXPECTED, EXIT_USER_ERROR, EXIT_PLATFORM_ERROR, EXIT_INTERRUPTED)


def add_commands(sub: Any) -> None:
    """The registry verbs, on `sub` (the `./pants mlbuild` tree's subparsers, or this module's own)."""
    push = flags.verb(
        sub,
        "push",
        "push an image from an OCI layout; prints the image URI with its digest",
        ["push --layout dist/src.python.pipelines.churn/train.oci --to 127.0.0.1:5000/ml/churn"],
        EXIT_CODES,
    )
    push.add_argument("--layout", type=Path, required=True, help="OCI image layout directory")
    push.add_argument(flags.REF_NAME, help="image ref name in the layout (default: the only image)")
    push.add_argument("--to", required=True, metavar="REGISTRY/REPO", help="e.g. 127.0.0.1:5000/team/trainer")
    push.add_argument("--tag", action="append", default=[], help="a human tag to add (repeatable; off by default)")
    push.add_argument(
        "--mount-from", action="append", default=[], metavar="REPO", help="same-registry repo that may hold the blobs"
    )
    push.add_argument(
        "--chunked", action="store_true", help="upload in PATCH chunks (default: one PUT; ECR needs that)"
    )
    push.add_argument("--chunk-size", type=int, default=16 * 1024 * 1024)
    push.add_argument("--create-repository", action="store_true", help="ECR: create the repository if missing")
    push.add_argument("--mutable-tags", action="store_true", help="ECR: a created repository allows moving tags")
    push.add_argument("--scan-on-push", action="store_true", help="ECR: a created repository scans on push")
    push.add_argument("--parallelism", type=_at_least_one, default=3, help="blob uploads at once (>= 1)")
    push.add_argument("--no-verify", action="store_true", help="skip re-reading blobs and manifest after the push")

    pull = flags.verb(
        sub,
        "pull",
        "pull an image pinned by digest into an OCI layout",
        ["pull 127.0.0.1:5000/ml/churn@sha256:<hex> --layout pulled.oci --cache-dir ~/.cache/mlbuild/pull"],
        EXIT_CODES,
    )
    pull.add_argument("reference", help="REGISTRY/REPO[:TAG]@sha256:...")
    pull.add_argument("--layout", type=Path, required=True, help="the OCI layout directory to write (or add to)")
    pull.add_argument(flags.CACHE_DIR, type=Path, required=True, help="blob cache directory, shared between pulls")
    pull.add_argument(flags.REF_NAME, help="ref name in the layout (default: the tag, else 'base')")

    resolve = flags.verb(
        sub,
        "resolve",
        "print the digest a tag points at, to pin it",
        ["resolve docker.io/library/python:3.11-slim"],
        EXIT_CODES,
    )
    resolve.add_argument("reference", help="REGISTRY/REPO:TAG")

    for p in (push, pull, resolve):
        flags.add_allow_insecure_http(p)
        flags.add_json(p)
        p.set_defaults(run=run)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlbuild.registry", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(args: argparse.Namespace) -> PushResult | PullResult | str:
    insecure = args.allow_insecure_http
    target = args.to if args.command == "push" else args.reference
    env = plain_http.with_insecure(os.environ, parse_reference(target).registry) if insecure else os.environ
    if args.command == "push":
        return push_layout(
            args.layout,
            args.ref_name,
            args.to,
            tags=args.tag,
            mount_from=args.mount_from,
            upload_mode="chunked" if args.chunked else quirks.DEFAULT_UPLOAD_MODE,
            chunk_size=args.chunk_size,
            create_repository=args.create_repository,
            ecr_settings=EcrRepositorySettings(immutable_tags=not args.mutable_tags, scan_on_push=args.scan_on_push),
            allow_insecure_http=insecure,
            parallelism=args.parallelism,
            verify=not args.no_verify,
            env=env,
        )
    if args.command == "pull":
        return pull_to_layout(
            args.reference, args.layout, args.cache_dir, ref_name=args.ref_name, allow_insecure_http=insecure, env=env
        )
    return resolve_digest(args.reference, allow_insecure_http=insecure, env=env)


def _at_least_one(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def run(args: argparse.Namespace) -> int:
    result = _run(args)
    if args.json:
        print(json.dumps({"digest": result} if isinstance(result, str) else asdict(result), sort_keys=True))
    elif isinstance(result, PushResult):
        print(result.image_uri)
        r = result
        console.say(
            f"pushed {r.digest} tags {','.join(r.tags)}: {r.uploaded} uploaded ({r.uploaded_bytes} B), "
            f"{r.mounted} mounted, {r.skipped} skipped in {r.seconds:.2f}s"
        )
    elif isinstance(result, PullResult):
        print(result.digest)
    else:
        print(result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mlbuild.registry`: the same verbs, for the Pants rules that push and pull."""
    args = _parser().parse_args(argv)
    return console.run_command(lambda: run(args), "mlbuild.registry")
