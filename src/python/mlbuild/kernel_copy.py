"""Append a byte range of one file to another in the kernel (`copy_file_range`).

For the big, already-compressed bytes mlbuild moves as they are (a wheel's zip entries into a
PEX, blobs into an oci-archive): no trip through Python's buffers. Falls back to a chunked copy
where the kernel refuses (another filesystem on an old kernel, a pipe). A leaf: imports
nothing from mlbuild.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Optional

CHUNK = 1 << 30
FALLBACK_BUFFER = 1 << 20


def append_range(src: BinaryIO, out: BinaryIO, size: int, offset: Optional[int] = None) -> None:
    """Append `size` bytes of `src` (from `offset`, else from its position) to the end of `out`.

    `out` is flushed first and re-synced after, so its Python-side position stays right.
    Raises OSError if `src` ends early.
    """
    out.flush()
    start = src.tell() if offset is None else offset
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(src.fileno(), out.fileno(), min(size - done, CHUNK), start + done)
            if copied == 0:
                raise EOFError
            done += copied
    except EOFError:
        raise OSError(f"{getattr(src, 'name', 'source')}: ended {size - done} bytes early") from None
    except OSError:
        if done:
            raise
        _copy_through_python(src, out, start, size)
    else:
        if offset is None:
            src.seek(start + size)
    # NB: the kernel moved the fd's offset behind the buffered object's back.
    out.seek(0, os.SEEK_END)


def _copy_through_python(src: BinaryIO, out: BinaryIO, start: int, size: int) -> None:
    src.seek(start)
    left = size
    while left:
        chunk = src.read(min(left, FALLBACK_BUFFER))
        if not chunk:
            raise OSError(f"{getattr(src, 'name', 'source')}: ended {left} bytes early")
        out.write(chunk)
        left -= len(chunk)
