"""`pants run --mlbuild-container --mlbuild-serve PIPELINE`: serve a model with the pipeline's image.

    python -m mlbuild.container_run.serve_cli --layout DIR [--ref R] --address ADDR --runs-dir DIR
        [--model PATH|HASH] [--workers N] [--transform INPUT --output DIR [transform options]]

The image's own `serve` runs in the sandbox as `docker run IMAGE serve` does (sandbox.py), on
loopback, until Ctrl-C; with `--transform` a batch transform over INPUT drives it instead, as
SageMaker's transform agent drives the container, and the server stops when it is done.

Which model: `--model` a run folder, a model folder or a job's model.tar.gz, or a hash that
the lineage store knows (a run record's id, its model's sha256, ...) and that leads to a
local run; by default the newest finished local run of the pipeline. Host side only: the
image never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from mlbuild import console, flags
from mlbuild.runtime import contract
from mlbuild.runtime.errors import UserError
from mlbuild.runtime.local_run import run_dir_parent

FAILED_SUFFIX = ".failed"


def model_of_run(run_dir: Path) -> Optional[Path]:
    """A finished run's model folder: `model/` holding files, in a run that did not fail."""
    model = run_dir / contract.MODEL_DIR
    if run_dir.name.endswith(FAILED_SUFFIX) or not model.is_dir() or not any(model.iterdir()):
        return None
    return model


def newest_local_model(runs_dir: Path, address: str) -> Path:
    parent = run_dir_parent(runs_dir, address)
    runs = sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.name) if parent.is_dir() else []
    for run in reversed(runs):
        model = model_of_run(run)
        if model is not None:
            return model
    raise UserError(
        f"no finished local run of {address} under {parent}. Fix: train one first (`./pants run {address}`), "
        "or give --mlbuild-model=PATH (a model folder or a job's model.tar.gz) or a hash."
    )


def model_by_hash(query: str) -> Path:
    """The model a lineage hash or job name leads to: a local run's `model/`, or a local job's
    `model.tar.gz` (the local publish backend's, under .mlbuild/local/jobs/<job>/output/)."""
    from mlbuild.lineage.store import Store

    records = Store.configured().find(query)
    for record in records:
        if record.kind == "run" and record.get("extra.run_dir"):
            model = model_of_run(Path(record.get("extra.run_dir")))
            if model is not None:
                return model
        archive = record.get("model.uri") if record.kind == "publish" else None
        if archive and "://" not in archive and Path(archive).is_file():
            return Path(archive)
    found = (
        f"{len(records)} records mention it, none a local run or job whose model is still on disk"
        if records
        else "the lineage store knows no such hash"
    )
    raise UserError(
        f"--model {query}: {found}. Fix: give a model folder or model.tar.gz path, a local job's name, or the hash of a local model."
    )


def choose_model(model: Optional[str], runs_dir: Path, address: str) -> Path:
    if model is None:
        return newest_local_model(runs_dir, address)
    path = Path(model)
    if not path.exists():
        return model_by_hash(model)
    if path.is_dir() and (path / contract.MODEL_DIR).is_dir():  # a run folder: its model/
        return path / contract.MODEL_DIR
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.container_run.serve_cli", description=__doc__.splitlines()[0])
    p.add_argument("--layout", type=Path, required=True, help="the pipeline image's OCI layout")
    p.add_argument(flags.REF_NAME, help="the image's ref name in the layout (default: its only image)")
    p.add_argument("--address", required=True, help="the ml_pipeline target, e.g. src/python/pipelines/churn:train")
    p.add_argument("--runs-dir", type=Path, required=True, help="where `pants run` keeps local runs")
    p.add_argument(
        "--model", help="a run/model folder, a model.tar.gz, or a lineage hash (default: the newest local run)"
    )
    p.add_argument(
        "--workers", type=int, default=max(1, os.cpu_count() or 1), help="server workers (default: one per CPU)"
    )
    p.add_argument("--transform", type=Path, metavar="INPUT", help="batch transform this file or folder, then stop")
    p.add_argument("--output", type=Path, help="with --transform: where `<input>.out` files go")
    p.add_argument("--content-type", default="text/csv")
    p.add_argument("--batch-strategy", default="MultiRecord", choices=("MultiRecord", "SingleRecord"))
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mlbuild.container_run.serve import serve_image
    from mlbuild.serving.model_source import model_folder

    args = _parser().parse_args(argv)

    def serve() -> int:
        if args.transform is not None and args.output is None:
            raise UserError("--transform needs --output DIR (where `<input>.out` files go).")
        model = choose_model(args.model, args.runs_dir, args.address)
        console.say(f"serving {args.address} with the model in {model}")
        with model_folder(model) as folder, serve_image(
            args.layout, args.ref_name, folder, workers=args.workers
        ) as url:
            if args.transform is not None:
                started = time.time()
                result = _transform(url, args)
                record_prediction(args, folder, started, [(r.input, r.output) for r in result.files])
                return 0
            print(f"mlbuild: {url}/ping and {url}/invocations are up (Ctrl-C stops)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:  # NB: Ctrl-C is how a server is meant to stop: success
                return 0

    return console.run_command(serve, "serve")


def _transform(url: str, args: argparse.Namespace) -> Any:
    """The batch transform through the server at `url`; its TransformResult (input → output files)."""
    from mlbuild.serving.transform import TransformConfig, run_transform

    config = TransformConfig(args.content_type, None, "Line", args.batch_strategy, 6, "Line", 1).validate()
    result = run_transform(url, args.transform, args.output, config, console.say)
    print(f"mlbuild: transformed {result.records} records from {len(result.files)} files into {args.output}")
    return result


def record_prediction(
    args: argparse.Namespace, model_dir: Path, started: float, files: Sequence[Tuple[Path, Path]]
) -> None:
    """A `predict` record: the model (by its files' checksum), the image, the inputs and every
    output file, so `inspect <sha256 of an .out file>` leads back to the model and what made it."""
    import datetime

    from mlbuild.lineage.digests import file_sha256, model_checksum, tree_checksum
    from mlbuild.lineage.producers import configured_store, save
    from mlbuild.lineage.record import make_record
    from mlbuild.oci.layout import read_layout

    store = configured_store()
    if store is None:
        return
    checksum = model_checksum(model_dir)
    parents = (
        sorted({r.id for r in store.find(checksum) if r.kind in ("run", "publish")}) if _known(store, checksum) else []
    )
    # NB: exactly the files this transform read and wrote, as the agent reports them.
    inputs, outputs = sorted(i for i, _ in files), sorted(o for _, o in files)
    stamp = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = make_record(
        "predict",
        args.address,
        job={"name": f"transform-{stamp}", "status": "Completed"},
        model={"checksum": checksum},
        image={"manifest_digest": read_layout(args.layout, args.ref_name).manifest_descriptor().digest},
        data=[
            {
                "name": str(p.relative_to(args.transform) if p != args.transform else p.name),
                "uri": p.resolve().as_uri(),
                "checksum": tree_checksum(p),
            }
            for p in inputs
        ],
        outputs=[
            {
                "name": str(p.relative_to(args.output)),
                "uri": p.resolve().as_uri(),
                "checksum": "sha256:" + file_sha256(p),
            }
            for p in outputs
        ],
        parents=parents or None,
    )
    record_id = save(record)
    if record_id:
        console.say(f"lineage: {record_id} (predictions; inspect any output's sha256 to get back to the model)")


def _known(store, checksum: str) -> bool:
    from mlbuild.lineage.errors import NotFoundError

    try:
        store.resolve(checksum)
        return True
    except NotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(main())
