"""The final filesystem of an image as a map of tar headers, without extracting any data.

Built by replaying every layer's headers with the same rules as unpack.py (whiteouts
first, strict symlink resolution while writing), so checks such as "is `train` on the
PATH" see what a container would see, in a fraction of the time an unpack takes.
"""

from __future__ import annotations

import tarfile
from pathlib import PurePosixPath

from mlbuild.oci.determinism import DIR_MODE
from mlbuild.oci.errors import UnsafeLayerError
from mlbuild.oci.image import Image
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_reader import iter_layer
from mlbuild.oci.rootfs_path import OPAQUE_WHITEOUT, Node, PathRefused, member_parts, resolve, whiteout_target


class MergedFS:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    @classmethod
    def of_image(cls, image: Image) -> MergedFS:
        fs = cls()
        for layer in image.layers:
            fs.apply(layer)
        return fs

    def lookup(self, rel: str) -> Node | None:
        return self.nodes.get(rel)

    def resolve(self, path: str) -> tuple[str, Node | None]:
        """What a process in the container reaches at absolute `path` (symlinks followed)."""
        try:
            parts = resolve(self.lookup, [p for p in path.split("/") if p], follow_last=True, chroot=True)
        except PathRefused:  # NB: a symlink loop or a file used as a directory: unreachable
            return path.lstrip("/"), None
        rel = "/".join(parts)
        return rel, (Node("dir", DIR_MODE) if not rel else self.lookup(rel))

    def below(self, rel: str) -> list[str]:
        prefix = rel + "/" if rel else ""
        return sorted(p for p in self.nodes if p.startswith(prefix) and p != rel)

    def _remove(self, rel: str) -> None:
        node = self.nodes.pop(rel, None)
        if node is not None and node.kind == "dir":  # NB: only then scan, or a layer is O(n^2)
            for path in self.below(rel):
                del self.nodes[path]

    def apply(self, layer: Layer) -> None:
        members = [m for m, _ in iter_layer(layer)]
        for member in members:
            self._guard(layer, member, self._whiteout)
        for member in members:
            self._guard(layer, member, self._entry)

    def _guard(self, layer: Layer, member: tarfile.TarInfo, action) -> None:  # type: ignore[no-untyped-def]
        try:
            action(member)
        except PathRefused as e:
            raise UnsafeLayerError(layer.digest, member.name, e.reason) from None

    def _whiteout(self, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name)
        if not parts or whiteout_target(parts[-1]) is None:
            return
        if parts[-1] == OPAQUE_WHITEOUT:
            directory = "/".join(resolve(self.lookup, parts[:-1], follow_last=True))
            for path in self.below(directory):
                del self.nodes[path]
        else:
            name = whiteout_target(parts[-1])
            self._remove("/".join(resolve(self.lookup, [*parts[:-1], str(name)], follow_last=False)))

    def _entry(self, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name)
        if not parts or whiteout_target(parts[-1]) is not None:
            return
        rel = resolve(self.lookup, parts, follow_last=False)
        for i in range(1, len(rel)):
            self.nodes.setdefault("/".join(rel[:i]), Node("dir", DIR_MODE))
        path = "/".join(rel)
        existing = self.nodes.get(path)
        if member.isdir():
            if existing is not None and existing.kind != "dir":
                self._remove(path)
            self.nodes[path] = Node("dir", member.mode & 0o7777)
            return
        self._remove(path)
        if member.isreg():
            self.nodes[path] = Node("file", member.mode & 0o7777)
        elif member.issym():
            self.nodes[path] = Node("symlink", 0o777, member.linkname)
        elif member.islnk():
            target = "/".join(resolve(self.lookup, member_parts(member.linkname), follow_last=False))
            node = self.nodes.get(target)
            if node is None or node.kind == "dir":
                raise PathRefused(f"hardlink target {member.linkname!r} does not exist or is a directory")
            self.nodes[path] = node
        elif member.ischr() or member.isblk():
            raise PathRefused("device node; images built by mlbuild must not carry device files")


def display(rel: str) -> str:
    return str(PurePosixPath("/") / rel)
