"""`python -m mlbuild.publish`: what `pants publish` runs for an ml_pipeline.

    python -m mlbuild.publish --layout DIR --ref NAME --config pipeline.yaml --address ADDR
        --data-dir DIR --pex-sha256 HEX --git-sha SHA --report-dir DIR
        [--backend auto|local|aws] [--registry HOST:PORT/REPO] [--wait] [--force] [name=value ...]

Writes `report.json` and `report.md` (postable verbatim as a PR comment) to --report-dir and
prints the Markdown. Exit codes are decided here only: 0 ok, 2 user error (including a local
job whose pipeline raised), 3 platform error, and mlbuild.sagemaker's codes (4 name conflict,
5 job failed, 6 still running) for AWS; 5 also for a local job that failed otherwise (killed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from mlbuild.lineage.collect import publish_record
from mlbuild.lineage.compare import previous_metrics
from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.producers import configured_store, save
from mlbuild.lineage.record import source_from_revision
from mlbuild.lineage.source import current_source
from mlbuild.publish.backend import choose_backend
from mlbuild.runtime.config import load_config
from mlbuild.names import LOCAL_PUBLISH_DIR
from mlbuild.runtime.errors import MLBuildError, UserError
from mlbuild.runtime.hyperparameters import parse_assignments



def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.publish", description=__doc__.splitlines()[0])
    p.add_argument("--layout", type=Path, required=True, help="the pipeline image's OCI layout")
    p.add_argument("--ref", help="the image's name in the layout")
    p.add_argument("--config", type=Path, required=True, help="the pipeline's YAML config")
    p.add_argument("--address", required=True, help="the ml_pipeline target's address")
    p.add_argument("--data-dir", type=Path, required=True, help="the sample data folder (local backend)")
    p.add_argument("--pex-sha256", required=True)
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
    from mlbuild.publish import aws, local

    config = load_config(args.config)
    backend = choose_backend(config, args.backend, os.environ)
    for flag, folder in (("--report-dir", args.report_dir), ("--local-root", args.local_root)):
        _check_folder(flag, folder)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    report_json, report_md = args.report_dir / "report.json", args.report_dir / "report.md"
    print(f"mlbuild: publishing {args.address} with the {backend} backend", file=sys.stderr)
    if backend == "aws":
        previous = _previous_metrics_file(args.address, args.report_dir)
        exit_code = aws.publish_aws(
            layout_dir=args.layout, ref=args.ref, config=config, config_path=args.config, address=args.address,
            git_sha=args.git_sha, pex_sha256=args.pex_sha256, assignments=args.assignments,
            report_json=report_json, report_md=report_md, environ=os.environ, wait=args.wait, force=args.force,
            previous_metrics=previous,
        )
        if report_json.exists():
            report = json.loads(report_json.read_text())
            record = publish_record(report, **aws.record_inputs(config, args.assignments, config.sagemaker.region, os.environ))
            record_publish(record)
            aws.upload_records([*package_records(record), record], report, config.sagemaker.region, os.environ)
        return exit_code
    job = local.publish_local(
        layout_dir=args.layout, ref=args.ref, config=config, config_path=args.config, address=args.address,
        data_dir=args.data_dir, overrides=parse_assignments(args.assignments, config), root=args.local_root,
        registry=args.registry, force=args.force, log=lambda line: print(f"mlbuild: {line}", file=sys.stderr),
    )
    report = local.local_report(job, local.previous_metrics(args.local_root, args.address, exclude=job.name))
    markdown = local.local_markdown(report)
    record_publish(local.local_record(job, publish_source(args.git_sha)))
    report_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report_md.write_text(markdown)
    print(markdown, end="")
    print(f"mlbuild: report written to {report_json} and {report_md}", file=sys.stderr)
    return local.job_exit_code(job)


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


def _previous_metrics_file(address: str, report_dir: Path) -> Optional[Path]:
    """The last successful run's metrics from the lineage store, for the report's comparison."""
    store = configured_store()
    metrics = previous_metrics(store, address) if store is not None else None
    if not metrics:
        return None
    path = report_dir / "previous-metrics.json"
    path.write_text(json.dumps(metrics, sort_keys=True) + "\n")
    return path


def package_records(published) -> list:
    """The local package records of the published image: uploaded with the publish record."""
    store, digest = configured_store(), published.get("image.manifest_digest")
    if store is None or not digest:
        return []
    try:
        return [r for r, _ in store.mentioning(bare_hex(digest)) if r.kind == "package"]
    except MLBuildError:
        return []


def record_publish(record) -> None:
    record_id = save(record)
    if record_id:
        print(f"mlbuild: lineage record {record_id}", file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except MLBuildError as e:  # NB: OCI, registry and Debian errors are MLBuildErrors too.
        print(f"mlbuild: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # NB: the machine (a full disk, a vanished folder): one line, not a traceback
        print(f"mlbuild: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 3
