"""Referrers: artifacts about an image (its provenance), stored in the image's OCI layout.

An OCI 1.1 referrer is an image manifest with an `artifactType`, the empty config, the
payload as its one layer, and a `subject` naming the image it is about:

    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "artifactType": "application/vnd.in-toto+json",
     "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2},
     "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": D, "size": N}],
     "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": IMAGE, "size": N},
     "annotations": {...}}

In a layout the referrer is an `index.json` entry with `artifactType` and no ref name, so
tools that pick images by ref name (skopeo, umoci, mlbuild's own read_layout) skip it.
https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import OCI_MANIFEST, Descriptor
from mlbuild.oci.digest import digest_of
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import canonical_json
from mlbuild.oci.layout import INDEX_FILE, read_index, subject_of, write_index

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BYTES = b"{}"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type"


@dataclass(frozen=True)
class Referrer:
    """One artifact manifest, its own bytes, and the payload blob it carries."""

    manifest: bytes
    payload: bytes

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def descriptor(self) -> Descriptor:
        doc = self.document
        return Descriptor(OCI_MANIFEST, digest_of(self.manifest), len(self.manifest), artifact_type=doc["artifactType"])

    @property
    def subject_digest(self) -> str:
        return str(self.document["subject"]["digest"])

    @property
    def payload_descriptor(self) -> Descriptor:
        return Descriptor.from_json(self.document["layers"][0], where="referrer payload")


def empty_descriptor() -> Descriptor:
    return Descriptor(EMPTY_MEDIA_TYPE, digest_of(EMPTY_BYTES), len(EMPTY_BYTES))


def make_referrer(
    subject: Descriptor, artifact_type: str, payload: bytes, annotations: Mapping[str, str] = {}
) -> Referrer:
    """An artifact manifest whose one layer is `payload` (of media type `artifact_type`)."""
    layer = Descriptor(artifact_type, digest_of(payload), len(payload))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_descriptor().to_json(),
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    return Referrer(canonical_json(manifest), payload)


def attach(layout_dir: Path, referrer: Referrer) -> Descriptor:
    """Store `referrer` in `layout_dir`, replacing any earlier one of its type for the same image."""
    layout_dir = Path(layout_dir)
    index = read_index(layout_dir)
    images = [
        m
        for m in index.get("manifests", [])
        if m.get("digest") == referrer.subject_digest and not m.get("artifactType")
    ]
    if not images:
        raise UserError(
            f"OCI layout {layout_dir}: {INDEX_FILE} has no image {referrer.subject_digest} to attach an artifact to. "
            "Fix: attach to an image the layout holds (rebuild it with `pants package` if it was replaced)."
        )
    store = BlobStore(layout_dir / "blobs")
    for data in (EMPTY_BYTES, referrer.payload, referrer.manifest):
        store.put_bytes(data)
    desc = referrer.descriptor
    kept = [
        m
        for m in index.get("manifests", [])
        if not (m.get("artifactType") == desc.artifact_type and subject_of(store, m) == referrer.subject_digest)
    ]
    write_index(layout_dir, [*kept, desc.to_json()])
    return desc


def referrers(layout_dir: Path, subject_digest: str, artifact_type: str | None = None) -> list[Referrer]:
    """Every referrer in `layout_dir` about `subject_digest` (of `artifact_type`, if given), checked."""
    layout_dir = Path(layout_dir)
    store = BlobStore(layout_dir / "blobs")
    found = []
    for entry in read_index(layout_dir).get("manifests", []):
        if not entry.get("artifactType") or (artifact_type and entry["artifactType"] != artifact_type):
            continue
        if subject_of(store, entry) != subject_digest:
            continue
        manifest = _checked_blob(store, str(entry["digest"]), layout_dir)
        layer = json.loads(manifest)["layers"][0]
        found.append(Referrer(manifest, _checked_blob(store, str(layer["digest"]), layout_dir)))
    return found


def blobs_of(referrer: Referrer) -> list[tuple[Descriptor, bytes]]:
    """The blobs a registry needs before the referrer's manifest: empty config, payload."""
    return [(empty_descriptor(), EMPTY_BYTES), (referrer.payload_descriptor, referrer.payload)]


def _checked_blob(store: BlobStore, digest: str, layout_dir: Path) -> bytes:
    try:
        data = store.path(digest).read_bytes()
    except OSError:
        raise UserError(
            f"OCI layout {layout_dir}: blob {digest} is missing. Fix: rebuild it with `pants package`."
        ) from None
    if digest_of(data) != digest:
        raise UserError(
            f"OCI layout {layout_dir}: blob {digest} does not match its digest; the layout was modified. "
            "Fix: rebuild it with `pants package`."
        )
    return data
