"""`python -m mlbuild.publish`: what `pants publish` runs for an ml_pipeline.

    python -m mlbuild.publish --layout DIR --ref NAME --config pipeline.yaml --address ADDR
        --data-dir DIR --pex-sha256 HEX [--image-digest sha256:HEX] --git-sha SHA --report-dir DIR
        [--backend auto|local|aws] [--registry HOST:PORT/REPO] [--wait] [--force] [name=value ...]

A thin shell: the config is loaded once here, the backend chosen and made, and
`workflow.publish` drives it through the `Backend` protocol (push, train, wait, report,
record). Writes `report.json` (`JobReport.to_dict()`, one schema for both backends) and
`report.md` (`job_report.render_markdown`, postable verbatim as a PR comment) to
--report-dir and prints the Markdown. Exit codes are decided here only, from mlbuild.names'
table: 0 ok, 2 user error (including a local job whose pipeline raised), 3 platform error,
4 job name conflict, 5 job failed (also a local job that failed otherwise, e.g. killed),
6 still running.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import List, Optional

from mlbuild import console, flags
from mlbuild.job_report import JobReport, render_markdown
from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.producers import configured_store, save
from mlbuild.lineage.record import source_from_revision
from mlbuild.lineage.source import current_source
from mlbuild.lineage.store import Store
from mlbuild.names import LOCAL_PUBLISH_DIR
from mlbuild.publish import workflow
from mlbuild.publish.backend import Backend, Publication, choose_backend
from mlbuild.runtime.config import load_config
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
    p.add_argument(
        "--image-digest", help="the image's manifest digest as the build reported it (default: read from the layout)"
    )
    p.add_argument("--git-sha", default="unknown")
    p.add_argument("--report-dir", type=Path, required=True)
    p.add_argument("--backend", choices=("auto", "local", "aws"), help="default: the config's sagemaker.backend")
    p.add_argument(
        "--registry", help="local backend: push to this registry (host:port/repo) instead of the local OCI store"
    )
    p.add_argument(
        "--local-root", type=Path, default=Path(LOCAL_PUBLISH_DIR), help="local backend: registry store and jobs"
    )
    p.add_argument("--wait", action="store_true", help="aws backend: follow the job to its end, streaming its log")
    p.add_argument("--force", action="store_true", help="train again even if an identical job exists")
    p.add_argument("assignments", nargs="*", metavar="name=value", help="hyperparameter overrides")
    return p


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    choice = choose_backend(config, args.backend, os.environ)
    for flag, folder in (("--report-dir", args.report_dir), ("--local-root", args.local_root)):
        _check_folder(flag, folder)
    publication = Publication(
        layout_dir=args.layout, ref=args.ref_name, config=config, address=args.address,
        overrides=parse_assignments(args.assignments, config), git_sha=args.git_sha, pex_sha256=args.pex_sha256,
        image_digest=args.image_digest, force=args.force,
    )  # fmt: skip
    args.report_dir.mkdir(parents=True, exist_ok=True)
    console.say(f"publishing {args.address} with the {choice} backend")
    backend = make_backend(choice, args)
    store = configured_store()
    published = workflow.publish(
        backend, publication, store,
        write_report=lambda report: write_report(args.report_dir, report),
        save_record=record_publish,
        package_records=package_records(store, args.image_digest) if choice == "aws" else (),
    )  # fmt: skip
    return backend.exit_code(published.job)


def make_backend(choice: str, args: argparse.Namespace) -> Backend:
    if choice == "aws":
        from mlbuild.publish.aws import AwsBackend
        from mlbuild.sagemaker.wait import FollowOptions

        return AwsBackend(os.environ, follow=FollowOptions() if args.wait else None)
    from mlbuild.publish.local import LocalBackend

    return LocalBackend(args.data_dir, args.local_root, args.registry, source=publish_source(args.git_sha))


def write_report(report_dir: Path, report: JobReport) -> None:
    report_json, report_md = report_dir / "report.json", report_dir / "report.md"
    markdown = render_markdown(report)
    report_json.write_text(report.to_json())
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


def package_records(store: Optional[Store], digest: Optional[str]) -> list:
    """The local package records of the published image: uploaded with the publish record."""
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
    return console.run_command(
        lambda: run(args), "mlbuild.publish", interrupted="a submitted SageMaker job keeps running."
    )
