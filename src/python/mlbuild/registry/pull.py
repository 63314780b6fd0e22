"""pull_to_layout: a base image pinned by digest -> a verified, cached OCI layout.

Every manifest and blob is checked against its digest; blobs are cached by digest in
`cache_dir/sha256/<hex>` (an mlbuild.oci BlobStore) and hard-linked into the layout. A cached
blob is re-hashed before it is used: a corrupt one (same size or not) is evicted and fetched
again, so the cache is never trusted by size alone.
The platform manifest is written byte for byte, so its digest is the registry's; Docker
schema 2 manifests are kept as they are (mlbuild.oci.layout.read_layout accepts them).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, TextIO

from mlbuild.names import ref_name
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import INDEX_TYPES, LINUX_AMD64, MANIFEST_TYPES, REF_NAME_ANNOTATION, Descriptor, Platform
from mlbuild.oci.digest import CHUNK_SIZE, HashingReader, HashingWriter, digest_of
from mlbuild.oci.layout import INDEX_FILE, read_index, write_index
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import (
    DigestMismatchError,
    NotFoundError,
    ReferenceError,
    RegistryPlatformError,
    RegistryUserError,
)
from mlbuild.registry.progress import Progress
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.session import connect


@dataclass(frozen=True)
class PullResult:
    digest: str  # the platform manifest written to the layout
    ref_name: str
    fetched: int
    cached: int
    fetched_bytes: int


def require_digest(text: str) -> None:
    ref = parse_reference(text)
    if not ref.digest:
        raise ReferenceError(
            f"{text!r} is a tag, which can move; base images are pulled by digest only. Fix: pin it as"
            f" '{ref.repo_uri}@sha256:<digest>' (find the digest with `./pants mlbuild resolve {text}`"
            f" or `skopeo inspect docker://{text}`)."
        )


def pull_to_layout(
    reference: str,
    layout_dir: Path,
    cache_dir: Path,
    *,
    ref_name: str | None = None,
    platform: Platform = LINUX_AMD64,
    credentials: Credentials | None = None,
    allow_insecure_http: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    progress: TextIO | None = sys.stderr,
    env: Mapping[str, str] = os.environ,
) -> PullResult:
    require_digest(reference)
    ref = parse_reference(reference)
    assert ref.digest
    for flag, path in (("--layout", layout_dir), ("--cache-dir", cache_dir)):
        if Path(path).exists() and not Path(path).is_dir():
            raise RegistryUserError(
                f"{flag} {path}: is a file, not a directory. Fix: give a directory (it is created if missing)."
            )
    client = connect(
        ref, push=False, credentials=credentials, allow_insecure_http=allow_insecure_http, retry=retry, env=env
    )
    data, media_type = _manifest(client, ref.digest)
    if media_type in INDEX_TYPES:
        picked = [d for d in _descriptors(json.loads(data).get("manifests", []), ref.digest) if d.platform == platform]
        if not picked:
            raise ReferenceError(f"{reference}: the image index has no {platform.os}/{platform.architecture} manifest.")
        data, media_type = _manifest(client, picked[0].digest)
    if media_type not in MANIFEST_TYPES:
        raise ReferenceError(f"{reference}: media type {media_type!r} is not an image manifest or index.")
    manifest = json.loads(data)
    digest = digest_of(data)
    if not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("layers", []), list):
        raise RegistryPlatformError(
            f"{client.where(f'GET manifest {digest}')}: the image manifest has no config or layers list."
        )
    cache = BlobStore(Path(cache_dir))
    fetched = cached = fetched_bytes = 0
    for desc in _descriptors([manifest["config"], *manifest.get("layers", [])], digest):
        if holds(cache, desc):
            cached += 1
            continue
        _fetch_blob(client, desc, cache, progress)
        fetched, fetched_bytes = fetched + 1, fetched_bytes + desc.size
    name = ref_name or ref.tag or "base"
    _write_layout(Path(layout_dir), cache, manifest, data, media_type, name)
    return PullResult(digest, name, fetched, cached, fetched_bytes)


def _manifest(client: RegistryClient, digest: str) -> tuple[bytes, str]:
    data, media_type, _ = client.checked_manifest(digest)
    return data, media_type


def holds(store: BlobStore, desc: Descriptor) -> bool:
    """True when `store` has the blob and it hashes to its digest; a corrupt copy is evicted."""
    path = store.path(desc.digest)
    try:
        with open(path, "rb") as f:
            reader = HashingReader(f)
            reader.drain()
    except (FileNotFoundError, IsADirectoryError):
        return False
    if reader.digest == desc.digest and reader.size == desc.size:
        return True
    path.unlink()  # NB: a file whose name is its digest but whose bytes are not: never link it anywhere
    return False


def _descriptors(items: list, where: str) -> list[Descriptor]:
    return [Descriptor.from_json(item, where=f"manifest {where}") for item in items]


def _fetch_blob(client: RegistryClient, desc: Descriptor, cache: BlobStore, stream: TextIO | None) -> None:
    temp = cache.temp_file()
    try:

        def sink(resp) -> None:
            progress = Progress(stream, f"pulling {desc.digest[:19]}", desc.size)
            with open(temp, "wb") as f:
                writer = HashingWriter(f)
                for chunk in resp.stream(CHUNK_SIZE):
                    writer.write(chunk)
                    progress.advance(len(chunk))
            progress.finish()
            if writer.digest != desc.digest or writer.size != desc.size:
                raise DigestMismatchError(
                    f"{client.where(f'GET blob {desc.digest}')}: got {writer.size} bytes hashing to {writer.digest}, expected {desc.size} bytes."
                )

        client.get_blob(desc.digest, sink)
        cache.put(temp, desc.digest)
    finally:
        temp.unlink(missing_ok=True)


def _write_layout(layout_dir: Path, cache: BlobStore, manifest: dict, data: bytes, media_type: str, name: str) -> None:
    blobs = BlobStore(layout_dir / "blobs")
    for desc in _descriptors([manifest["config"], *manifest.get("layers", [])], "pulled"):
        holds(blobs, desc)  # NB: evicts a corrupt blob an earlier pull left in the layout
        blobs.link_into(desc.digest, cache.path(desc.digest))
    digest = blobs.put_bytes(data)
    config = json.loads(cache.path(manifest["config"]["digest"]).read_bytes())
    platform = Platform(str(config.get("os", "")), str(config.get("architecture", "")))
    entry = Descriptor(media_type, digest, len(data), {REF_NAME_ANNOTATION: name}, platform).to_json()
    old = read_index(layout_dir).get("manifests", []) if (layout_dir / INDEX_FILE).is_file() else []
    write_index(layout_dir, [m for m in old if ref_name(m) != name] + [entry])


def resolve_digest(reference: str, **connect_kwargs) -> str:
    """The digest a tag points at now (what to pin).

    NB: the manifest is fetched and parsed, not just HEADed: a server that answers 200 with an
    HTML page (a proxy, a login page) must not have that page's hash pinned as an image.
    """
    ref = parse_reference(reference)
    client = connect(ref, push=False, **connect_kwargs)
    try:
        _, _, digest = client.checked_manifest(ref.digest or ref.tag or "latest")
    except NotFoundError as e:
        raise ReferenceError(f"{reference}: no such manifest in {ref.repo_uri}.") from e
    return digest
