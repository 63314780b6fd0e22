"""Build tiny .deb files and locks for tests, offline (no dpkg needed).

Used by this package's tests; also usable by tests of the image build rules that want a
small fake base without the network.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from mlbuild.debian.lock import AptSource, LockedPackage, LockInputs, PackageLock


@dataclass(frozen=True)
class Entry:
    """One data.tar member. kind: "file", "dir", "symlink" or "hardlink"."""

    path: str  # e.g. "./usr/bin/tool"
    kind: str = "file"
    content: bytes = b""
    mode: int = 0o644
    target: str = ""  # symlink target / hard link source


def _tar_bytes(entries: Sequence[Entry], compression: str) -> bytes:
    buf = io.BytesIO()
    # NB: a zst member is a plain tar that the zstd binary compresses below.
    modes: dict[str, Literal["w:", "w:gz", "w:xz", "w:bz2"]] = {
        "": "w:",
        "zst": "w:",
        "gz": "w:gz",
        "xz": "w:xz",
        "bz2": "w:bz2",
    }
    mode = modes[compression]
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.mtime = 1_700_000_000
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target
                tar.addfile(info)
            elif e.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e.target
                tar.addfile(info)
            else:
                info.size = len(e.content)
                tar.addfile(info, io.BytesIO(e.content))
    data = buf.getvalue()
    if compression == "zst":
        if not shutil.which("zstd"):
            raise RuntimeError("zstd binary needed to build a .zst test member")
        data = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return data


def ar_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode("ascii")
        assert len(header) == 60
        out.append(header)
        out.append(data)
        if len(data) % 2:
            out.append(b"\n")
    return b"".join(out)


def make_deb(
    path: Path,
    name: str,
    version: str = "1.0-1",
    entries: Sequence[Entry] = (),
    *,
    architecture: str = "amd64",
    compression: str = "xz",
    depends: str = "",
) -> Path:
    control = f"Package: {name}\nVersion: {version}\nArchitecture: {architecture}\n"
    if depends:
        control += f"Depends: {depends}\n"
    control += "Maintainer: Test <test@example.com>\nDescription: test package\n"
    control_tar = _tar_bytes([Entry("./control", content=control.encode())], "xz")
    suffix = f".{compression}" if compression else ""
    data_tar = _tar_bytes(list(entries), compression)
    path = Path(path)
    path.write_bytes(
        ar_archive([("debian-binary", b"2.0\n"), ("control.tar.xz", control_tar), (f"data.tar{suffix}", data_tar)])
    )
    return path


def locked(pkg_name: str, version: str, deb: Path, mirror: str = "test", arch: str = "amd64") -> LockedPackage:
    data = Path(deb).read_bytes()
    return LockedPackage(
        name=pkg_name,
        version=version,
        architecture=arch,
        mirror=mirror,
        filename=f"pool/main/{pkg_name[0]}/{pkg_name}/{Path(deb).name}",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def make_mirror(root: Path, debs: Sequence[tuple[str, str, Path]]) -> PackageLock:
    """Lay `(name, version, deb)` out as a file:// mirror under `root`; return its lock."""
    packages = []
    for name, version, deb in debs:
        pkg = locked(name, version, deb)
        dest = Path(root) / pkg.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
        packages.append(pkg)
    return PackageLock(
        inputs=LockInputs(tuple(sorted(n for n, _, _ in debs)), "amd64", (AptSource("test", "bookworm"),)),
        mirrors={"test": Path(root).resolve().as_uri()},
        packages=tuple(packages),
    )
