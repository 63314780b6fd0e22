"""Unpacked images, cached by manifest digest: `<cache>/rootfs/<manifest digest hex>/`.

- A rootfs is unpacked into a temp sibling, prepared (mount points), then renamed into
  place, so a cache entry is always complete; two processes racing keep the first rename.
- Using an entry touches its mtime; after each use at most `keep` entries remain, the
  least recently used evicted first.
- The cache folder `rootfs/` is private (0700): an unpacked image is reachable by its user only.
- Temp folders (`.<key>.incomplete-<pid>-*`, `.<key>.evicting-<pid>-*`) of a process that
  died (kill -9) are removed by the next use, by dead owner pid or age (mlbuild/stale_temps.py).
- NB: a run holds a shared flock on the entry's directory while the container runs, and
  eviction takes an exclusive non-blocking one, so a rootfs in use is never deleted; the
  evictor renames before deleting, and a user re-checks the inode after locking.

NB: the key is the digest of the manifest as mlbuild.oci re-serialises it (canonical JSON,
OCI media types). It is a pure function of the config and the layer blobs, so equal images
share an entry, though for a foreign image it can differ from the registry's digest.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from mlbuild.oci.digest import hex_of
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import Image
from mlbuild.oci.unpack import unpack_image
from mlbuild.stale_temps import make_temp_dir, remove_stale_temps, remove_tree

DEFAULT_KEEP = 3
ROOTFS_DIR = "rootfs"
PRIVATE = 0o700

Unpack = Callable[[Image, Path], object]
Prepare = Callable[[Path], None]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlbuild"


def check_keep(keep: int) -> None:
    if keep < 1:
        raise UserError(
            f"keep {keep}: the rootfs cache keeps at least 1 unpacked image (the one running). Fix: --keep 1 or more."
        )


@dataclass(frozen=True)
class CachedRootfs:
    path: Path
    key: str  # manifest digest hex
    reused: bool  # False: unpacked by this call
    seconds: float  # time to get it (unpack + prepare, or lookup)


class RootfsCache:
    def __init__(
        self, cache_dir: Optional[Path] = None, keep: int = DEFAULT_KEEP, unpack: Unpack = unpack_image
    ) -> None:
        check_keep(keep)
        self.dir = Path(cache_dir or default_cache_dir()) / ROOTFS_DIR
        self.keep = keep
        self.unpack = unpack

    @staticmethod
    def key(image: Image) -> str:
        return hex_of(image.manifest_descriptor().digest)

    def entries(self) -> list[Path]:
        """Published entries, most recently used first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()]
        return sorted(found, key=lambda p: (-p.stat().st_mtime_ns, p.name))

    @contextmanager
    def use(self, image: Image, prepare: Optional[Prepare] = None) -> Iterator[CachedRootfs]:
        """The image's rootfs, unpacked if needed, kept from eviction until the block ends."""
        start = time.monotonic()
        key = self.key(image)
        final = self.dir / key
        self.dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE)
        os.chmod(self.dir, PRIVATE)  # NB: mkdir's mode is masked by the umask, and an old cache may be 0755
        reused = True
        fd = _lock_shared(final)
        while fd is None:
            reused = False
            self._unpack_into_place(image, final, prepare)
            fd = _lock_shared(final)
        try:
            os.utime(final)
            self.evict(exclude=key)
            yield CachedRootfs(final, key, reused, time.monotonic() - start)
        finally:
            os.close(fd)

    def evict(self, exclude: str = "") -> list[str]:
        """Remove entries beyond `keep` (least recently used first) that no run is using."""
        removed = []
        for path in self.entries()[self.keep :]:
            if path.name != exclude and _remove_if_unused(path):
                removed.append(path.name)
        remove_stale_temps(self.dir)
        return removed

    def _unpack_into_place(self, image: Image, final: Path, prepare: Optional[Prepare]) -> None:
        tmp = make_temp_dir(self.dir, f".{final.name}.incomplete")
        try:
            self.unpack(image, tmp)
            if prepare is not None:
                prepare(tmp)
            os.chmod(tmp, 0o755)  # NB: the container's `/`; private enough inside the 0700 cache folder
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                # NB: another process published the same image first; theirs is as good.
        finally:
            if tmp.exists():
                remove_tree(tmp)


def _lock_shared(path: Path) -> Optional[int]:
    """A shared flock on the directory at `path`, or None if there is none (or it was just evicted)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        still_there = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        still_there = False
    if not still_there:
        os.close(fd)
        return None
    return fd


def _remove_if_unused(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use by a running container
        trash = make_temp_dir(path.parent, f".{path.name}.evicting")
        os.rename(path, trash / "rootfs")
    finally:
        os.close(fd)
    remove_tree(trash)
    return True
