"""The final filesystem of an image as a map of tar headers, without extracting any data.

Built by replaying every layer's headers with the same rules as unpack.py (whiteouts
first, strict symlink resolution while writing, and layer_rules.py for entry types,
whiteouts, modes and limits; the blob digest and diff_id are checked as each layer
streams), so `check` refuses what `unpack` refuses, and checks such as "is `train` on the
PATH" see what a container would see, in a fraction of the time an unpack takes.
"""

from __future__ import annotations

import tarfile
from pathlib import PurePosixPath

from mlbuild.oci.determinism import DIR_MODE
from mlbuild.oci.errors import UnsafeLayerError
from mlbuild.oci.image import Image
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_reader import iter_layer, verify_layer
from mlbuild.oci.layer_rules import Budget, UnpackLimits, entry_kind, safe_mode, whiteout_name
from mlbuild.oci.rootfs_path import Node, PathRefused, member_parts, resolve


class MergedFS:
    def __init__(self, limits: UnpackLimits | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.limits = limits if limits is not None else UnpackLimits.from_env()
        self.budget = Budget(self.limits)

    @classmethod
    def of_image(cls, image: Image, limits: UnpackLimits | None = None, base: dict | None = None) -> MergedFS:
        """Replay `image`'s layers; with `base` (an `index()` of a lower image), only those above it.

        NB: `base` is used only when its layer digests are exactly the bottom of `image`'s:
        an image built on a dependency image then replays one small layer, not ~70 MB again.
        """
        fs = cls(limits)
        layers = list(image.layers)
        below = list(base.get("layers", [])) if base else []
        if base and below and [layer.digest for layer in layers[: len(below)]] == below:
            fs.nodes = {path: Node(kind, mode, link) for path, (kind, mode, link) in base["nodes"].items()}
            layers = layers[len(below) :]
        for layer in layers:
            fs.apply(layer)
        return fs

    def index(self, image: Image) -> dict:
        """The merged filesystem of `image` as JSON data, for `of_image(..., base=)` of an image above it."""
        return {
            "layers": [layer.digest for layer in image.layers],
            "nodes": {path: [n.kind, n.mode, n.linkname] for path, n in sorted(self.nodes.items())},
        }

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
        verify_layer(layer)  # NB: as unpack does: a swapped blob is named as such, before it is read
        members = [m for m, _ in iter_layer(layer, self.budget)]
        for member in members:
            self._guard(layer, member, self._whiteout)
        for member in members:
            self._guard(layer, member, self._entry)

    def _guard(self, layer: Layer, member: tarfile.TarInfo, action) -> None:
        try:
            action(member)
        except PathRefused as e:
            raise UnsafeLayerError(layer.digest, member.name, e.reason) from None

    def _whiteout(self, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name)
        name = whiteout_name(parts[-1]) if parts else None
        if name is None:
            return
        if name == "":
            directory = "/".join(resolve(self.lookup, parts[:-1], follow_last=True))
            for path in self.below(directory):
                del self.nodes[path]
        else:
            self._remove("/".join(resolve(self.lookup, [*parts[:-1], name], follow_last=False)))

    def _entry(self, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name)
        if not parts or whiteout_name(parts[-1]) is not None:
            return
        kind = entry_kind(member)
        if kind == "fifo":
            return  # NB: unpack skips fifos too
        rel = resolve(self.lookup, parts, follow_last=False)
        for i in range(1, len(rel)):
            self.nodes.setdefault("/".join(rel[:i]), Node("dir", DIR_MODE))
        path = "/".join(rel)
        existing = self.nodes.get(path)
        mode = safe_mode(member.mode, self.limits)
        if kind == "dir":
            if existing is not None and existing.kind != "dir":
                self._remove(path)
            self.nodes[path] = Node("dir", mode)
            return
        if kind == "hardlink":
            link_parts = member_parts(member.linkname)
            if not link_parts:
                raise PathRefused(f"hardlink to the image root {member.linkname!r}")
            target = "/".join(resolve(self.lookup, link_parts, follow_last=False))
            node = self.nodes.get(target)
            if node is None or node.kind == "dir":
                raise PathRefused(f"hardlink target {member.linkname!r} does not exist or is a directory")
            if target != path:
                self._remove(path)
                self.nodes[path] = node
            return
        self._remove(path)
        if kind == "file":
            self.nodes[path] = Node("file", mode)
        else:
            self.nodes[path] = Node("symlink", 0o777, member.linkname)


def display(rel: str) -> str:
    return str(PurePosixPath("/") / rel)
