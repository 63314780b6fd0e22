"""Image references: `[host[:port]/]repo/name[:tag][@sha256:...]`.

Grammar: https://github.com/distribution/distribution/blob/v2.8.3/reference/reference.go
A first component is a registry host only if it has a '.' or ':' or is 'localhost',
exactly as Docker decides; otherwise the reference is on Docker Hub.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mlbuild.registry.errors import ReferenceError

DOCKER_HUB = "docker.io"
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_ECR_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed); any other spelling counts as remote."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port], as written
    repository: str  # e.g. 'team/trainer'
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        """The registry host without its port."""
        return self.registry.rsplit(":", 1)[0] if self.registry.count(":") == 1 else self.registry

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def ecr(self) -> tuple[str, str] | None:
        """(account id, region) for an ECR private registry host, else None."""
        m = _ECR_RE.match(self.host)
        return (m["account"], m["region"]) if m else None

    @property
    def repo_uri(self) -> str:
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        out = self.repo_uri
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    where = f"image reference {text!r}"
    rest = text.strip()
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ReferenceError(f"{where}: {digest!r} is not a sha256 digest ('sha256:' + 64 lowercase hex).")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise ReferenceError(f"{where}: {tag!r} is not a valid tag (letters, digits, '_', '.', '-'; max 128).")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not _REPO_RE.match(path):
        raise ReferenceError(
            f"{where}: {path!r} is not a valid repository name (lowercase letters, digits and separators,"
            f" e.g. 'registry.example.com:5000/team/trainer:tag')."
        )
    return Reference(registry, path, tag, digest)
