"""What a push sends, read from an OCI layout exactly as stored (the manifest's own bytes).

NB: the manifest is pushed byte for byte, not re-serialised from an Image, so the digest in
the registry is the digest in the layout, whoever wrote the layout. `read_layout` still runs
first: it checks the layout and picks the image by ref the same way the rest of mlbuild does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlbuild.names import image_entries
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import INDEX_TYPES, LINUX_AMD64, MANIFEST_TYPES, Descriptor
from mlbuild.oci.digest import digest_of
from mlbuild.oci.layout import INDEX_FILE, read_layout
from mlbuild.oci.referrer import blobs_of, referrers
from mlbuild.registry.errors import RegistryUserError
from mlbuild.registry.referrers import ReferrerSource
from mlbuild.registry.upload import Blob


@dataclass(frozen=True)
class PushSource:
    manifest: bytes
    media_type: str
    digest: str
    blobs: tuple[Blob, ...]  # config first, then layers, without duplicates
    referrers: tuple[ReferrerSource, ...] = ()  # artifacts about this image (its provenance)


def read_push_source(layout_dir: Path, ref: str | None = None) -> PushSource:
    layout_dir = Path(layout_dir)
    read_layout(layout_dir, ref)  # validation: refs, blobs present, diff_ids vs layers
    where = f"OCI layout {layout_dir}"
    store = BlobStore(layout_dir / "blobs")
    entry = image_entries(json.loads((layout_dir / INDEX_FILE).read_text()), ref)[
        0
    ]  # NB: read_layout made sure there is one
    desc = Descriptor.from_json(entry, where=where)
    data = _blob(store, desc, where)
    if desc.media_type in INDEX_TYPES:
        nested = [Descriptor.from_json(m, where=where) for m in json.loads(data).get("manifests", [])]
        desc = next(d for d in nested if d.platform == LINUX_AMD64)  # read_layout made sure there is one
        data = _blob(store, desc, where)
    if desc.media_type not in MANIFEST_TYPES:
        raise RegistryUserError(f"{where}: {desc.digest} is a {desc.media_type!r}, not an image manifest.")
    manifest = json.loads(data)
    blobs: dict[str, Blob] = {}
    for item in [manifest["config"], *manifest.get("layers", [])]:
        d = Descriptor.from_json(item, where=f"{where}: manifest {desc.digest}")
        path = store.path(d.digest)
        if not path.is_file() or path.stat().st_size != d.size:
            raise RegistryUserError(
                f"{where}: blob {d.digest} is missing or not {d.size} bytes. Fix: rebuild the layout."
            )
        blobs.setdefault(d.digest, Blob(d.digest, d.size, path))
    media_type = manifest.get("mediaType") or desc.media_type
    return PushSource(data, media_type, desc.digest, tuple(blobs.values()), _referrers(layout_dir, store, desc.digest))


def _referrers(layout_dir: Path, store: BlobStore, subject_digest: str) -> tuple[ReferrerSource, ...]:
    found = []
    for ref in referrers(layout_dir, subject_digest):
        needed = [(d, store.path(d.digest)) for d, _ in blobs_of(ref)]
        blobs = tuple(Blob(d.digest, d.size, path) for d, path in needed)
        found.append(
            ReferrerSource(ref.manifest, ref.descriptor.media_type, ref.descriptor.digest, subject_digest, blobs)
        )
    return tuple(found)


def _blob(store: BlobStore, desc: Descriptor, where: str) -> bytes:
    data = store.path(desc.digest).read_bytes()
    if digest_of(data) != desc.digest or len(data) != desc.size:
        raise RegistryUserError(f"{where}: blob {desc.digest} does not match its descriptor; the layout is corrupt.")
    return data
