"""Path handling shared by the unpacker and the merged-filesystem view.

Both look at a root filesystem through one function, `lookup(relpath) -> Node | None`,
so the same resolution rules apply to a real directory and to a set of tar headers.

Two modes of symlink resolution:
- strict (writing a layer): a symlink may be followed only if its target is relative and
  stays inside the root. Absolute targets are refused rather than re-rooted, so a layer
  can never be tricked into writing through `a -> /etc` even by a buggy unpacker later.
- chroot (asking what a process in the container would see): absolute targets restart
  at the root and `..` stops at the root, as the kernel does inside a chroot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

# Same limit as Linux's MAXSYMLINKS (fs/namei.c).
MAX_SYMLINK_HOPS = 40


@dataclass(frozen=True)
class Node:
    kind: str  # 'dir' | 'file' | 'symlink' | anything else determinism.file_kind names
    mode: int = 0o755
    linkname: str = ""


Lookup = Callable[[str], Optional[Node]]


class PathRefused(Exception):
    """A path cannot be used safely; `reason` says why (callers add layer and entry)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def member_parts(name: str) -> list[str]:
    """Split a tar member name into components; refuses absolute paths and `..`.

    NB: './usr/bin' and 'usr/bin/' are common spellings of 'usr/bin' in real layers.
    """
    if name.startswith("/"):
        raise PathRefused("absolute path; layer entries must be relative to the image root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused("'..' component; layer entries must stay inside the image root")
    return parts


def resolve(lookup: Lookup, parts: list[str], *, follow_last: bool, chroot: bool = False) -> list[str]:
    """Resolve `parts` to a path whose components (bar the last, unless `follow_last`) are no symlinks.

    Missing components are allowed (they will be created as directories, or simply do not
    exist); a component that exists and is neither a directory nor a symlink is refused.
    """
    resolved: list[str] = []
    todo = list(parts)
    hops = 0
    while todo:
        comp = todo.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            elif not chroot:
                raise PathRefused("a symlink on the way climbs above the image root")
            continue
        candidate = [*resolved, comp]
        node = lookup("/".join(candidate))
        last = not todo
        if node is not None and node.kind == "symlink" and (follow_last or not last):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise PathRefused(f"more than {MAX_SYMLINK_HOPS} symlinks on the way (a loop?)")
            target = node.linkname
            if target.startswith("/"):
                if not chroot:
                    raise PathRefused(
                        f"'{'/'.join(candidate)}' is a symlink to the absolute path {target!r}; "
                        "mlbuild never writes through a symlink that could leave the image root"
                    )
                resolved = []
            todo = target.split("/") + todo
            continue
        if node is not None and node.kind not in ("dir", "symlink") and not last:
            raise PathRefused(f"'{'/'.join(candidate)}' is a {node.kind}, not a directory")
        resolved = candidate
    return resolved


def whiteout_target(base: str) -> str | None:
    """'.wh.foo' -> 'foo'; None if `base` is no whiteout. Opaque markers are checked apart.

    https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#whiteouts
    """
    return base[len(WHITEOUT_PREFIX) :] if base.startswith(WHITEOUT_PREFIX) else None


WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
