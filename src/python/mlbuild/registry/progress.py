"""Progress lines for long transfers (bytes and bytes/sec), written to stderr.

One line every `interval` seconds while a blob moves, and a summary line at the end for
blobs big enough to matter; lines, not a redrawn bar, so CI logs stay readable.
"""

from __future__ import annotations

import threading
import time
from typing import BinaryIO, Callable, TextIO

from mlbuild.oci.digest import HashingReader

MB = 1024 * 1024
SUMMARY_THRESHOLD = 8 * MB


def _mb(n: float) -> str:
    return f"{n / MB:.1f} MB"


class Progress:
    def __init__(
        self,
        stream: TextIO | None,
        label: str,
        total: int,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.label, self.total, self.interval, self.clock = stream, label, total, interval, clock
        self.done_bytes = 0
        self.start = self.last = clock()

    def advance(self, n: int) -> None:
        self.done_bytes += n
        now = self.clock()
        if self.stream is not None and now - self.last >= self.interval:
            self.last = now
            self._line("")

    def finish(self) -> float:
        elapsed = self.clock() - self.start
        if self.stream is not None and (self.total >= SUMMARY_THRESHOLD or elapsed >= self.interval):
            self._line(" done")
        return elapsed

    def _line(self, suffix: str) -> None:
        elapsed = max(self.clock() - self.start, 1e-6)
        rate = self.done_bytes / elapsed
        with _LOCK:
            print(f"{self.label}: {_mb(self.done_bytes)}/{_mb(self.total)} at {_mb(rate)}/s{suffix}", file=self.stream, flush=True)


_LOCK = threading.Lock()  # NB: parallel uploads share stderr; keep each line whole


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
