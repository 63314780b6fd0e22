"""Training image references, pinned by digest.

A job must name the exact image that was built and pushed, so `TrainingImage` is always
`<registry>/<repository>@sha256:<64 hex>`; a tag alone (`:latest`, `:v3`) can move after
submission and is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlbuild.runtime.errors import UserError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REFERENCE = re.compile(r"^(?P<name>[^@\s]+)@(?P<digest>[^@\s]+)$")


@dataclass(frozen=True)
class ImageRef:
    repository: str  # registry host and path, no tag
    digest: str  # sha256:<hex>

    @property
    def uri(self) -> str:
        return f"{self.repository}@{self.digest}"


def parse_image_uri(uri: str, source: str = "image URI") -> ImageRef:
    """Parse `repo@sha256:...` (a `repo:tag@sha256:...` loses its tag); reject tag-only."""
    match = _REFERENCE.match(uri.strip())
    if not match:
        raise UserError(
            f"{source}: {uri!r} is not pinned by digest. "
            f"Fix: pass the pushed image as <registry>/<repository>@sha256:<digest>, not a tag."
        )
    name, digest = match.group("name"), match.group("digest")
    if not _DIGEST.match(digest):
        raise UserError(f"{source}: {digest!r} in {uri!r} is not a sha256 digest. Fix: use sha256:<64 lowercase hex>.")
    # NB: SageMaker documents TrainingImage as `repository[:tag]` or `repository[@digest]`,
    # not both, so a tag next to a digest is dropped: the digest alone names the image.
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AlgorithmSpecification.html
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if not name or name.endswith("/"):
        raise UserError(
            f"{source}: {uri!r} has no repository name. Fix: write <registry>/<repository>@sha256:<digest>."
        )
    return ImageRef(repository=name, digest=digest)


def check_digest(value: str, source: str) -> str:
    if not _DIGEST.match(value):
        raise UserError(f"{source}: {value!r} is not a sha256 digest. Fix: use sha256:<64 lowercase hex>.")
    return value
