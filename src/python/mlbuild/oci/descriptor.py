"""The OCI content descriptor and the media types mlbuild reads and writes.

https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from mlbuild.names import OCI_REF_NAME_ANNOTATION
from mlbuild.oci import digest as digests
from mlbuild.oci.errors import UserError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

# NB: Docker schema 2 types, accepted when reading a base image (skopeo and Docker write them).
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (OCI_LAYER_GZIP, OCI_LAYER_TAR, DOCKER_LAYER_GZIP)

REF_NAME_ANNOTATION = OCI_REF_NAME_ANNOTATION


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"

    def to_json(self) -> dict[str, str]:
        return {"architecture": self.architecture, "os": self.os}


LINUX_AMD64 = Platform()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None  # OCI 1.1: set on descriptors of artifact manifests (referrers)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, where: str) -> Descriptor:
        try:
            platform = data.get("platform")
            return cls(
                media_type=str(data["mediaType"]),
                digest=digests.validate(str(data["digest"]), what=f"{where}: digest"),
                size=int(data["size"]),
                annotations=dict(data.get("annotations") or {}),
                platform=Platform(platform["os"], platform["architecture"]) if platform else None,
                artifact_type=str(data["artifactType"]) if data.get("artifactType") else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{where}: not a valid OCI descriptor ({e!r}).") from e
