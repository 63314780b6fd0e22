"""Getting one blob into a repository: skip it, mount it, or upload it (monolithic or chunked).

Order per blob: HEAD (present -> skipped); else, with a mount source, POST ?mount=&from=
(201 -> mounted; 202 -> upload into the session it opened); else POST then PUT ?digest=.
The whole step is retried as a unit: a failed session is abandoned and a new one opened.
Bytes stream from disk and are hashed as they go, so a corrupt layout is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mlbuild.registry import quirks
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.errors import DigestMismatchError, RegistryPlatformError, RegistryUserError
from mlbuild.registry.progress import Progress, ProgressReader
from mlbuild.registry.upload_journal import UploadJournal

OCTET = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    path: Path  # the bytes, on disk


@dataclass(frozen=True)
class UploadOptions:
    mode: str = quirks.DEFAULT_UPLOAD_MODE  # 'monolithic' | 'chunked'
    chunk_size: int = 16 * 1024 * 1024
    mount_from: tuple[str, ...] = ()  # repositories of the same registry that may hold the blobs
    progress: TextIO | None = None
    journal: UploadJournal | None = None  # where open sessions are written down (upload_journal.py)

    def __post_init__(self) -> None:
        if self.mode not in ("monolithic", "chunked"):
            raise RegistryUserError(f"upload mode {self.mode!r}: use 'monolithic' or 'chunked'.")
        if self.mode == "chunked" and self.chunk_size < quirks.MIN_CHUNK_SIZE:
            raise RegistryUserError(
                f"chunk size {self.chunk_size}: use at least {quirks.MIN_CHUNK_SIZE} bytes (ECR's minimum part)."
            )


@dataclass(frozen=True)
class BlobOutcome:
    digest: str
    action: str  # 'skipped' | 'mounted' | 'uploaded'
    size: int
    seconds: float = 0.0


def push_blob(client: RegistryClient, blob: Blob, options: UploadOptions) -> BlobOutcome:
    if client.has_blob(blob.digest, blob.size, "HEAD blob"):
        return BlobOutcome(blob.digest, "skipped", blob.size)
    source = _mount_source(client, blob, options.mount_from)

    def attempt(n: int) -> BlobOutcome:
        if source:
            resp = client.start_upload(mount=blob.digest, from_repo=source, retry=False)
            if not quirks.mount_fell_back(resp.status):
                _check_reported(client, resp.header("Docker-Content-Digest"), blob, f"mount from {source}")
                return BlobOutcome(blob.digest, "mounted", blob.size)
        else:
            resp = client.start_upload(retry=False)
        location = client.session_url(resp, f"upload {blob.digest}")
        record = options.journal.opened(location) if options.journal else None
        try:
            return _upload(client, blob, options, location)
        finally:
            if options.journal:
                options.journal.closed(record)

    return client.transport.retry.run(client.where(f"pushing blob {blob.digest}"), attempt)


def _upload(client: RegistryClient, blob: Blob, options: UploadOptions, location: str) -> BlobOutcome:
    progress = Progress(options.progress, f"pushing {blob.digest[:19]} to {client.ref.repo_uri}", blob.size)
    with open(blob.path, "rb") as f:
        reader = ProgressReader(f, progress)
        try:
            if options.mode == "chunked":
                location = _patch_chunks(client, location, blob, reader, options.chunk_size)
                body, length = None, 0
            else:
                body, length = reader, blob.size
            done = client.transport.request(
                "PUT",
                quirks.add_query(location, digest=blob.digest),
                where=client.where(f"PUT blob {blob.digest}"),
                ok=(201, 204),
                headers={**OCTET, "Content-Length": str(length)},
                body=body,
                retry=False,
            )
        except DigestMismatchError:
            _check_local(reader, blob)
            raise
    _check_local(reader, blob)
    _check_reported(client, done.header("Docker-Content-Digest"), blob, "upload")
    return BlobOutcome(blob.digest, "uploaded", blob.size, progress.finish())


def _patch_chunks(client: RegistryClient, location: str, blob: Blob, reader: ProgressReader, chunk_size: int) -> str:
    start = 0
    while start < blob.size:
        length = min(chunk_size, blob.size - start)
        reader.remaining = length
        resp = client.transport.request(
            "PATCH",
            location,
            where=client.where(f"PATCH blob {blob.digest} bytes {start}+{length}"),
            ok=(202, 204),
            headers={
                **OCTET,
                "Content-Length": str(length),
                "Content-Range": quirks.content_range(start, start + length - 1),
            },
            body=reader,
            retry=False,
        )
        location = client.session_url(resp, f"PATCH blob {blob.digest}")
        start += length
    reader.remaining = None
    return location


def _mount_source(client: RegistryClient, blob: Blob, candidates: tuple[str, ...]) -> str | None:
    """The first candidate repository that holds the blob (HEAD-probed when there are several)."""
    sources = [r for r in candidates if r != client.ref.repository]
    if len(sources) <= 1:
        return sources[0] if sources else None
    for repo in sources:
        try:
            if client.blob_size(blob.digest, repo) is not None:
                return repo
        except RegistryUserError:  # NB: no read access to a candidate is not an error, just no mount
            continue
    return None


def _check_local(reader: ProgressReader, blob: Blob) -> None:
    if reader.size == blob.size and reader.digest != blob.digest:
        raise RegistryUserError(
            f"{blob.path}: the file does not hash to {blob.digest} (got {reader.digest}, {reader.size} bytes);"
            " the layout is corrupt or changed during the push. Fix: rebuild the image layout."
        )


def _check_reported(client: RegistryClient, reported: str | None, blob: Blob, what: str) -> None:
    if reported and reported != blob.digest:
        raise RegistryPlatformError(
            f"{client.where(what)}: registry reports Docker-Content-Digest {reported}, expected {blob.digest}."
        )
