"""Progress lines for long transfers (bytes and bytes/sec), written to stderr.

The lines are `mlbuild.console.Progress`'s (one style for every host-side tool): one every
`interval` seconds while a blob moves, and a ` done` line at the end for blobs big enough to
matter; lines, not a redrawn bar, so CI logs stay readable. Here: the request body that
reports what it sends.
"""

from __future__ import annotations

from typing import BinaryIO

from mlbuild.console import Progress
from mlbuild.oci.digest import HashingReader

__all__ = ["Progress", "ProgressReader"]


class ProgressReader(HashingReader):
    """A request body: reads a file in blocks, hashing and reporting what was sent."""

    def __init__(self, source: BinaryIO, progress: Progress, limit: int | None = None) -> None:
        super().__init__(source)
        self.progress = progress
        self.remaining = limit

    def read(self, n: int = -1) -> bytes:
        if self.remaining is not None:
            n = self.remaining if n < 0 else min(n, self.remaining)
        data = super().read(n)
        if self.remaining is not None:
            self.remaining -= len(data)
        self.progress.advance(len(data))
        return data
