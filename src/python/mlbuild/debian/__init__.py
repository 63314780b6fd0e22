"""Hermetic, distroless-style Debian base root filesystems from a committed package lock.

Plain Python (never imports Pants). The public API for build rules:

    from mlbuild.debian import load_lock, build_rootfs
    result = build_rootfs(load_lock(path), out_dir, cache_dir=None)  # -> RootfsResult

and for refreshing the lock: `resolve_lock(packages)` + `write_lock(lock, path)`.
"""

from mlbuild.debian.errors import (
    ChecksumMismatch,
    DebFormatError,
    DebianError,
    FetchError,
    LockFileError,
    ResolveError,
    RootfsError,
)
from mlbuild.debian.fetch import default_cache_dir, fetch_all
from mlbuild.debian.lock import (
    DEFAULT_PACKAGES,
    AptSource,
    LockedPackage,
    LockInputs,
    PackageLock,
)
from mlbuild.debian.lock import load as load_lock
from mlbuild.debian.lock import write as write_lock
from mlbuild.debian.resolve import resolve_lock
from mlbuild.debian.rootfs import RootfsResult, assemble_rootfs, build_rootfs
from mlbuild.debian.treehash import TreeSummary, summarize_tree

__all__ = [
    "AptSource",
    "ChecksumMismatch",
    "DEFAULT_PACKAGES",
    "DebFormatError",
    "DebianError",
    "FetchError",
    "LockFileError",
    "LockInputs",
    "LockedPackage",
    "PackageLock",
    "ResolveError",
    "RootfsError",
    "RootfsResult",
    "TreeSummary",
    "assemble_rootfs",
    "build_rootfs",
    "default_cache_dir",
    "fetch_all",
    "load_lock",
    "resolve_lock",
    "summarize_tree",
    "write_lock",
]
