"""`python -m mlbuild.publish`: what `pants publish` runs for an ml_pipeline.

    python -m mlbuild.publish --layout DIR --ref NAME --config pipeline.yaml --address ADDR
        --data-dir DIR --pex-sha256 HEX [--image-digest sha256:HEX] --git-sha SHA --report-dir DIR
        [--backend auto|local|aws] [--registry HOST:PORT/REPO] [--wait] [--force] [name=value ...]

A thin shell: the config is loaded once here, and the backends are typed calls
(`aws.publish_aws` returns the job's `Report`, `local.publish_local` its `LocalJob`); the
lineage record is built from what they return. Writes `report.json` (one schema for both
backends, publish/report.py) and `report.md` (postable verbatim as a PR comment) to
--report-dir and prints the Markdown. Exit codes are decided here only, from mlbuild.names'
table: 0 ok, 2 user error (including a local job whose pipeline raised), 3 platform error,
4 job name conflict, 5 job failed (also a local job that failed otherwise, e.g. killed),
6 still running.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional

from mlbuild import console, flags
from mlbuild.lineage.collect import publish_record
from mlbuild.lineage.compare import previous_metrics
from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.producers import configured_store, save
from mlbuild.lineage.record import source_from_revision
from mlbuild.lineage.source import current_source
from mlbuild.names import LOCAL_PUBLISH_DIR
from mlbuild.publish.backend import choose_backend
from mlbuild.publish.report import aws_report
from mlbuild.runtime.config import PipelineConfig, load_config
from mlbuild.runtime.errors import MLBuildError, UserError
from mlbuild.runtime.hyperparameters import parse_assignments


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.publish", description=__doc__.splitlines()[0])
    p.add_argument("--layout", type=Path, required=True, help="the pipeline image's OCI layout")
    p.add_argument(flags.REF_NAME, help="the image's ref name in the layout")
    p.add_argument("--config", type=Path, required=True, help="the pipeline's YAML config")
    p.add_argument("--address", required=True, help="the ml_pipeline target's address")
    p.add_argument("--data-dir", type=Path, required=True, help="the sample data folder (local backend)")
    p.add_argument("--pex-sha256", required=True)
    p.add_argument("--image-digest", help="the image's manifest digest as the build reported it (default: read from the layout)")
    p.add_argument("--git-sha", default="unknown")
    p.add_argument("--report-dir", type=Path, required=True)
    p.add_argument("--backend", choices=("auto", "local", "aws"), help="default: the config's sagemaker.backend")
    p.add_argument("--registry", help="local backend: push to this registry (host:port/repo) instead of the local OCI store")
    p.add_argument("--local-root", type=Path, default=Path(LOCAL_PUBLISH_DIR), help="local backend: registry store and jobs")
    p.add_argument("--wait", action="store_true", help="aws backend: follow the job to its end, streaming its log")
    p.add_argument("--force", action="store_true", help="train again even if an identical job exists")
    p.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")
    return p


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    backend = choose_backend(config, args.backend, os.environ)
    for flag, folder in (("--report-dir", args.report_dir), ("--local-root", args.local_root)):
        _check_folder(flag, folder)
    overrides = parse_assignments(args.assignments, config)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    console.say(f"publishing {args.address} with the {backend} backend")
    if backend == "aws":
        return publish_to_aws(args, config, overrides)
    return publish_locally(args, config, overrides)


def publish_to_aws(args: argparse.Namespace, config: PipelineConfig, overrides: Mapping[str, str]) -> int:
    from mlbuild.publish import aws

    store = configured_store()
    publication = aws.publish_aws(
        layout_dir=args.layout, ref=args.ref_name, config=config, address=args.address, git_sha=args.git_sha,
        pex_sha256=args.pex_sha256, overrides=overrides, environ=os.environ, image_digest=args.image_digest,
        wait=args.wait, force=args.force, previous_metrics=previous_metrics(store, args.address) if store is not None else None,
    )
    # NB: the report is written and the record made before a failed job becomes an exit code.
    write_report(args.report_dir, aws_report(publication.report), publication.report.to_markdown())
    record = publish_record(
        publication.report.to_dict(),
        image_digest=publication.image_digest,
        hyperparameters=publication.hyperparameters,
        data=aws.pinned_s3_data(config, publication.clients.s3),
    )
    record_publish(record)
    aws.upload_records([*package_records(publication.image_digest), record], publication.report, publication.clients.s3)
    publication.raise_for_status()
    return 0


def publish_locally(args: argparse.Namespace, config: PipelineConfig, overrides: Mapping[str, str]) -> int:
    from mlbuild.publish import local

    job = local.publish_local(
        layout_dir=args.layout, ref=args.ref_name, config=config, config_path=args.config, address=args.address,
        data_dir=args.data_dir, overrides=overrides, root=args.local_root, image_digest=args.image_digest,
        registry=args.registry, force=args.force, log=console.say,
    )
    previous = local.previous_metrics(args.local_root, args.address, exclude=job.name)
    report = local.local_report(job, previous, git_sha=args.git_sha, pex_sha256=args.pex_sha256)
    record_publish(local.local_record(job, publish_source(args.git_sha)))
    write_report(args.report_dir, report, local.local_markdown(report))
    return local.job_exit_code(job)


def write_report(report_dir: Path, report: Mapping[str, Any], markdown: str) -> None:
    report_json, report_md = report_dir / "report.json", report_dir / "report.md"
    report_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report_md.write_text(markdown)
    print(markdown, end="", flush=True)
    console.say(f"report written to {report_json} and {report_md}")


def _check_folder(flag: str, folder: Path) -> None:
    """A folder argument that is (or sits under) a file is the caller's mistake: say which."""
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{flag} {folder}: {path} is a file, not a folder. Fix: pass a folder path.")
            if not os.access(path, os.W_OK):
                raise UserError(f"{flag} {folder}: {path} is not writable. Fix: pass a folder you can write to.")
            return


def publish_source(git_sha: str) -> Optional[dict]:
    """The revision published: --git-sha (`<sha>[-dirty]`, from the Pants rule), else the
    environment or git in the working directory (lineage.source), else None."""
    if git_sha and git_sha != "unknown":
        return source_from_revision(git_sha)
    return current_source(os.environ)


def package_records(image_digest: Optional[str]) -> list:
    """The local package records of the published image: uploaded with the publish record."""
    store, digest = configured_store(), image_digest
    if store is None or not digest:
        return []
    try:
        return [r for r, _ in store.mentioning(bare_hex(digest)) if r.kind == "package"]
    except MLBuildError:
        return []


def record_publish(record) -> None:
    record_id = save(record)
    if record_id:
        console.say(f"lineage record {record_id}")


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return console.run_command(lambda: run(args), "mlbuild.publish", interrupted="a submitted SageMaker job keeps running.")
