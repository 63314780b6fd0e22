"""The host's view of an unpacked rootfs: look paths up as the container would see them.

Everything here goes through `mlbuild.oci.rootfs_path.resolve`, never through the host's
own path resolution, so a symlink in the image (`train -> /opt/program/train`) is followed
*inside* the rootfs and can never lead to a host file.
- chroot mode (`find`): what a process in the container sees; absolute symlinks restart
  at the rootfs, `..` stops there.
- strict mode (`make_dirs`): creating directories refuses absolute or escaping symlinks,
  as the unpacker does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlbuild.container_run.errors import RootfsError
from mlbuild.oci.determinism import file_kind
from mlbuild.oci.rootfs_path import Lookup, Node, PathRefused, resolve


def lookup_in(rootfs: Path) -> Lookup:
    root = str(rootfs)

    def lookup(rel: str) -> Node | None:
        path = os.path.join(root, rel) if rel else root
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = file_kind(st.st_mode)
        return Node(kind, stat.S_IMODE(st.st_mode), os.readlink(path) if kind == "symlink" else "")

    return lookup


def parts_of(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def find(rootfs: Path, path: str) -> tuple[str, Node | None]:
    """Absolute container `path` -> (symlink-free relative path, its node or None), chroot rules.

    NB: a symlink loop yields (path, None), as the kernel's ELOOP makes exec fail too.
    """
    lookup = lookup_in(rootfs)
    try:
        rel = "/".join(resolve(lookup, parts_of(path), follow_last=True, chroot=True))
    except PathRefused:
        return path.lstrip("/"), None
    return rel, lookup(rel)


def is_executable_file(node: Node | None) -> bool:
    return node is not None and node.kind == "file" and bool(node.mode & 0o111)


def read_head(rootfs: Path, rel: str, size: int = 256) -> bytes:
    """The first bytes of a file found by `find` (its path has no symlinks; O_NOFOLLOW guards the last)."""
    fd = os.open(os.path.join(rootfs, rel), os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read(size)


def make_dirs(rootfs: Path, path: str, mode: int = 0o755) -> None:
    """`mkdir -p` of container `path` inside `rootfs`, never writing through an escaping symlink."""
    lookup = lookup_in(rootfs)
    try:
        resolved = resolve(lookup, parts_of(path), follow_last=True)
    except PathRefused as e:
        raise RootfsError(f"cannot create the mount point {path} in the image: {e.reason}.") from None
    for i in range(1, len(resolved) + 1):
        rel = "/".join(resolved[:i])
        node = lookup(rel)
        if node is None:
            os.mkdir(os.path.join(rootfs, rel), mode)
            os.chmod(os.path.join(rootfs, rel), mode)  # NB: mkdir's mode is masked by the umask.
        elif node.kind != "dir":
            raise RootfsError(
                f"the image has a {node.kind} at /{rel}, where the sandbox needs a directory to mount {path}."
            )


def make_file(rootfs: Path, path: str, mode: int = 0o644) -> None:
    """An empty file at container `path` (a mount point for a bound file), unless something is there.

    The parent folder is made with `make_dirs`' rules; the file is made with O_NOFOLLOW|O_EXCL,
    so it is never written through a symlink.
    """
    parent, _, name = path.rstrip("/").rpartition("/")
    make_dirs(rootfs, parent or "/")
    lookup = lookup_in(rootfs)
    try:
        resolved = resolve(lookup, parts_of(parent), follow_last=True)
    except PathRefused as e:
        raise RootfsError(f"cannot create the mount point {path} in the image: {e.reason}.") from None
    rel = "/".join([*resolved, name])
    node = lookup(rel)
    if node is None:
        fd = os.open(os.path.join(rootfs, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        os.close(fd)
    elif node.kind not in ("file", "symlink"):
        raise RootfsError(f"the image has a {node.kind} at /{rel}, where the sandbox needs a file to mount {path}.")
