"""An image's referrers (its provenance) in a registry: push them with the image, find them again.

Push: the referrer's blobs, then its manifest by digest. A registry with the OCI 1.1
referrers API answers that PUT with an `OCI-Subject` header and indexes it itself; one
without it (distribution 2.x, older ECR) gets a tag `sha256-<image hex>.att` on the
referrer so it can still be found by the image digest alone (cosign's convention).
Find: GET /v2/<repo>/referrers/<digest>?artifactType=T; without the API, the `.att` tag.
https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from mlbuild.oci.digest import digest_of, hex_of
from mlbuild.oci.referrer import Referrer
from mlbuild.registry.client import RegistryClient
from mlbuild.registry.errors import DigestMismatchError
from mlbuild.registry.pull import resolve_digest
from mlbuild.registry.reference import Reference, parse_reference
from mlbuild.registry.session import connect
from mlbuild.registry.upload import Blob, BlobOutcome, UploadOptions, push_blob

ATTACHMENT_SUFFIX = ".att"
SUBJECT_HEADER = "OCI-Subject"
MAX_PAYLOAD = 16 * 1024 * 1024  # NB: statements are kilobytes; refuse to buffer anything huge


def attachment_tag(subject_digest: str) -> str:
    """The tag a referrer gets where the registry has no referrers API."""
    return f"sha256-{hex_of(subject_digest)}{ATTACHMENT_SUFFIX}"


@dataclass(frozen=True)
class ReferrerSource:
    """A referrer as stored in a layout: its manifest bytes and the blobs it needs."""

    manifest: bytes
    media_type: str
    digest: str
    subject_digest: str
    blobs: tuple[Blob, ...]


@dataclass(frozen=True)
class PushedReferrer:
    digest: str
    indexed_by_registry: bool  # True: the registry's referrers API lists it; False: tagged `.att`
    outcomes: tuple[BlobOutcome, ...]


def push_referrer(client: RegistryClient, referrer: ReferrerSource, options: UploadOptions) -> PushedReferrer:
    outcomes = tuple(push_blob(client, blob, options) for blob in referrer.blobs)
    resp = client.put_manifest_response(referrer.digest, referrer.manifest, referrer.media_type)
    reported = resp.header("Docker-Content-Digest")
    if reported and reported != referrer.digest:
        raise DigestMismatchError(f"{client.where(f'PUT referrer {referrer.digest}')}: registry stored {reported}.")
    indexed = bool(resp.header(SUBJECT_HEADER))
    if not indexed:
        tag = attachment_tag(referrer.subject_digest)
        # NB: the first `.att` of an image stays, on every registry: ECR's immutable tags
        # would refuse a second one anyway. The referrer itself is still stored by digest.
        if client.head_manifest(tag) is None:
            client.put_manifest(tag, referrer.manifest, referrer.media_type)
    return PushedReferrer(referrer.digest, indexed, outcomes)


def find_referrer(client: RegistryClient, subject_digest: str, artifact_type: str) -> Referrer | None:
    """The referrer of `artifact_type` about `subject_digest`, checked byte for byte; None if none."""
    listed = client.get_referrers(subject_digest, artifact_type)
    if listed:
        reference = sorted(str(m["digest"]) for m in listed)[-1]
    elif client.head_manifest(attachment_tag(subject_digest)) is not None:
        reference = attachment_tag(subject_digest)
    else:
        return None
    manifest, _, _ = client.get_manifest(reference)
    where = client.where(f"referrer {reference} of {subject_digest}")
    if reference.startswith("sha256:") and digest_of(manifest) != reference:
        raise DigestMismatchError(f"{where}: the manifest bytes hash to {digest_of(manifest)}.")
    document = json.loads(manifest)
    if (document.get("subject") or {}).get("digest") != subject_digest or document.get("artifactType") != artifact_type:
        return None
    layer = (document.get("layers") or [{}])[0]
    if int(layer.get("size", MAX_PAYLOAD + 1)) > MAX_PAYLOAD:
        raise DigestMismatchError(f"{where}: payload of {layer.get('size')} bytes; refusing to read it.")
    payload = _read_blob(client, str(layer.get("digest")))
    if digest_of(payload) != layer.get("digest"):
        raise DigestMismatchError(f"{where}: payload bytes hash to {digest_of(payload)}, not {layer.get('digest')}.")
    return Referrer(manifest, payload)


def _read_blob(client: RegistryClient, digest: str) -> bytes:
    buffer = io.BytesIO()

    def sink(resp) -> None:
        for chunk in resp.stream(64 * 1024):
            buffer.write(chunk)
            if buffer.tell() > MAX_PAYLOAD:
                raise DigestMismatchError(f"{client.where(f'GET blob {digest}')}: larger than {MAX_PAYLOAD} bytes.")

    client.get_blob(digest, sink)
    return buffer.getvalue()


def fetch_referrer(reference: str | Reference, artifact_type: str, **connect_kwargs) -> tuple[str, Referrer | None]:
    """(image digest, its referrer of `artifact_type` or None) for `host/repo@sha256:...` or `:tag`."""
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    digest = ref.digest or resolve_digest(str(ref), **connect_kwargs)
    return digest, find_referrer(connect(ref, push=False, **connect_kwargs), digest, artifact_type)
