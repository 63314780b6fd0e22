"""Every reproducibility knob of mlbuild.oci, in one place.

Same inputs must give the same bytes, hence the same digests, on any machine and on any
day. So nothing here reads the clock, the user, the umask or the environment:

- EPOCH is a fixed constant, *not* `$SOURCE_DATE_EPOCH`. NB: honouring the variable would
  let two CI machines with different settings produce different digests for the same
  commit; a constant cannot drift. (https://reproducible-builds.org/docs/source-date-epoch/)
- Tar entries are sorted by path and normalised by `tar_info` (mtime, owner, mode).
- The gzip header carries no file name and mtime 0 (`GZIP_HEADER`).
- The compressor is chosen by `choose_compressor`; different compressors give different
  bytes for the same tar, so its id goes into every layer's annotations and into the
  layer cache key.
"""

from __future__ import annotations

import functools
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Final

from mlbuild.names import LAYER_COMPRESSOR_ANNOTATION
from mlbuild.oci.errors import UserError

# 1980-01-01T00:00:00Z. NB: not 0, because some tools (zip, older Go archive/tar readers)
# treat pre-1980 or zero times as "unset"; any fixed value works for reproducibility.
EPOCH = 315532800
# The image config's `created` (and history) timestamp, RFC 3339 as the image spec asks.
CREATED = "1980-01-01T00:00:00Z"

# NB: PAX, not GNU: PAX is what the OCI image spec references and Python writes PAX
# extended headers only when a field needs one (long or non-ASCII names, huge sizes).
TAR_FORMAT: Final = tarfile.PAX_FORMAT
TAR_ENCODING = "utf-8"

DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_FILE_MODE = 0o755
SYMLINK_MODE = 0o777

# RFC 1952 header: magic, CM=deflate, FLG=0 (no FNAME/FCOMMENT/FEXTRA), MTIME=0, XFL=0,
# OS=255 ("unknown", as Go's compress/gzip writes). https://www.rfc-editor.org/rfc/rfc1952
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
COMPRESS_LEVEL = 1

COMPRESSOR_ANNOTATION = LAYER_COMPRESSOR_ANNOTATION


def normalised_file_mode(mode: int) -> int:
    """0755 if any execute bit is set, else 0644: umask and checkout state must not matter."""
    return EXEC_FILE_MODE if mode & 0o111 else FILE_MODE


def tar_info(name: str, kind: bytes, *, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    """A TarInfo with every field that could vary between machines pinned."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode & 0o7777
    info.size = size if kind == tarfile.REGTYPE else 0
    info.linkname = linkname
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.devmajor = info.devminor = 0
    return info


@dataclass(frozen=True)
class Compressor:
    """A raw-deflate implementation at a fixed level; `id` names it exactly."""

    id: str
    compressobj: Callable[[], Any]
    crc32: Callable[[bytes, int], int]


def _zlib() -> Compressor:
    return Compressor(
        id=f"zlib-{zlib.ZLIB_RUNTIME_VERSION}/level{COMPRESS_LEVEL}",
        compressobj=functools.partial(zlib.compressobj, COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS),
        crc32=zlib.crc32,
    )


def _isal() -> Compressor | None:
    try:
        import isal
        from isal import isal_zlib
    except ImportError:
        return None
    return Compressor(
        # NB: the bytes depend on the bundled ISA-L C library, so its version is in the id too.
        id=f"isal-{isal.__version__}+isa-l-{isal.ISAL_VERSION}/level{COMPRESS_LEVEL}",
        compressobj=functools.partial(isal_zlib.compressobj, COMPRESS_LEVEL, isal_zlib.DEFLATED, -15),
        crc32=isal_zlib.crc32,
    )


COMPRESSOR_CHOICES = ("auto", "isal", "zlib")


def choose_compressor(choice: str = "auto") -> Compressor:
    """`isal` (about 7x faster than zlib at level 1) when importable for "auto", else zlib."""
    if choice not in COMPRESSOR_CHOICES:
        raise UserError(f"compressor {choice!r}: unknown; use one of {', '.join(COMPRESSOR_CHOICES)}.")
    if choice in ("auto", "isal"):
        found = _isal()
        if found is not None:
            return found
        if choice == "isal":
            raise UserError("compressor 'isal': the `isal` package is not installed; `pip install isal` or use 'zlib'.")
    return _zlib()


def file_kind(mode: int) -> str:
    """'dir', 'file', 'symlink' or a description of a type that layers must not carry."""
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return {
        stat.S_IFSOCK: "socket",
        stat.S_IFIFO: "fifo",
        stat.S_IFCHR: "char device",
        stat.S_IFBLK: "block device",
    }.get(stat.S_IFMT(mode), "unknown file type")
