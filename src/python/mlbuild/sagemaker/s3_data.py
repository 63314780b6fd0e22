"""Pull a channel's S3 prefix to a local folder, so a local run can use the full data.

    <dest>/<channel's local path>/...          the objects, relative to the prefix
    <dest>/<channel's local path>.manifest.json  {source, files: {path: {key, etag, size, sha256}}}

A file whose ETag and size are unchanged since the last pull, and whose local bytes
still hash to the recorded sha256, is skipped; files that left the prefix are removed
(only files the manifest tracks). `<dest>` then works as the local runner's
`--data-dir`. Objects are streamed to disk and hashed on the way; none is held in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import ConfigError, DataError
from mlbuild.sagemaker.aws import etag, translate
from mlbuild.sagemaker.links import split_s3_uri

CHUNK = 1 << 20
MANIFEST_VERSION = 1


@dataclass
class PullResult:
    channel: str
    source: str
    directory: Path
    manifest: Path
    downloaded: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    bytes_downloaded: int = 0


def stream_sha256(chunks: Iterable[bytes], sink: Optional[Any] = None) -> tuple:
    """(sha256 hex, size) of a chunk stream, copying it to `sink` if given."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def s3_object_sha256(s3: Any, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    with translate("GetObject"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        return stream_sha256(body.iter_chunks(CHUNK))[0]


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return stream_sha256(iter(lambda: f.read(CHUNK), b""))[0]


def relative_path(prefix: str, key: str) -> str:
    # NB: an S3Prefix matches keys by *string* prefix; SageMaker documents prefixes ending
    # in "/" (s3://bucket/exampleprefix/), and there paths are relative to the prefix. A
    # prefix without the "/" is cut at its last "/" instead (`data/train` keeps
    # `train/part-0.csv`), so no two keys can land on one path; it also matches
    # `data/trainer/`, so give channel URIs a trailing "/".
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html
    base = prefix[: prefix.rfind("/") + 1]
    rel = key[len(base) :]
    # NB: S3 keys are arbitrary strings; "..", "." and empty segments would leave the folder
    # or alias another file once they become a local path.
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise DataError(f"s3 key {key!r} would land outside the channel folder. Fix: rename the object in S3.")
    return rel


def listing_checksum(s3: Any, source: str) -> str:
    """`sha256:` of a channel's listing (relative path, ETag, size per object, sorted).

    NB: what pins S3 data without reading it: an object whose bytes change gets a new ETag.
    It is not the tree checksum of the same files on disk (that hashes the bytes).
    """
    bucket, prefix = split_s3_uri(source)
    lines = sorted(
        f"{relative_path(prefix, obj['Key'])}\t{etag(obj.get('ETag'))}\t{int(obj['Size'])}\n"
        for obj in _list(s3, bucket, prefix)
        if not obj["Key"].endswith("/")
    )
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def pull_channel(s3: Any, source: str, directory: Path, *, log: Callable[[str], None] = lambda _: None) -> PullResult:
    bucket, prefix = split_s3_uri(source)
    directory = Path(directory)
    manifest_path = directory.parent / f"{directory.name}.manifest.json"
    result = PullResult(directory.name, source, directory, manifest_path)
    old = _read_manifest(manifest_path, source)
    new: Dict[str, Dict[str, Any]] = {}
    for obj in _list(s3, bucket, prefix):
        if obj["Key"].endswith("/"):
            continue  # NB: zero-byte "folder" markers made by the console
        rel = relative_path(prefix, obj["Key"])
        entry = {"key": obj["Key"], "etag": etag(obj.get("ETag")), "size": int(obj["Size"])}
        target = directory / rel
        recorded = old.get(rel)
        if recorded and _unchanged(recorded, entry, target):
            new[rel] = recorded
            result.skipped.append(rel)
            continue
        entry["sha256"] = _download(s3, bucket, obj["Key"], target, entry["size"])
        new[rel] = entry
        result.downloaded.append(rel)
        result.bytes_downloaded += entry["size"]
        log(f"downloaded s3://{bucket}/{obj['Key']} -> {target}")
    for rel in sorted(set(old) - set(new)):
        (directory / rel).unlink(missing_ok=True)
        result.removed.append(rel)
    _write_manifest(manifest_path, source, new)
    return result


def pull_config(
    s3: Any,
    config: PipelineConfig,
    dest: Path,
    channels: Sequence[str] = (),
    *,
    log: Callable[[str], None] = lambda _: None,
) -> List[PullResult]:
    """Pull every channel (or the named ones) of a pipeline config under `dest`."""
    known = {c.name: c for c in config.channels}
    for name in channels:
        if name not in known:
            raise ConfigError(
                f"{config.source}: no channel {name!r} (channels: {', '.join(known) or 'none'}). Fix: pick one of those."
            )
    results = []
    for channel in config.channels:
        if channels and channel.name not in channels:
            continue
        if not channel.s3:
            raise ConfigError(
                f"{config.source}: `channels.{channel.name}.s3`: missing; nothing to pull. "
                f"Fix: add `s3: s3://<bucket>/<prefix>/` under `channels.{channel.name}:`."
            )
        result = pull_channel(s3, channel.s3, Path(dest) / channel.local, log=log)
        log(
            f"{channel.name}: {len(result.downloaded)} downloaded ({result.bytes_downloaded} bytes), "
            f"{len(result.skipped)} unchanged, {len(result.removed)} removed -> {result.directory}"
        )
        results.append(result)
    return results


def _list(s3: Any, bucket: str, prefix: str) -> Iterable[Dict[str, Any]]:
    with translate("ListObjectsV2"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def _unchanged(recorded: Dict[str, Any], entry: Dict[str, Any], target: Path) -> bool:
    if recorded.get("etag") != entry["etag"] or recorded.get("size") != entry["size"]:
        return False
    return target.is_file() and target.stat().st_size == entry["size"] and file_sha256(target) == recorded.get("sha256")


def _download(s3: Any, bucket: str, key: str, target: Path, size: int) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    with translate("GetObject"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(partial, "wb") as sink:
            sha256, written = stream_sha256(body.iter_chunks(CHUNK), sink)
    if written != size:
        partial.unlink(missing_ok=True)
        raise DataError(f"s3://{bucket}/{key}: got {written} bytes, expected {size}. Fix: pull again.")
    os.replace(partial, target)  # NB: atomic: a killed pull never leaves a half file in place
    return sha256


def _read_manifest(path: Path, source: str) -> Dict[str, Dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    if data.get("version") != MANIFEST_VERSION or data.get("source") != source:
        return {}  # NB: another prefix was pulled here before; trust nothing it recorded
    return dict(data.get("files", {}))


def _write_manifest(path: Path, source: str, files: Dict[str, Dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": MANIFEST_VERSION, "source": source, "files": files}, indent=2, sort_keys=True) + "\n"
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text)
    os.replace(partial, path)
