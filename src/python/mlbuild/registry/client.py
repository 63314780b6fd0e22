"""The distribution API of one repository, one method per endpoint.

https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#endpoints
Methods return data; the blob upload protocol lives in upload.py, push and pull in push.py/pull.py.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Callable

import urllib3

from mlbuild.oci.descriptor import INDEX_TYPES, MANIFEST_TYPES
from mlbuild.oci.digest import digest_of
from mlbuild.registry import quirks
from mlbuild.registry.errors import DigestMismatchError, RegistryPlatformError
from mlbuild.registry.reference import Reference
from mlbuild.registry.responses import Response
from mlbuild.registry.transport import Transport

MANIFEST_ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))


@dataclass(frozen=True)
class BlobHead:
    size: int  # Content-Length, -1 when absent
    digest: str | None  # Docker-Content-Digest, when sent
    content_type: str = ""


@dataclass(frozen=True)
class ManifestInfo:
    digest: str | None  # Docker-Content-Digest, when the registry sends it
    size: int
    media_type: str


class RegistryClient:
    def __init__(self, ref: Reference, transport: Transport) -> None:
        self.ref = ref
        self.transport = transport

    def _url(self, suffix: str, repository: str | None = None) -> str:
        return self.transport.url(f"/v2/{repository or self.ref.repository}/{suffix}")

    def where(self, what: str, repository: str | None = None) -> str:
        return f"{what} in {self.ref.registry}/{repository or self.ref.repository}"

    # -- blobs ---------------------------------------------------------------

    def blob_size(self, digest: str, repository: str | None = None) -> int | None:
        """HEAD a blob: its size if the repository has it (-1 if not said), None on 404."""
        head = self.head_blob(digest, repository)
        return None if head is None else head.size

    def head_blob(self, digest: str, repository: str | None = None) -> BlobHead | None:
        url = self._url(f"blobs/{digest}", repository)
        resp = self.transport.request("HEAD", url, where=self.where(f"HEAD blob {digest}", repository), ok=(200, 404))
        if resp.status == 404:
            return None
        length = resp.header("Content-Length") or ""
        return BlobHead(
            int(length) if length.isdigit() else -1,
            resp.header("Docker-Content-Digest"),
            resp.header("Content-Type") or "",
        )

    def has_blob(self, digest: str, size: int, what: str) -> bool:
        """HEAD a blob we are about to push or have pushed; raise if the registry's answer contradicts it.

        NB: a 200 alone proves nothing (an HTML page answers 200 to anything); its Content-Length
        and Docker-Content-Digest must match the descriptor whenever the registry sends them.
        """
        head = self.head_blob(digest)
        if head is None:
            return False
        # NB: a blob is bytes; text/html is a web page answering for a registry that isn't there.
        if (
            head.size not in (size, -1)
            or (head.digest and head.digest != digest)
            or head.content_type.startswith("text/html")
        ):
            raise DigestMismatchError(
                f"{self.where(f'{what} {digest}')}: HEAD answers {head.size} bytes with Docker-Content-Digest"
                f" {head.digest} ({head.content_type or 'no Content-Type'}), expected {size} bytes of {digest}. Fix: check that the address is a registry (a proxy"
                " or web server answering 200 looks like this)."
            )
        return True

    def get_blob(self, digest: str, sink: Callable[[urllib3.BaseHTTPResponse], object]) -> None:
        self.transport.request("GET", self._url(f"blobs/{digest}"), where=self.where(f"GET blob {digest}"), sink=sink)

    def read_small_blob(self, digest: str, limit: int) -> bytes:
        """A blob that should be small (a config, a statement) into memory: capped, digest-checked."""
        buffer = bytearray()

        def sink(resp: urllib3.BaseHTTPResponse) -> None:
            for chunk in resp.stream(64 * 1024):
                buffer.extend(chunk)
                if len(buffer) > limit:
                    raise RegistryPlatformError(
                        f"{self.where(f'GET blob {digest}')}: larger than {limit} bytes; refusing to read on."
                    )

        self.get_blob(digest, sink)
        if digest_of(bytes(buffer)) != digest:
            raise DigestMismatchError(
                f"{self.where(f'GET blob {digest}')}: the bytes hash to {digest_of(bytes(buffer))}."
            )
        return bytes(buffer)

    def start_upload(self, *, mount: str | None = None, from_repo: str | None = None, retry: bool = True) -> Response:
        """POST /blobs/uploads/: 202 + Location opens a session; with mount, 201 means mounted."""
        query = "?" + urllib.parse.urlencode({"mount": mount, "from": from_repo}) if mount and from_repo else ""
        what = f"mount {mount} from {from_repo}" if query else "start blob upload"
        return self.transport.request(
            "POST",
            self._url("blobs/uploads/") + query,
            where=self.where(what),
            ok=(201, 202),
            headers=quirks.content_length_zero_for_empty_post(),
            retry=retry,
        )

    def session_url(self, resp: Response, what: str) -> str:
        location = resp.header("Location")
        if not location:
            raise RegistryPlatformError(f"{self.where(what)}: HTTP {resp.status} without a Location header.")
        return quirks.resolve_location(resp.url, location)

    # -- manifests -----------------------------------------------------------

    def head_manifest(self, reference: str) -> ManifestInfo | None:
        resp = self.transport.request(
            "HEAD",
            self._url(f"manifests/{reference}"),
            where=self.where(f"HEAD manifest {reference}"),
            ok=(200, 404),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if resp.status == 404:
            return None
        return ManifestInfo(
            resp.header("Docker-Content-Digest"),
            int(resp.header("Content-Length") or -1),
            resp.header("Content-Type") or "",
        )

    def checked_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """GET a manifest and make sure it is one: (bytes, media type, digest of the bytes).

        Refused: a Content-Type that is no manifest type or JSON (an HTML page answering 200),
        a body that is not a schemaVersion 2 manifest or index, a Docker-Content-Digest header
        or a requested digest that the bytes do not hash to.
        """
        data, content_type, reported = self.get_manifest(reference)
        where = self.where(f"GET manifest {reference}")
        known = (*MANIFEST_TYPES, *INDEX_TYPES)
        try:
            doc = json.loads(data) if content_type in (*known, "application/json", "") else None
        except ValueError:
            doc = None
        # NB: some registries send a generic Content-Type; the manifest's own mediaType decides.
        media_type = (doc.get("mediaType") if isinstance(doc, dict) else None) or content_type
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2 or media_type not in known:
            raise RegistryPlatformError(
                f"{where}: the answer is not an image manifest (Content-Type {content_type or 'none'!r}, {len(data)} bytes"
                f" starting {data[:32]!r}). Fix: check the registry address; an HTML page means a proxy or web server answered."
            )
        digest = self.digest_of_manifest(data, reported, reference)
        return data, media_type, digest

    def digest_of_manifest(self, data: bytes, reported: str | None = None, reference: str = "") -> str:
        """digest_of(data), checked against the registry's header and a requested digest."""
        digest = digest_of(data)
        for claimed, what in ((reported, "its Docker-Content-Digest header"), (reference, "the requested digest")):
            if claimed and claimed.startswith("sha256:") and claimed != digest:
                raise DigestMismatchError(
                    f"{self.where(f'GET manifest {reference}')}: the bytes hash to {digest}, {what} says {claimed}."
                )
        return digest

    def get_manifest(self, reference: str, repository: str | None = None) -> tuple[bytes, str, str | None]:
        """(bytes, media type, Docker-Content-Digest header)."""
        resp = self.transport.request(
            "GET",
            self._url(f"manifests/{reference}", repository),
            where=self.where(f"GET manifest {reference}", repository),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        return (
            resp.body,
            (resp.header("Content-Type") or "").split(";")[0].strip(),
            resp.header("Docker-Content-Digest"),
        )

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str | None:
        """PUT a manifest by digest or tag; returns the Docker-Content-Digest the registry reports."""
        return self.put_manifest_response(reference, data, media_type).header("Docker-Content-Digest")

    def put_manifest_response(self, reference: str, data: bytes, media_type: str) -> Response:
        """PUT a manifest; the whole response (a referrer's PUT may answer with `OCI-Subject`)."""
        return self.transport.request(
            "PUT",
            self._url(f"manifests/{reference}"),
            where=self.where(f"PUT manifest {reference}"),
            ok=(201, 200),
            headers={"Content-Type": media_type},
            body=data,
        )

    # -- referrers -----------------------------------------------------------

    def get_referrers(self, digest: str, artifact_type: str | None = None) -> list[dict] | None:
        """GET /referrers/<digest>: the index's descriptors, or None if the registry lacks the API."""
        query = "?" + urllib.parse.urlencode({"artifactType": artifact_type}) if artifact_type else ""
        resp = self.transport.request(
            "GET",
            self._url(f"referrers/{digest}") + query,
            where=self.where(f"GET referrers of {digest}"),
            ok=(200, 404),
            headers={"Accept": INDEX_TYPES[0]},
        )
        content_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        # NB: registries without the API answer 404 (distribution 2.x) or some other document.
        if resp.status == 404 or content_type != INDEX_TYPES[0]:
            return None
        manifests = json.loads(resp.body).get("manifests") or []
        return [m for m in manifests if not artifact_type or m.get("artifactType") == artifact_type]
