"""Unpack .deb data tarballs into a directory, like `dpkg-deb -x`, in pure Python.

Pure Python rather than `dpkg-deb -x` so the base builds the same on any Linux or macOS
machine with CPython 3.11 (no dpkg needed), and so every path can be checked: no absolute
paths, no `..`, no writing through a symlink, no device nodes, and no two packages
shipping different contents at one path (dpkg would refuse that too). Owners and mtimes
are not kept (the OCI layer writer normalises them); contents, modes and symlink targets
are exact. Directory modes are applied last and the first package to ship a directory
decides its mode, as with dpkg.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mlbuild.debian.deb import DebPackage
from mlbuild.debian.errors import RootfsError

PathFilter = Callable[[str], bool]


def keep_path(path: str) -> bool:
    """Default filter: drop docs, man/info pages, translations; keep copyright files.

    `path` is relative to the root, without a leading `./` or `/`.
    """
    parts = path.split("/")
    if parts[:2] == ["usr", "share"] and len(parts) >= 3:
        if parts[2] in ("man", "info", "locale", "lintian", "doc-base", "bug"):
            return False
        if parts[2] == "doc":
            # usr/share/doc, usr/share/doc/PKG (dir or symlink), usr/share/doc/PKG/copyright
            return len(parts) <= 4 or (len(parts) == 5 and parts[4] == "copyright")
    return True


def normalize_member_name(name: str, source: str) -> str:
    """`./usr/bin/x` -> `usr/bin/x`; `./` -> ``; rejects absolute and `..` paths."""
    if name.startswith("/") or "\\" in name:
        raise RootfsError(f"{source}: unsafe path {name!r} in data.tar (absolute or backslash)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RootfsError(f"{source}: unsafe path {name!r} in data.tar (contains `..`)")
    return "/".join(parts)


@dataclass
class _Unpacker:
    root: Path
    keep: PathFilter = keep_path
    owners: dict[str, str] = field(default_factory=dict)  # non-directory path -> package
    dir_modes: dict[str, int] = field(default_factory=dict)  # dir path -> mode (first wins)

    def _target(self, rel: str, pkg: str) -> Path:
        # Every ancestor must be a real directory we created, never a symlink.
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.dir_modes:
                continue
            p = self.root / parent
            if p.is_symlink() or (p.exists() and not p.is_dir()):
                raise RootfsError(
                    f"{pkg}: {rel} would be written through {parent}, which is not a directory "
                    f"(shipped by {self.owners.get(parent, '?')})"
                )
            p.mkdir(exist_ok=True)
            self.dir_modes[parent] = 0o755
        return self.root / rel

    def _claim(self, rel: str, pkg: str, same: Callable[[Path], bool]) -> bool:
        """True if the path is free; False if it holds identical content (skip)."""
        path = self.root / rel
        if rel in self.dir_modes:
            raise RootfsError(f"{pkg}: ships {rel} as a non-directory, but it is a directory")
        if not os.path.lexists(path):
            return True
        if same(path):
            return False
        raise RootfsError(
            f"{pkg}: {rel} is also shipped, with different contents, by {self.owners.get(rel, '?')}; "
            "drop one of the packages from the lock inputs"
        )

    def unpack(self, deb: DebPackage, pkg: str) -> None:
        with deb.data_tar() as tar:
            for info in tar:
                rel = normalize_member_name(info.name, f"{pkg} ({deb.path.name})")
                if not rel or not self.keep(rel):
                    continue
                self._unpack_member(tar, info, rel, pkg)

    def _unpack_member(self, tar: tarfile.TarFile, info: tarfile.TarInfo, rel: str, pkg: str) -> None:
        mode = info.mode & 0o7777
        if info.isdir():
            path = self._target(rel, pkg)
            if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
                raise RootfsError(
                    f"{pkg}: ships directory {rel}, but {self.owners.get(rel, '?')} made it a non-directory"
                )
            path.mkdir(exist_ok=True)
            self.dir_modes.setdefault(rel, mode)
        elif info.isreg():
            path = self._target(rel, pkg)
            f = tar.extractfile(info)
            assert f is not None
            content = f.read()
            same = lambda p: (
                not p.is_symlink()
                and p.is_file()
                and p.read_bytes() == content
                and stat.S_IMODE(p.lstat().st_mode) == mode
            )
            if self._claim(rel, pkg, same):
                path.write_bytes(content)
                os.chmod(path, mode)
                self.owners[rel] = pkg
        elif info.issym():
            path = self._target(rel, pkg)
            if self._claim(rel, pkg, lambda p: p.is_symlink() and os.readlink(p) == info.linkname):
                os.symlink(info.linkname, path)
                self.owners[rel] = pkg
        elif info.islnk():
            path = self._target(rel, pkg)
            link = normalize_member_name(info.linkname, pkg)
            source = self.root / link
            if not source.is_file() or source.is_symlink():
                raise RootfsError(f"{pkg}: hard link {rel} -> {link}, whose target was not unpacked")
            if self._claim(rel, pkg, lambda p: p.read_bytes() == source.read_bytes()):
                os.link(source, path)
                self.owners[rel] = pkg
        else:
            raise RootfsError(f"{pkg}: {rel} is a device, fifo or other special file; not supported")

    def finish(self) -> None:
        # Deepest first, so tightening a parent never blocks fixing up a child.
        for rel in sorted(self.dir_modes, key=lambda r: -r.count("/")):
            os.chmod(self.root / rel, self.dir_modes[rel])


def unpack_debs(debs: list[tuple[str, Path]], root: Path, keep: PathFilter = keep_path) -> list[str]:
    """Unpack `(package name, .deb path)` pairs, in the given order, into existing dir `root`.

    Returns each package's control paragraph (for /var/lib/dpkg/status), in the same order.
    """
    unpacker = _Unpacker(Path(root), keep)
    controls = []
    for name, path in debs:
        deb = DebPackage(path)
        controls.append(deb.control_text())
        unpacker.unpack(deb, name)
    unpacker.finish()
    return controls
