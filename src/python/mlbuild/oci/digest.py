"""sha256 digests in OCI form (`sha256:<64 hex>`), computed while bytes stream past."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from mlbuild.oci.errors import UserError

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK_SIZE = 1 << 20


def digest_of(data: bytes) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def validate(digest: str, *, what: str) -> str:
    """Only sha256 is accepted: it is the only algorithm registries must support."""
    if not _DIGEST_RE.match(digest):
        raise UserError(f"{what}: {digest!r} is not a sha256 digest (expected 'sha256:' + 64 lowercase hex).")
    return digest


def hex_of(digest: str) -> str:
    return digest.split(":", 1)[1]


class HashingWriter:
    """A write-only file wrapper that counts and hashes what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._sink.write(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def digest(self) -> str:
        return f"{ALGORITHM}:{self._hash.hexdigest()}"


class HashingReader:
    """A read-only file wrapper that counts and hashes what is read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # NB: isal's gzip reader reads this way
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK_SIZE):
            pass

    @property
    def digest(self) -> str:
        return f"{ALGORITHM}:{self._hash.hexdigest()}"
