"""Build a distroless-style root filesystem from a package lock.

`build_rootfs(lock, out)` = fetch every locked .deb (verified, cached) -> unpack them in
lock order (sorted by name) with no maintainer scripts -> apply the fix-ups -> move the
finished tree to `out`. The tree is built in a sibling temp dir and renamed into place, so
`out` is either absent, the previous complete tree, or the new complete tree.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from mlbuild.debian.errors import RootfsError
from mlbuild.debian.extract import PathFilter, keep_path, unpack_debs
from mlbuild.debian.fetch import fetch_all
from mlbuild.debian.fixups import apply_fixups
from mlbuild.debian.lock import PackageLock
from mlbuild.debian.treehash import TreeSummary, summarize_tree


@dataclass(frozen=True)
class RootfsResult:
    path: Path
    packages: tuple[tuple[str, str], ...]  # (name, version)
    summary: TreeSummary


def _rmtree(path: Path) -> None:
    def make_writable(func, p, _exc):  # dirs unpacked with mode 0555 etc.
        os.chmod(os.path.dirname(p), stat.S_IRWXU)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IRWXU)
        func(p)

    shutil.rmtree(path, onerror=make_writable)


@contextmanager
def atomic_directory(out: Path, replace: bool) -> Iterator[Path]:
    """Yield a temp dir beside `out`; on success it becomes `out`, on failure it is removed."""
    out = Path(out)
    if os.path.lexists(out) and not replace:
        raise RootfsError(f"{out} already exists; remove it or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if os.path.lexists(out):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "tree")
            os.rename(tmp, out)
            _rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        if tmp.exists():
            _rmtree(tmp)
        raise


def assemble_rootfs(
    debs: Sequence[tuple[str, Path]],
    out: Path,
    *,
    replace: bool = False,
    keep: PathFilter = keep_path,
) -> TreeSummary:
    """Unpack `(name, .deb)` pairs in the given order into `out` and apply the fix-ups."""
    with atomic_directory(out, replace) as tmp:
        controls = unpack_debs(list(debs), tmp, keep)
        apply_fixups(tmp, controls)
    return summarize_tree(out)


def build_rootfs(
    lock: PackageLock,
    out: Path,
    *,
    cache_dir: Path | None = None,
    mirrors: Mapping[str, str] | None = None,
    replace: bool = False,
    keep: PathFilter = keep_path,
) -> RootfsResult:
    """Fetch (cached, verified) and unpack every package of `lock` into `out`."""
    paths = fetch_all(lock, cache_dir, mirrors=mirrors)
    debs = [(p.name, paths[p.name]) for p in lock.packages]
    summary = assemble_rootfs(debs, out, replace=replace, keep=keep)
    return RootfsResult(Path(out), tuple((p.name, p.version) for p in lock.packages), summary)
