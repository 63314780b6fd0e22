"""Write a file so that readers see all of it or none of it, and it survives a crash.

A temp file in the same folder (so the rename stays on one filesystem), written, flushed and
fsynced, then renamed over the final name; on any failure the temp file is removed. Two
writers of the same name race harmlessly when they write the same bytes. Imports nothing from
mlbuild: the runtime (checkpoints) and the host side (the lineage store) share it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(final: Path, data: bytes, prefix: str, suffix: str = "") -> Path:
    """`data` at `final`, via `<prefix>*<suffix>` beside it; returns `final`."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final
