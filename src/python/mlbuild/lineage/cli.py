"""The lineage verbs of `./pants mlbuild`: a thin CLI over the lineage modules.

    inspect QUERY [--json] [--local-only]   QUERY: hash, sha256:hash, >=6-hex prefix, job name, repo@sha256:...
                                             (not in the store: fetched from the job's S3 folder or the image's registry)
    fetch s3://B/PREFIX | REGISTRY/REPO@sha256:... | JOB   copy records into the store
    runs [PIPELINE] [--json]
    diff A B [--json]
    previous PIPELINE [--before ID]   prints the previous successful run's metrics as JSON
    plot PIPELINE [--metric NAME ...] --output FILE.png [--width PX] [--height PX]
    verify-provenance [STMT] (--digest sha256:... | --manifest FILE | --image-json X.image.json | --image REF)
    verify QUERY [--repo DIR] [--keep] [--reuse-cache] [--json]   rebuild from a clean checkout and compare

The store root is --lineage-dir, else $MLBUILD_LINEAGE_DIR, else ./.mlbuild/lineage (which takes
in what `pants package` wrote to ./dist/mlbuild/lineage). A corrupt record file is skipped with
a warning naming it (--strict: exit 3 instead). Errors become exit codes at the one boundary,
`mlbuild.console.run_command`.

The build's plumbing (`record`, `provenance`) is `mlbuild.lineage.build_cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any, List

from mlbuild import console, flags
from mlbuild.lineage import collect, compare, graph, inspect, plot, provenance, verify
from mlbuild.lineage.build_cli import load_json
from mlbuild.lineage.digests import bare_hex, is_hex
from mlbuild.lineage.errors import MLBuildError, NotFoundError, UserError
from mlbuild.lineage.index import RUNS_COMMAND
from mlbuild.lineage.provenance import VerificationError
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store
from mlbuild.names import (
    EXIT_NOT_VERIFIED,
    EXIT_OK,
    EXIT_PLATFORM_ERROR,
    EXIT_UNEXPECTED,
    EXIT_USER_ERROR,
    aws_region,
)
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE

HEX64 = re.compile(r"[0-9a-f]{64}")
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")

EXIT_CODES = (EXIT_OK, EXIT_UNEXPECTED, EXIT_USER_ERROR, EXIT_PLATFORM_ERROR, EXIT_NOT_VERIFIED)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def verify_command(args: argparse.Namespace) -> int:
    """Check statements' subjects: a file's, the OCI layout's, or those pushed with the image."""
    statements = [load_json(args.statement, "statement")] if args.statement else []
    if args.image:
        from mlbuild.registry.referrers import fetch_referrers  # NB: urllib3; local commands need only the stdlib

        digest, found = fetch_referrers(args.image, IN_TOTO_MEDIA_TYPE, allow_insecure_http=args.allow_insecure_http)
        if not statements:
            if not found:
                raise VerificationError(f"{args.image}: the registry holds no provenance for {digest}.")
            statements = [_payload_json(r.payload, f"{args.image}: provenance {r.descriptor.digest}") for r in found]
    elif args.manifest:
        digest = provenance.manifest_digest_of(Path(args.manifest).read_bytes())
    elif args.image_json:
        build = collect.read_image_build(args.image_json, {})
        digest = build.manifest_digest
        if not statements and build.layout is not None:
            statement = provenance.from_layout(build.layout, digest)
            if statement is None:
                raise VerificationError(f"{build.layout}: the OCI layout holds no provenance for {digest}.")
            statements = [statement]
    elif args.digest:
        digest = args.digest
    else:
        raise UserError("verify-provenance: give --digest, --manifest, --image-json or --image.")
    if not statements:
        raise UserError(
            "verify-provenance: give the statement file (or --image-json / --image to read it from the layout / registry)."
        )
    for statement in statements:  # NB: every one must be about this image, not just some
        subject = provenance.verify_statement(statement, digest)
        print(f"ok: {subject.get('name')} sha256:{subject['digest']['sha256']} (unsigned statement)")
    return 0


def _payload_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise VerificationError(f"{what}: not JSON ({e}).") from e


def aws_region_configured() -> bool:
    return aws_region(None, os.environ) is not None


def looks_like_image_reference(text: str) -> bool:
    """`host[:port]/repo[:tag|@digest]`: docker's rule, the first part names a host."""
    host, slash, _ = text.partition("/")
    return bool(slash) and ("." in host or ":" in host or host == "localhost")


def fetch_records(source: str, args: argparse.Namespace) -> List[Record]:
    """Records from beside the artifacts: an s3:// prefix, an image reference, or a SageMaker job."""
    # NB: imported here: these need urllib3/boto3, and the local commands need only the stdlib.
    from mlbuild.lineage import remote
    from mlbuild.sagemaker.aws import Clients

    if source.startswith("s3://"):
        return remote.s3_records(source, Clients.create(args.region, os.environ).s3)
    if source.startswith("arn:"):
        if ":training-job/" not in source:
            raise UserError(
                f"{source!r}: only SageMaker training job ARNs (arn:aws:sagemaker:...:training-job/NAME) lead to records."
            )
        clients = Clients.create(args.region or source.split(":")[3] or None, os.environ)
        return remote.job_records(source, clients.sagemaker, clients.s3)
    if looks_like_image_reference(source):
        return remote.image_records(source, allow_insecure_http=args.allow_insecure_http)
    if HEX64.fullmatch(bare_hex(source)):
        clients = Clients.create(args.region, os.environ)
        return remote.hash_records(bare_hex(source), clients.sagemaker, clients.s3)
    if not JOB_NAME.fullmatch(source):
        raise UserError(
            f"{source!r}: not an s3:// URI, an image reference (registry/repo@sha256:...), a full PEX sha256 or image "
            "digest, or a job name."
        )
    clients = Clients.create(args.region, os.environ)
    return remote.job_records(source, clients.sagemaker, clients.s3)


def _not_found_locally(query: str, store: Store) -> NotFoundError:
    """A query that is no hash: say so plainly, and how to see what the store holds."""
    records = store.records()
    if any(r.pipeline == query for r in records):
        return NotFoundError(
            f"{query!r} is a pipeline address, not a record. Fix: list its runs with `{RUNS_COMMAND} {query}`."
        )
    return NotFoundError(
        f"{query!r} is neither a record id or digest prefix (6+ hex characters) nor a job name found in the "
        f"lineage store {store.root} ({len(records)} record(s)). Fix: list what exists with `{RUNS_COMMAND}`, "
        "then inspect a record id from that list."
    )


def inspect_command(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        found = graph.lineage(store, args.query)
    except NotFoundError as not_found:
        query = args.query.strip()
        h = bare_hex(query)
        region = args.region or aws_region_configured()
        # NB: a full PEX sha256 or image digest can be searched for (job tags); a prefix can't.
        searchable = HEX64.fullmatch(h) and region
        if args.local_only or (is_hex(h) and not searchable):
            raise
        remote_kind = query.startswith(("s3://", "arn:")) or looks_like_image_reference(query)
        if not is_hex(h) and not remote_kind and (not region or not JOB_NAME.fullmatch(query)):
            # NB: a bare word could only be a SageMaker job name, and without a region there is
            # nowhere to look it up: no detour into AWS configuration.
            raise _not_found_locally(query, store) from None
        # NB: a fresh clone has no records; the job's S3 folder or the image's registry does.
        try:
            fetched = fetch_records(args.query, args)
        except MLBuildError as e:
            raise NotFoundError(f"{not_found} Looking beside the artifact failed too: {e}") from e
        for record in fetched:
            store.put(record)
        console.say(f"fetched {len(fetched)} record(s) for {args.query} into {store.root}")
        found = graph.lineage(Store(store.root, store.inboxes), args.query)
    if args.json:
        _print_json(inspect.lineage_json(found))
    else:
        print(inspect.format_lineage(found), end="")
    return 0


def _store(args: argparse.Namespace) -> Store:
    return Store(args.lineage_dir, strict=args.strict) if args.lineage_dir else Store.configured(strict=args.strict)


def fetch_command(args: argparse.Namespace) -> int:
    store = _store(args)
    fetched = fetch_records(args.source, args)
    for record in fetched:
        print(f"{store.put(record)}  {record.kind} {record.pipeline}")
    console.say(f"{len(fetched)} record(s) from {args.source} in {store.root}")
    return 0


def runs_command(args: argparse.Namespace) -> int:
    store = _store(args)
    records = compare.runs(store, args.pipeline)
    if not records:
        of = f" of {args.pipeline!r}" if args.pipeline else ""
        raise UserError(f"no runs{of} in {store.root}. Fix: `./pants run <pipeline target>` records one.")
    if args.json:
        _print_json(compare.runs_json(records))
    else:
        print(compare.runs_table(records), end="")
    return 0


def diff_command(args: argparse.Namespace) -> int:
    store = _store(args)
    d = compare.diff(store.get(args.a), store.get(args.b))
    if args.json:
        _print_json(d)
    else:
        print(compare.format_diff(d), end="")
    return 0


def previous_command(args: argparse.Namespace) -> int:
    store = _store(args)
    before = store.get(args.before) if args.before else None
    _print_json(compare.previous_metrics(store, args.pipeline, before))
    return 0


def plot_command(args: argparse.Namespace) -> int:
    data = plot.plot_metrics(compare.runs(_store(args), args.pipeline), args.metric, args.width, args.height)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(args.output)
    return 0


def verify_rebuild_command(args: argparse.Namespace) -> int:
    store = _store(args)
    options = verify.Options(repo=args.repo, keep=args.keep, reuse_cache=args.reuse_cache)
    if not args.json:
        print(verify.verify(store, args.query, options))
        return 0
    try:
        _print_json({"query": args.query, "verified": True, "message": verify.verify(store, args.query, options)})
    except MLBuildError as e:  # NB: machines read stdout; every outcome is JSON there
        differences = [
            {"what": d.what, "recorded": d.recorded, "rebuilt": d.rebuilt, "why": d.why}
            for d in getattr(e, "differences", [])
        ]
        _print_json(
            {
                "query": args.query,
                "verified": False,
                "message": str(e),
                "differences": differences,
                "exit_code": e.exit_code,
            }
        )
        return console.fail(e, e.exit_code)
    return 0


def add_commands(sub: Any) -> None:
    """The lineage verbs, on `sub` (the `./pants mlbuild` tree's subparsers)."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        flags.LINEAGE_DIR,
        type=Path,
        help="the lineage store (default: $MLBUILD_LINEAGE_DIR or ./.mlbuild/lineage, taking in ./dist/mlbuild/lineage)",
    )
    store.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 3) on a corrupt record file instead of skipping it with a warning",
    )

    def remote_options(p: argparse.ArgumentParser) -> None:
        flags.add_region(p, "AWS_REGION; for job names and s3://")
        flags.add_allow_insecure_http(p)

    i = flags.verb(
        sub,
        "inspect",
        "the lineage of a hash, prefix, job name or image reference",
        ["inspect 3f2a9c", "inspect churn-train-3f9a1c2b7d4e --json", "inspect 127.0.0.1:5000/ml/churn@sha256:<hex>"],
        EXIT_CODES,
        parents=[store],
    )
    i.add_argument(
        "query",
        help="hash, sha256:hash, >=6-hex prefix, job name, registry/repo@sha256:... (not in the store: fetched from beside it)",
    )
    flags.add_json(i, "the lineage")
    i.add_argument(
        "--local-only",
        action="store_true",
        help="don't look beside the artifact (S3, registry) when the store lacks it",
    )
    remote_options(i)
    i.set_defaults(run=inspect_command)

    h = flags.verb(
        sub,
        "fetch",
        "copy records into the store from an s3:// prefix, an image reference or a SageMaker job",
        ["fetch churn-train-3f9a1c2b7d4e", "fetch s3://bucket/models/churn-train-3f9a1c2b7d4e/mlbuild-lineage/"],
        EXIT_CODES,
        parents=[store],
    )
    h.add_argument("source", help="s3://BUCKET/PREFIX, REGISTRY/REPO@sha256:..., a job name or ARN, or a full sha256")
    remote_options(h)
    h.set_defaults(run=fetch_command)

    s = flags.verb(
        sub,
        "runs",
        "a pipeline's runs and their metrics, oldest first (every pipeline's without one)",
        ["runs", "runs src/python/pipelines/churn:train --json"],
        EXIT_CODES,
        parents=[store],
    )
    s.add_argument(
        "pipeline", nargs="?", help="a pipeline address, e.g. src/python/pipelines/churn:train (default: all)"
    )
    flags.add_json(s, "the runs")
    s.set_defaults(run=runs_command)

    d = flags.verb(
        sub,
        "diff",
        "what changed between two records",
        ["diff 3f2a9c 7be01d", "diff 3f2a9c churn-train-3f9a1c2b7d4e --json"],
        EXIT_CODES,
        parents=[store],
    )
    d.add_argument("a", help="a record (hash, prefix or job name)")
    d.add_argument("b", help="another record")
    flags.add_json(d, "the differences")
    d.set_defaults(run=diff_command)

    v = flags.verb(
        sub,
        "previous",
        "the metrics of the latest earlier successful run (always JSON, or null)",
        ["previous src/python/pipelines/churn:train --before 3f2a9c"],
        EXIT_CODES,
        parents=[store],
    )
    v.add_argument("pipeline")
    v.add_argument("--before", help="a record (hash or job name); default: the latest of all")
    v.set_defaults(run=previous_command)

    p = flags.verb(
        sub,
        "plot",
        "a PNG chart of metrics across a pipeline's runs, each run labelled by record id, time and revision",
        ["plot src/python/pipelines/churn:train --metric accuracy --output dist/churn.png"],
        EXIT_CODES,
        parents=[store],
    )
    p.add_argument("pipeline")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        help="a metric to chart, one panel each (repeat; default: every numeric one)",
    )
    p.add_argument(flags.OUTPUT, type=Path, required=True, help="the PNG file to write")
    p.add_argument("--width", type=int, help="pixels (default: wide enough to label up to 16 runs)")
    p.add_argument("--height", type=int, help="pixels (default: 140 + 200 per metric)")
    p.set_defaults(run=plot_command)

    f = flags.verb(
        sub,
        "verify-provenance",
        "check a provenance statement's subject is this image",
        [
            "verify-provenance --image-json dist/src.python.pipelines.churn/train.image.json",
            "verify-provenance --image 127.0.0.1:5000/ml/churn@sha256:<hex> --allow-insecure-http",
        ],
        EXIT_CODES,
    )
    f.add_argument("statement", nargs="?", help="a statement file (default: the one in the layout / registry)")
    f.add_argument("--digest", help="sha256:<manifest hex>")
    f.add_argument("--manifest", type=Path, help="the manifest file itself")
    f.add_argument(
        "--image-json", type=Path, help="the image summary (the statement defaults to the one in its layout)"
    )
    f.add_argument("--image", help="registry/repo@sha256:... (the statement defaults to the one pushed with it)")
    flags.add_allow_insecure_http(f)
    f.set_defaults(run=verify_command)

    b = flags.verb(
        sub,
        "verify",
        "rebuild an artifact from a clean checkout of its recorded revision and compare",
        ["verify sha256:<image digest>", "verify churn-train-3f9a1c2b7d4e --json"],
        EXIT_CODES,
        parents=[store],
    )
    b.add_argument(
        "query", help="an image digest, PEX sha256, record id, model sha256 or job name (a prefix is enough)"
    )
    b.add_argument("--repo", type=Path, help="the git repository to clone (default: the current directory's top level)")
    b.add_argument("--keep", action="store_true", help="keep the temporary checkout")
    b.add_argument(
        "--reuse-cache",
        action="store_true",
        help="let Pants reuse its process cache (faster; proves the inputs match, not that the build reproduces)",
    )
    flags.add_json(b, "the outcome (and any differences)")
    b.set_defaults(run=verify_rebuild_command)
