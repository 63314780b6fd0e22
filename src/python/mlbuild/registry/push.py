"""push_layout: an OCI layout's image -> a registry repository, by digest first, then tags.

Steps: (ECR: create the repository if asked) -> every blob skipped/mounted/uploaded, in
parallel -> manifest PUT by digest, reported digest checked -> the content tag and any
human tags (HEAD first; skipped when already ours) -> the layout's referrers of the image
(its provenance; referrers.py) -> verification: HEAD every blob and GET the manifest back,
comparing bytes and digest.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from mlbuild.oci.digest import digest_of, hex_of
from mlbuild.registry import ecr, quirks
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import DigestMismatchError, RegistryUserError
from mlbuild.registry.layout_source import PushSource, read_push_source
from mlbuild.registry.reference import Reference, parse_reference
from mlbuild.registry.referrers import push_referrer
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.session import connect
from mlbuild.registry.upload import BlobOutcome, UploadOptions, push_blob
from mlbuild.registry.upload_journal import UploadJournal, cancel_stale, journal_dir

CONTENT_TAG_HEX = 16  # NB: 64 bits of the digest: unique in practice, short enough to read


def content_tag(digest: str) -> str:
    """The tag every push gets: 'sha256-' + the first 16 hex digits of the manifest digest."""
    return f"sha256-{hex_of(digest)[:CONTENT_TAG_HEX]}"


@dataclass(frozen=True)
class PushResult:
    image_uri: str  # registry/repo@sha256:...
    digest: str
    tags: tuple[str, ...]
    uploaded: int
    mounted: int
    skipped: int
    uploaded_bytes: int
    mounted_bytes: int
    skipped_bytes: int
    seconds: float
    referrers: tuple[str, ...] = ()  # digests of the artifacts pushed with the image (provenance)
    referrers_api: bool = False  # the registry indexed them itself (else: the `sha256-<hex>` referrers index tag)


def push_layout(
    layout_dir: Path,
    ref: str | None,
    destination: str | Reference,
    *,
    tags: Sequence[str] = (),
    mount_from: Sequence[str] = (),
    upload_mode: str = quirks.DEFAULT_UPLOAD_MODE,
    chunk_size: int = 16 * 1024 * 1024,
    credentials: Credentials | None = None,
    create_repository: bool = False,
    ecr_settings: ecr.EcrRepositorySettings = ecr.EcrRepositorySettings(),
    allow_insecure_http: bool = False,
    parallelism: int = 3,
    verify: bool = True,
    retry: RetryPolicy = RetryPolicy(),
    progress: TextIO | None = sys.stderr,
    env: Mapping[str, str] = os.environ,
) -> PushResult:
    """Push the image `ref` of `layout_dir` to `destination` ('host[:port]/repo[:tag]').

    A tag in `destination` counts as a human tag. Human tags are off unless given: with
    immutable repositories a moving tag like 'latest' fails on the second push.
    """
    start = time.monotonic()
    dest = destination if isinstance(destination, Reference) else parse_reference(destination)
    if dest.digest:
        raise RegistryUserError(f"push destination {dest}: give a repository (and tags), not a digest.")
    human_tags = tuple(dict.fromkeys([*([dest.tag] if dest.tag else []), *tags]))
    for tag in human_tags:
        parse_reference(f"{dest.repo_uri}:{tag}")  # validates the tag
    source = read_push_source(Path(layout_dir), ref)
    if create_repository and dest.ecr is not None:
        ecr.ensure_repository(dest, ecr_settings)
    client = connect(
        dest,
        push=True,
        mount_from=tuple(mount_from),
        credentials=credentials,
        allow_insecure_http=allow_insecure_http,
        retry=retry,
        pool_size=max(parallelism, 1) + 1,
        env=env,
    )
    journal = UploadJournal(journal_dir(env), dest.repo_uri)
    cancel_stale(client, journal)  # NB: sessions a push killed with -9 left open on the registry
    options = UploadOptions(upload_mode, chunk_size, tuple(mount_from), progress, journal)
    with ThreadPoolExecutor(max_workers=max(parallelism, 1)) as pool:
        futures = [pool.submit(push_blob, client, blob, options) for blob in source.blobs]
        try:
            outcomes = [f.result() for f in futures]
        except BaseException:
            for f in futures:  # NB: stop at the first failure instead of pushing the rest
                f.cancel()
            raise
    if client.head_manifest(source.digest) is None:  # NB: a no-op re-push sends no manifest either
        _put_manifest(client, source, source.digest)
    pushed_tags = [content_tag(source.digest), *human_tags]
    for tag in pushed_tags:
        existing = client.head_manifest(tag)
        if quirks.tag_needs_put(existing.digest if existing else None, source.digest):
            _put_manifest(client, source, tag)
    # NB: after the image: a registry may refuse a referrer whose subject it doesn't hold yet.
    pushed = [push_referrer(client, referrer, options) for referrer in source.referrers]
    outcomes += [o for p in pushed for o in p.outcomes]
    if verify:
        verify_push(client, source)
    result = _result(dest, source.digest, tuple(pushed_tags), outcomes, time.monotonic() - start)
    return replace(
        result, referrers=tuple(p.digest for p in pushed), referrers_api=any(p.indexed_by_registry for p in pushed)
    )


def _put_manifest(client: RegistryClient, source: PushSource, reference: str) -> None:
    reported = client.put_manifest(reference, source.manifest, source.media_type)
    if reported and reported != source.digest:
        raise DigestMismatchError(
            f"{client.where(f'PUT manifest {reference}')}: registry stored digest {reported}, we sent {source.digest}."
        )


def verify_push(client: RegistryClient, source: PushSource) -> None:
    """HEAD every blob and GET the manifest by digest; raise if anything differs."""
    for blob in source.blobs:
        if not client.has_blob(blob.digest, blob.size, "verify blob"):
            raise DigestMismatchError(
                f"{client.where(f'verify blob {blob.digest}')}: after the push the registry does not have it."
            )
    data, _, reported = client.get_manifest(source.digest)
    if data != source.manifest or digest_of(data) != source.digest or (reported and reported != source.digest):
        raise DigestMismatchError(
            f"{client.where(f'verify manifest {source.digest}')}: the registry serves different bytes"
            f" (digest {digest_of(data)}, header {reported})."
        )


def _result(
    dest: Reference, digest: str, tags: tuple[str, ...], outcomes: list[BlobOutcome], seconds: float
) -> PushResult:
    def count(action: str) -> tuple[int, int]:
        chosen = [o for o in outcomes if o.action == action]
        return len(chosen), sum(o.size for o in chosen)

    (up, up_b), (mo, mo_b), (sk, sk_b) = count("uploaded"), count("mounted"), count("skipped")
    return PushResult(f"{dest.repo_uri}@{digest}", digest, tags, up, mo, sk, up_b, mo_b, sk_b, seconds)
