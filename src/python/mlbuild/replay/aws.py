"""The AWS side of a replay: DescribeTrainingJob, the model artifact and the S3 channels.

Each channel is pulled with checksums (mlbuild.sagemaker.s3_data) into
`<cache>/replay/data/<listing checksum hex>/<channel>/`, keyed by the listing checksum the
job's publish record pins: a later replay of the same data lists the prefix, finds the
folder and downloads nothing. A listing that no longer matches the pin is an error that
names the keys changed since the pinned pull (when this machine has that pull).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from mlbuild.replay.job import ReplayJob
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.aws import Clients, describe_training_job, etag, translate
from mlbuild.sagemaker.links import split_s3_uri
from mlbuild.sagemaker.s3_data import listing_checksum, pull_channel, relative_path
from mlbuild.stale_temps import make_temp_dir, remove_stale_temps, remove_tree

MANIFEST_SUFFIX = ".manifest.json"  # NB: what s3_data.pull_channel writes beside a channel folder


def clients(region: Optional[str], environ: Mapping[str, str]) -> Clients:
    return Clients.create(region, environ)


def describer(c: Clients) -> Callable[[str], Optional[Dict[str, Any]]]:
    return lambda name: describe_training_job(c.sagemaker, name)


def model_fetcher(c: Clients) -> Callable[[ReplayJob, Path], Path]:
    def fetch(job: ReplayJob, work: Path) -> Path:
        if not job.model:
            raise UserError(
                f"SageMaker job {job.name}: no ModelArtifacts.S3ModelArtifacts, so nothing to compare with. Fix: replay a completed job."
            )
        bucket, key = split_s3_uri(job.model)
        target = Path(work) / "job-model.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            with translate("GetObject"):
                c.s3.download_file(bucket, key, str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    return fetch


def data_fetcher(c: Clients, cache_dir: Path) -> Callable[[ReplayJob, Any], Dict[str, Path]]:
    def fetch(job: ReplayJob, config: Any) -> Dict[str, Path]:
        root = Path(cache_dir) / "replay" / "data"
        return {name: cached_channel(c.s3, root, job, name, uri) for name, uri in sorted(job.data_sources.items())}

    return fetch


def cached_channel(s3: Any, root: Path, job: ReplayJob, channel: str, uri: str) -> Path:
    """The channel's S3 prefix as a local folder in the cache, checked against the job's pin."""
    now = listing_checksum(s3, uri)
    pinned = job.data.get(channel)
    if pinned and pinned != now:
        raise UserError(
            f"SageMaker job {job.name}: channel {channel!r} ({uri}) changed since the job: {changed_keys(root, pinned, channel, s3, uri)}. "
            "Fix: restore the objects, or replay on other data with --sample-data DIR."
        )
    folder = root / now.split(":", 1)[1] / channel
    if folder.is_dir():
        return folder  # NB: keyed by the listing: the same keys, ETags and sizes, already pulled
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder.parent)
    tmp = make_temp_dir(folder.parent, f".{channel}.incomplete")
    try:
        pull_channel(s3, uri, tmp / channel)
        os.replace(tmp / f"{channel}{MANIFEST_SUFFIX}", folder.parent / f"{channel}{MANIFEST_SUFFIX}")
        os.rename(tmp / channel, folder)
    finally:
        if tmp.exists():
            remove_tree(tmp)
    return folder


def changed_keys(root: Path, pinned: str, channel: str, s3: Any, uri: str) -> str:
    """Which keys differ from the pinned listing, from the manifest of its earlier pull here."""
    manifest = root / pinned.split(":", 1)[1] / f"{channel}{MANIFEST_SUFFIX}"
    try:
        before = {rel: (e["etag"], e["size"]) for rel, e in json.loads(manifest.read_text())["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its listing checksum is not the pinned {pinned[:19]}… (no earlier pull of that listing here to name the keys)"
    bucket, prefix = split_s3_uri(uri)
    with translate("ListObjectsV2"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        objects = [o for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    after = {relative_path(prefix, o["Key"]): (etag(o.get("ETag")), int(o["Size"])) for o in objects}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return "changed keys: " + ", ".join(changed)
