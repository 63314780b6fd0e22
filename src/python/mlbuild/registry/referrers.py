"""An image's referrers (its provenance) in a registry: push them with the image, find them again.

Push: the referrer's blobs, then its manifest by digest. A registry with the OCI 1.1
referrers API answers that PUT with an `OCI-Subject` header and indexes it itself. One
without it (distribution 2.x) gets the spec's fallback, the referrers tag schema: an image
index tagged `sha256-<image hex>` listing the image's referrers, which the client reads,
extends and pushes back.
Find: GET /v2/<repo>/referrers/<digest>?artifactType=T; without the API, that index tag.
https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlbuild import console
from mlbuild.oci.descriptor import OCI_INDEX
from mlbuild.oci.digest import digest_of, hex_of
from mlbuild.oci.image import canonical_json
from mlbuild.oci.referrer import Referrer
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.errors import DigestMismatchError, RegistryPlatformError, RegistryUserError
from mlbuild.registry.pull import resolve_digest
from mlbuild.registry.reference import Reference, parse_reference
from mlbuild.registry.session import connect
from mlbuild.registry.upload import Blob, BlobOutcome, UploadOptions, push_blob

SUBJECT_HEADER = "OCI-Subject"
MAX_PAYLOAD = 16 * 1024 * 1024  # NB: statements are kilobytes; refuse to buffer anything huge


def referrers_tag(subject_digest: str) -> str:
    """The tag of the referrers index where the registry has no referrers API."""
    return f"sha256-{hex_of(subject_digest)}"


@dataclass(frozen=True)
class ReferrerSource:
    """A referrer as stored in a layout: its manifest bytes and the blobs it needs."""

    manifest: bytes
    media_type: str
    digest: str
    subject_digest: str
    blobs: tuple[Blob, ...]

    def descriptor(self) -> dict[str, Any]:
        """Its entry in a referrers index: the manifest's artifactType and annotations."""
        doc = json.loads(self.manifest)
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}
        if doc.get("artifactType"):
            entry["artifactType"] = doc["artifactType"]
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        return entry


@dataclass(frozen=True)
class PushedReferrer:
    digest: str
    indexed_by_registry: bool  # True: the registry's referrers API lists it; False: the tag schema does
    outcomes: tuple[BlobOutcome, ...]


def push_referrer(client: RegistryClient, referrer: ReferrerSource, options: UploadOptions) -> PushedReferrer:
    outcomes = tuple(push_blob(client, blob, options) for blob in referrer.blobs)
    resp = client.put_manifest_response(referrer.digest, referrer.manifest, referrer.media_type)
    reported = resp.header("Docker-Content-Digest")
    if reported and reported != referrer.digest:
        raise DigestMismatchError(f"{client.where(f'PUT referrer {referrer.digest}')}: registry stored {reported}.")
    indexed = bool(resp.header(SUBJECT_HEADER))
    if not indexed:
        _add_to_referrers_index(client, referrer)
    return PushedReferrer(referrer.digest, indexed, outcomes)


def _add_to_referrers_index(client: RegistryClient, referrer: ReferrerSource) -> None:
    tag = referrers_tag(referrer.subject_digest)
    try:
        manifests = _tagged_index(client, referrer.subject_digest)
        if any(m.get("digest") == referrer.digest for m in manifests):
            return  # NB: a re-push changes nothing
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*manifests, referrer.descriptor()]}
        client.put_manifest(tag, canonical_json(index), OCI_INDEX)
    except RegistryUserError as e:
        # NB: e.g. immutable tags (ECR) once the index exists, or a foreign tag of that name.
        # The referrer is stored by digest either way; only its listing under the image
        # failed, which is not worth failing the image's push over.
        console.warn(f"could not update the referrers index {tag}: {e}")


def _tagged_index(client: RegistryClient, subject_digest: str) -> list[dict[str, Any]]:
    """The descriptors in the `sha256-<hex>` referrers index (empty if there is none)."""
    tag = referrers_tag(subject_digest)
    if client.head_manifest(tag) is None:
        return []
    data, _, _ = client.get_manifest(tag)
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise RegistryPlatformError(f"{client.where(f'GET manifest {tag}')}: not JSON ({e}).") from e
    if doc.get("mediaType") != OCI_INDEX or not isinstance(doc.get("manifests"), list):
        # NB: the tag names something else (not a referrers index); leave it alone.
        raise RegistryUserError(
            f"{client.where(f'tag {tag}')}: holds a {doc.get('mediaType')!r}, not a referrers index. "
            "Fix: remove or rename that tag; OCI reserves `sha256-<digest hex>` for referrers."
        )
    return [m for m in doc["manifests"] if isinstance(m, dict)]


def find_referrers(client: RegistryClient, subject_digest: str, artifact_type: str) -> list[Referrer]:
    """Every referrer of `artifact_type` about `subject_digest`, each checked byte for byte."""
    listed = client.get_referrers(subject_digest, artifact_type)
    if listed is None:
        listed = [m for m in _tagged_index(client, subject_digest) if m.get("artifactType") == artifact_type]
    found = []
    for digest in sorted({str(m.get("digest")) for m in listed}):
        referrer = _fetch_checked(client, digest, subject_digest, artifact_type)
        if referrer is not None:
            found.append(referrer)
    return found


def _fetch_checked(client: RegistryClient, digest: str, subject_digest: str, artifact_type: str) -> Referrer | None:
    where = client.where(f"referrer {digest} of {subject_digest}")
    manifest, _, _ = client.get_manifest(digest)
    if digest_of(manifest) != digest:
        raise DigestMismatchError(f"{where}: the manifest bytes hash to {digest_of(manifest)}.")
    try:
        document = json.loads(manifest)
        subject = (document.get("subject") or {}).get("digest")
        layer = (document.get("layers") or [{}])[0]
        size, payload_digest = int(layer.get("size", MAX_PAYLOAD + 1)), str(layer.get("digest"))
    except (ValueError, AttributeError, TypeError) as e:
        raise RegistryPlatformError(f"{where}: not an artifact manifest ({e}).") from e
    if subject != subject_digest or document.get("artifactType") != artifact_type:
        return None  # NB: a stale or foreign listing entry: not about this image
    if size > MAX_PAYLOAD:
        raise RegistryPlatformError(f"{where}: payload of {size} bytes; refusing to read more than {MAX_PAYLOAD}.")
    return Referrer(manifest, client.read_small_blob(payload_digest, size))


def fetch_referrers(reference: str | Reference, artifact_type: str, **connect_kwargs) -> tuple[str, list[Referrer]]:
    """(image digest, its referrers of `artifact_type`) for `host/repo@sha256:...` or `:tag`."""
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    digest = ref.digest or resolve_digest(str(ref), **connect_kwargs)
    return digest, find_referrers(connect(ref, push=False, **connect_kwargs), digest, artifact_type)
