"""Read Debian binary packages (.deb) in pure Python.

A .deb is an `ar` archive of `debian-binary` ("2.0\\n"), `control.tar[.xz|.gz|.zst]` and
`data.tar[.xz|.gz|.zst|.bz2]`. Bookworm's packages (all 47 in the base) use xz for both,
which `tarfile` reads natively, as it does gzip and bzip2. zstd (Ubuntu's default, rare in
Debian) needs the `zstandard` module or the `zstd` binary; if neither is present the error
says so. No dpkg, no maintainer scripts.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Literal

from mlbuild.debian.errors import DebFormatError

AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int
    size: int


def read_ar_members(data: bytes, source: str = "<deb>") -> list[ArMember]:
    """List the members of an `ar` archive (the common/GNU format dpkg writes)."""
    if not data.startswith(AR_MAGIC):
        raise DebFormatError(f"{source}: not a .deb (no `!<arch>` ar header)")
    members = []
    pos = len(AR_MAGIC)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # padding byte tolerated by some writers
            pos += 1
            continue
        header = data[pos : pos + _AR_HEADER]
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise DebFormatError(f"{source}: truncated or corrupt ar member header at byte {pos}")
        name = header[0:16].decode("ascii", "replace").rstrip(" ").rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebFormatError(f"{source}: bad ar member size at byte {pos}") from None
        start = pos + _AR_HEADER
        if start + size > len(data):
            raise DebFormatError(f"{source}: ar member {name!r} runs past the end of the file")
        members.append(ArMember(name, start, size))
        pos = start + size + (size % 2)
    return members


def _decompress_zstd(payload: bytes, source: str) -> bytes:
    try:
        import zstandard  # type: ignore[import-not-found]

        return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
    except ImportError:
        pass
    if shutil.which("zstd"):
        proc = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True)
        if proc.returncode == 0:
            return proc.stdout
        raise DebFormatError(f"{source}: zstd failed: {proc.stderr.decode(errors='replace')}")
    raise DebFormatError(
        f"{source}: member is zstd-compressed; install the `zstandard` Python package "
        "or the `zstd` binary (apt-get install zstd)"
    )


def _open_tar(payload: bytes, member: str, source: str) -> tarfile.TarFile:
    suffix = member.rsplit(".tar", 1)[-1]
    modes: Dict[str, Literal["r:", "r:xz", "r:gz", "r:bz2"]] = {"": "r:", ".xz": "r:xz", ".gz": "r:gz", ".bz2": "r:bz2"}
    try:
        if suffix == ".zst":
            return tarfile.open(fileobj=io.BytesIO(_decompress_zstd(payload, source)), mode="r:")
        if suffix not in modes:
            raise DebFormatError(f"{source}: unsupported compression for member {member!r}")
        return tarfile.open(fileobj=io.BytesIO(payload), mode=modes[suffix])
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DebFormatError(f"{source}: member {member!r} is not a readable tar: {e}") from None


class DebPackage:
    """An opened .deb: its control text and its data tarball."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data = self.path.read_bytes()
        self._members = {m.name: m for m in read_ar_members(self._data, str(self.path))}
        binary = self._member_bytes("debian-binary")
        if not binary.startswith(b"2."):
            raise DebFormatError(f"{self.path}: unsupported .deb format version {binary!r}")

    def _member_bytes(self, name: str) -> bytes:
        m = self._members.get(name)
        if m is None:
            raise DebFormatError(f"{self.path}: no {name!r} member (has {sorted(self._members)})")
        return self._data[m.offset : m.offset + m.size]

    def _find(self, prefix: str) -> str:
        for name in self._members:
            if name == prefix or name.startswith(prefix + "."):
                return name
        raise DebFormatError(f"{self.path}: no {prefix}[.*] member (has {sorted(self._members)})")

    def data_tar(self) -> tarfile.TarFile:
        name = self._find("data.tar")
        return _open_tar(self._member_bytes(name), name, str(self.path))

    def control_text(self) -> str:
        """The `control` file (deb822 paragraph) from control.tar."""
        name = self._find("control.tar")
        with _open_tar(self._member_bytes(name), name, str(self.path)) as tar:
            for info in tar:
                if info.isfile() and info.name.lstrip("./") == "control":
                    f = tar.extractfile(info)
                    assert f is not None
                    return f.read().decode("utf-8")
        raise DebFormatError(f"{self.path}: control.tar has no `control` file")
