"""Every registry quirk mlbuild works around, each in one place with the link that taught it.

Other modules call these functions instead of open-coding the workaround.
"""

from __future__ import annotations

import urllib.parse

from mlbuild.registry.reference import DOCKER_HUB, Reference

# NB: ECR mishandles uploads split across several PATCH requests (parts are lost or the
# final PUT fails), so the default upload is one POST then one PUT with the whole blob.
# https://github.com/aws/containers-roadmap/issues/2831
DEFAULT_UPLOAD_MODE = "monolithic"
# NB: ECR refuses upload chunks smaller than 5 MiB except the last one (LayerPartTooSmallException).
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UploadLayerPart.html
MIN_CHUNK_SIZE = 5 * 1024 * 1024


def api_host(ref: Reference) -> str:
    """The host serving /v2/ for `ref.registry`.

    NB: 'docker.io' is only a name; Docker Hub's API is at registry-1.docker.io.
    https://github.com/google/go-containerregistry/blob/v0.20.2/pkg/name/registry.go#L29
    """
    return "registry-1.docker.io" if ref.registry == DOCKER_HUB else ref.registry


def resolve_location(request_url: str, location: str) -> str:
    """Upload session URLs (Location) may be absolute, host-relative or path-relative.

    NB: the spec allows relative Locations and registries use all three forms:
    https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-monolithically
    https://github.com/oras-project/oras-py/issues/78
    """
    return urllib.parse.urljoin(request_url, location)


def add_query(url: str, **params: str) -> str:
    """Append parameters to a session URL, keeping the ones the registry put there.

    NB: session Locations carry state in their query (distribution's `_state` token),
    so '?digest=' must be appended with '&' when a query is already present.
    https://github.com/distribution/distribution/blob/v2.8.3/registry/handlers/blobupload.go
    """
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def strip_auth_on_redirect(from_url: str, to_url: str) -> bool:
    """True when a redirect leaves the registry host, so Authorization must be dropped.

    NB: registries redirect blob GETs to pre-signed storage URLs (S3 for ECR and for
    distribution's s3 driver); S3 rejects a request carrying a second auth mechanism.
    https://github.com/distribution/distribution/issues/2795
    """
    return urllib.parse.urlsplit(from_url).netloc != urllib.parse.urlsplit(to_url).netloc


def mount_fell_back(status: int) -> bool:
    """A cross-repo mount answered 202: the registry did not mount and opened an upload.

    NB: that is allowed whenever the blob is not in the source repo or the caller may
    not read it; the client must upload to the returned Location instead.
    https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
    """
    return status == 202


def tag_needs_put(existing_digest: str | None, digest: str) -> bool:
    """Put a tag only when it does not already name `digest`.

    NB: ECR repositories with IMMUTABLE tags answer 400 TAG_INVALID even when the tag is
    re-put with the same manifest, so a re-push HEADs each tag first and skips it if it
    already points at our digest; that keeps re-pushes idempotent.
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html
    """
    return existing_digest != digest


def content_length_zero_for_empty_post() -> dict[str, str]:
    """NB: a POST without a body still needs 'Content-Length: 0', or some front proxies answer 411.

    https://github.com/google/go-containerregistry/blob/v0.20.2/pkg/v1/remote/write.go (initiateUpload)
    """
    return {"Content-Length": "0"}


def content_range(start: int, end_inclusive: int) -> str:
    """NB: chunk ranges are 'start-end' with no 'bytes ' prefix, unlike RFC 9110's Content-Range.

    https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks
    """
    return f"{start}-{end_inclusive}"
