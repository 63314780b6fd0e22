"""A digest of a directory tree's contents, modes and symlinks (not owners or mtimes).

Two rootfs builds from the same lock must have the same digest; the OCI layer writer
normalises owners and mtimes, so those are deliberately left out.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TreeSummary:
    digest: str  # sha256 over the sorted (path, type, mode, content/target) records
    files: int
    dirs: int
    symlinks: int
    bytes: int  # total size of regular files (hard links counted once per path)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def summarize_tree(root: Path) -> TreeSummary:
    root = Path(root)
    h = hashlib.sha256()
    files = dirs = links = total = 0
    entries: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            entries.append(os.path.relpath(os.path.join(dirpath, name), root))
    for rel in sorted(entries):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            record = f"L {rel} {mode:o} {os.readlink(p)}"
            links += 1
        elif stat.S_ISDIR(st.st_mode):
            record = f"D {rel} {mode:o}"
            dirs += 1
        elif stat.S_ISREG(st.st_mode):
            content = _sha256(p)
            record = f"F {rel} {mode:o} {content}"
            files += 1
            total += st.st_size
        else:
            record = f"O {rel} {mode:o} {stat.S_IFMT(st.st_mode):o}"
        h.update(record.encode("utf-8", "surrogateescape") + b"\0")
    return TreeSummary(h.hexdigest(), files, dirs, links, total)
