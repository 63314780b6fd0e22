"""What a layer may hold, decided once for `unpack` (unpack.py) and `check` (merged_fs.py).

- Entry types: directories, regular files, symlinks, hardlinks; fifos are skipped; device
  nodes and any other type are refused.
- Whiteouts: `.wh.<name>` with a real name and the opaque marker `.wh..wh..opq`; `.wh.`,
  `.wh..`, `.wh..wh.x` are refused (https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#whiteouts).
- Modes: setuid, setgid and sticky bits and the world-writable bit are dropped (as rootless
  runtimes do: the unpacking user owns every file), unless `keep_special_modes`.
- Limits, checked while the bytes stream (a 2.6 MB gzip can inflate to many GB): decompressed
  bytes and entries for the whole image, and the size of any one file. Defaults below; raise
  them with the CLI's --max-bytes/--max-entries/--max-file-bytes or the MLBUILD_UNPACK_* variables.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from mlbuild.names import (
    UNPACK_KEEP_SPECIAL_MODES_ENV,
    UNPACK_MAX_BYTES_ENV,
    UNPACK_MAX_ENTRIES_ENV,
    UNPACK_MAX_FILE_BYTES_ENV,
)
from mlbuild.oci.errors import UserError
from mlbuild.oci.rootfs_path import OPAQUE_WHITEOUT, PathRefused, whiteout_target

GIB = 1 << 30
DEFAULT_MAX_BYTES = 64 * GIB  # NB: CUDA training images unpack to ~20 GB; 3x headroom
DEFAULT_MAX_ENTRIES = 2_000_000  # NB: a big conda-style image has ~300k entries
DEFAULT_MAX_FILE_BYTES = 32 * GIB
SPECIAL_BITS = 0o7000  # setuid, setgid, sticky
WORLD_WRITABLE = 0o002
LIMIT_ENV = {
    "max_bytes": UNPACK_MAX_BYTES_ENV,
    "max_entries": UNPACK_MAX_ENTRIES_ENV,
    "max_file_bytes": UNPACK_MAX_FILE_BYTES_ENV,
}
KEEP_MODES_ENV = UNPACK_KEEP_SPECIAL_MODES_ENV
_OPTION = {"max_bytes": "--max-bytes", "max_entries": "--max-entries", "max_file_bytes": "--max-file-bytes"}


@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int = DEFAULT_MAX_BYTES  # decompressed tar bytes, all layers together
    max_entries: int = DEFAULT_MAX_ENTRIES  # tar entries, all layers together
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # one file
    keep_special_modes: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> UnpackLimits:
        values: dict = {}
        for name, var in LIMIT_ENV.items():
            text = env.get(var, "").strip()
            if text:
                if not text.isdigit() or int(text) < 1:
                    raise UserError(f"${var}={text!r}: give a positive whole number (bytes or entries).")
                values[name] = int(text)
        return cls(**values, keep_special_modes=env.get(KEEP_MODES_ENV, "") == "1")

    def with_options(self, **given: int | None) -> UnpackLimits:
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        return replace(self, **changes)


@dataclass
class Budget:
    """What is left of the limits while layers stream; `fork()` for a pass that must not count twice."""

    limits: UnpackLimits = field(default_factory=UnpackLimits)
    bytes_used: int = 0
    entries_used: int = 0

    def fork(self) -> Budget:
        return Budget(self.limits, self.bytes_used, self.entries_used)

    def add_bytes(self, n: int, layer_digest: str) -> None:
        self.bytes_used += n
        if self.bytes_used > self.limits.max_bytes:
            raise LimitExceeded(
                layer_digest, f"the image inflates to more than {self.limits.max_bytes} bytes", "max_bytes"
            )

    def add_entry(self, member: tarfile.TarInfo, layer_digest: str) -> None:
        self.entries_used += 1
        if self.entries_used > self.limits.max_entries:
            raise LimitExceeded(
                layer_digest, f"the image has more than {self.limits.max_entries} entries", "max_entries"
            )
        if member.size > self.limits.max_file_bytes:
            raise LimitExceeded(
                layer_digest,
                f"entry {member.name!r} is {member.size} bytes, over {self.limits.max_file_bytes}",
                "max_file_bytes",
            )


class LimitExceeded(UserError):
    def __init__(self, layer_digest: str, what: str, limit: str) -> None:
        super().__init__(
            f"layer {layer_digest}: {what}; refused (a decompression bomb, or a really big image)."
            f" Fix: if the image is trusted, raise the limit with {_OPTION[limit]} or ${LIMIT_ENV[limit]}."
        )


def entry_kind(member: tarfile.TarInfo) -> str:
    """'dir' | 'file' | 'symlink' | 'hardlink' | 'fifo'; raises PathRefused for what no layer may hold."""
    if member.isdir():
        return "dir"
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
        return "file"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfifo():
        return "fifo"
    if member.ischr() or member.isblk():
        raise PathRefused("device node; images built by mlbuild must not carry device files")
    raise PathRefused(f"unsupported tar entry type {member.type!r}")


def whiteout_name(base: str) -> str | None:
    """The name a whiteout entry hides ('' for the opaque marker); None for no whiteout; raises for a bad one."""
    if base == OPAQUE_WHITEOUT:
        return ""
    name = whiteout_target(base)
    if name is not None and (name in ("", ".", "..") or name.startswith(".wh.")):
        raise PathRefused(f"whiteout of {name!r} is not a valid whiteout")
    return name


def safe_mode(mode: int, limits: UnpackLimits) -> int:
    mode &= 0o7777
    return mode if limits.keep_special_modes else mode & ~(SPECIAL_BITS | WORLD_WRITABLE)
