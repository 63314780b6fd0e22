"""`python -m mlbuild.lineage.build_cli`: the lineage plumbing the build calls, apart from the user CLI.

    [--lineage-dir DIR] provenance --image-json X.image.json --output stmt.json [--labels F|JSON] [--label K=V ...]
               [--config F] [--subject-name REF] [--source-uri URI] [--pants-version V]
               [--mlbuild-version V] [--builder-id URI] [--record] [--attach]
    [--lineage-dir DIR] record --kind package|run|publish --record-file FILE|-
    [--lineage-dir DIR] record --kind package --image-json X.image.json [--labels F|JSON] [--pipeline A] [--config F]
    [--lineage-dir DIR] record --kind run --run-dir DIR --pipeline A [--parent ID] [--pex-sha256 H] [--image-digest D]
    [--lineage-dir DIR] record --kind publish --report-json F [--parent ID]

`pants package` runs `provenance --record --attach`: it writes the statement, stores it in the
layout as a referrer of the image and prints the package record's id.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from mlbuild import console, flags
from mlbuild.lineage import collect, provenance
from mlbuild.lineage.digests import file_sha256, sha256_hex
from mlbuild.lineage.errors import UserError
from mlbuild.lineage.record import Record, now
from mlbuild.lineage.store import Store


def load_json(source: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{source}: cannot read {what} ({e.strerror or e}).") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{source}: {what} is not UTF-8 JSON (byte {e.start}). Fix: write it as UTF-8.") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise UserError(f"{source}: {what} is not valid JSON ({e}).") from e


def _labels(args: argparse.Namespace) -> Optional[Dict[str, str]]:
    labels: Optional[Dict[str, str]] = None
    if args.labels:
        # NB: inline JSON or a file: the Pants glue has the labels as a dict already.
        value = json.loads(args.labels) if args.labels.lstrip().startswith("{") else load_json(args.labels, "labels")
        if not isinstance(value, dict):
            raise UserError("--labels: expected a JSON object of label to value.")
        labels = {str(k): str(v) for k, v in value.items()}
    for item in getattr(args, "label", None) or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--label {item!r}: expected KEY=VALUE.")
        labels = {**(labels or {}), key: value}
    return labels


def _image_build(args: argparse.Namespace) -> collect.ImageBuild:
    """The image build the summary describes, with the PEX built beside it when --pex-sha256 names one."""
    build = collect.read_image_build(args.image_json, _labels(args))
    if args.pex_sha256:
        build = dataclasses.replace(build, pex=sha256_hex(args.pex_sha256, "--pex-sha256"))
    return build


def _config_sha(args: argparse.Namespace) -> Optional[str]:
    if getattr(args, "config_sha256", None):
        return args.config_sha256
    if args.config and Path(args.config).is_file():
        return file_sha256(args.config)
    if args.config:
        raise UserError(f"--config {args.config}: no such file; pass --config-sha256 if it isn't here.")
    return None


def record_command(args: argparse.Namespace, store: Store) -> int:
    if args.record_file:
        body = load_json(args.record_file, "record body")
        if not isinstance(body, dict):
            raise UserError(f"{args.record_file}: a record body must be a JSON object.")
        if body.setdefault("kind", args.kind) != args.kind:
            raise UserError(f"{args.record_file}: `kind` is {body['kind']!r} but --kind is {args.kind!r}.")
        body.setdefault("created", now())
        record = Record(body)
    elif args.kind == "package" and args.image_json:
        build = _image_build(args)
        record = collect.package_record(build, args.pipeline, args.config, _config_sha(args))
    elif args.kind == "run" and args.run_dir:
        if not args.pipeline:
            raise UserError("record --kind run --run-dir: --pipeline is required.")
        record = collect.run_record(args.run_dir, args.pipeline, args.parent, args.pex_sha256, args.image_digest)
    elif args.kind == "publish" and args.report_json:
        record = collect.publish_record(load_json(args.report_json, "report"), args.parent)
    else:
        raise UserError(
            f"record --kind {args.kind}: give --record-file, or --image-json (package), --run-dir (run), --report-json (publish)."
        )
    print(store.put(record))
    return 0


def provenance_command(args: argparse.Namespace, store: Store) -> int:
    build = _image_build(args)
    context = provenance.BuildContext(
        subject_name=args.subject_name,
        config_path=args.config,
        config_sha256=_config_sha(args),
        source_uri=args.source_uri,
        pants_version=args.pants_version,
        mlbuild_version=args.mlbuild_version,
        builder_id=args.builder_id,
    )
    payload = provenance.statement_bytes(provenance.statement(build, context))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(payload)
    attached = None
    if args.attach:
        if build.layout is None:
            raise UserError(f"{args.image_json}: names no `layout`; --attach needs the OCI layout beside the summary.")
        # NB: the oci-archive stays image-only: skopeo and podman read an archive without a
        # ref name only when it holds one manifest, and that is how people load it.
        desc = provenance.attach(build, payload, build.layout)
        attached = {
            "digest": desc.digest,
            "statement_sha256": file_sha256(args.output),
            "subject": build.manifest_digest,
        }
    if args.record:
        print(store.put(collect.package_record(build, None, args.config, context.config_sha256, provenance=attached)))
    return 0


def add_commands(sub: Any) -> None:
    """The plumbing subcommands, on `sub` (an argparse subparsers object)."""

    def label_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--labels", help="image labels: a JSON file or inline JSON object (default: from the OCI layout)"
        )
        p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="one label (repeat)")
        p.add_argument("--config", help="the pipeline config file (its sha256 is recorded)")
        p.add_argument("--config-sha256", help="the config's sha256, if the file isn't at hand")

    r = sub.add_parser("record", help="add a record; prints its id")
    r.add_argument("--kind", required=True, choices=("package", "run", "publish"))
    r.add_argument(flags.RECORD_FILE, help="a record body (JSON file, or - for stdin)")
    r.add_argument("--image-json", type=Path, help="package: the `<name>.image.json` summary")
    r.add_argument("--run-dir", type=Path, help="run: a local run directory")
    r.add_argument("--report-json", help="publish: a SageMaker report JSON")
    r.add_argument("--pipeline", help="the pipeline address (default: from the image labels)")
    r.add_argument("--parent", action="append", default=[], help="a record id this one derives from (repeat)")
    r.add_argument("--pex-sha256", help="run: the PEX it ran; package: the PEX built beside the image")
    r.add_argument("--image-digest", help="run: the image it ran")
    label_options(r)

    g = sub.add_parser("provenance", help="write an in-toto/SLSA v1 provenance statement for an image")
    g.add_argument("--image-json", type=Path, required=True)
    g.add_argument(flags.OUTPUT, type=Path, required=True, help="the statement file to write")
    g.add_argument("--subject-name", help="the image reference to name (default: the summary's ref)")
    g.add_argument("--source-uri", default="git+file:.", help="e.g. git+https://github.com/org/repo")
    g.add_argument("--pants-version", default="unknown")
    g.add_argument("--mlbuild-version", default="unknown")
    g.add_argument("--builder-id", default=provenance.DEFAULT_BUILDER_ID)
    g.add_argument("--pex-sha256", help="the PEX built beside the image (a byproduct of the same build)")
    g.add_argument("--record", action="store_true", help="also add the package record; prints its id")
    g.add_argument(
        "--attach",
        action="store_true",
        help="also store the statement in the OCI layout, as an OCI 1.1 referrer of the image",
    )
    label_options(g)


def run(args: argparse.Namespace, store: Store) -> int:
    if args.command == "record":
        return record_command(args, store)
    return provenance_command(args, store)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlbuild.lineage.build_cli", description=__doc__.splitlines()[0])
    parser.add_argument(
        flags.LINEAGE_DIR, type=Path, help="store root (default: $MLBUILD_LINEAGE_DIR or ./.mlbuild/lineage)"
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return console.run_command(
        lambda: run(args, Store(args.lineage_dir) if args.lineage_dir else Store.configured()),
        "mlbuild.lineage.build_cli",
    )


if __name__ == "__main__":
    sys.exit(main())
