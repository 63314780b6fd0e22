"""mlbuild's safe unpacker: apply an image's layers, in order, into a rootfs directory.

Unlike `tarfile.extractall`, nothing is ever created, changed or deleted outside the root:
every entry's parent is resolved component by component against the rootfs being built
(strict mode of rootfs_path.resolve), so symlinks planted by this or an earlier layer are
followed only while they stay inside. Refused: absolute names, `..`, writing through an
absolute or escaping symlink, hardlinks to missing or escaping targets, and what
layer_rules.py refuses (devices, unknown types, bad whiteouts, sizes over the limits, a
blob or uncompressed tar that does not match its digest or diff_id). Fifos are skipped.
Ownership is not changed (we may not be root); modes are kept minus setuid/setgid/sticky
and world-write (layer_rules.safe_mode). Whiteouts follow the OCI layer spec:
https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#whiteouts

The layers are applied into a private temp sibling (`.<name>.incomplete-<pid>-*`), renamed
into place only when all of them applied: on any refusal nothing partial remains. Temp
siblings of dead processes are removed by the next unpack (stale_temps.py).
"""

from __future__ import annotations

import functools
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from mlbuild.oci.determinism import file_kind
from mlbuild.oci.errors import UnsafeLayerError, UserError
from mlbuild.oci.image import Image
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_reader import iter_layer, read_member, verify_layer
from mlbuild.oci.layer_rules import Budget, UnpackLimits, entry_kind, safe_mode, whiteout_name
from mlbuild.oci.rootfs_path import Node, PathRefused, member_parts, resolve
from mlbuild.stale_temps import make_temp_dir, remove_stale_temps, remove_tree


@dataclass
class UnpackResult:
    skipped: list[str] = field(default_factory=list)  # 'layer digest: entry (reason)'


def unpack_image(image: Image, rootfs: Path, limits: UnpackLimits | None = None) -> UnpackResult:
    """Apply every layer of `image` into `rootfs`, which must be missing or an empty directory.

    `limits` default to UnpackLimits.from_env() (the documented defaults unless raised).
    """
    root = Path(rootfs)
    if root.is_symlink() or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        raise UserError(
            f"{root}: unpack needs a missing or empty directory to write the rootfs into. Fix: pick a new path."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root.parent)
    mode = stat.S_IMODE(root.stat().st_mode) if root.exists() else 0o755
    tmp = make_temp_dir(root.parent, f".{root.name}.incomplete")
    try:
        unpacker = _Unpacker(tmp.resolve(), limits if limits is not None else UnpackLimits.from_env())
        for layer in image.layers:
            unpacker.apply(layer)
        unpacker.finish()
        if root.exists():
            root.rmdir()
        os.chmod(tmp, mode)
        os.rename(tmp, root)
    finally:
        if tmp.exists():
            remove_tree(tmp)
    return unpacker.result


class _Unpacker:
    def __init__(self, root: Path, limits: UnpackLimits) -> None:
        self.root = str(root)
        self.limits = limits
        self.budget = Budget(limits)
        self.result = UnpackResult()
        # NB: directories are created writable by us and get their real mode at the end,
        # or a 0555 directory would stop us (not root) from filling it.
        self.dir_modes: dict[str, int] = {}
        # NB: real directories seen so far (relative, symlink-free); saves an lstat per path
        # component per entry, the bulk of the time on big layers. Purged on every removal.
        self.known_dirs: set[str] = set()

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def lookup(self, rel: str) -> Node | None:
        if rel in self.known_dirs:
            return _DIR
        try:
            st = os.lstat(self.abs(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = file_kind(st.st_mode)
        if kind == "dir":
            self.known_dirs.add(rel)
        return Node(kind, stat.S_IMODE(st.st_mode), os.readlink(self.abs(rel)) if kind == "symlink" else "")

    def remove(self, rel: str) -> None:
        """Remove whatever is at `rel` (never following a symlink), if anything."""
        node = self.lookup(rel)
        if node is None:
            return
        if node.kind != "dir":
            os.unlink(self.abs(rel))
            return
        remove_tree(Path(self.abs(rel)))
        prefix = rel + "/"
        self.known_dirs = {d for d in self.known_dirs if d != rel and not d.startswith(prefix)}

    def apply(self, layer: Layer) -> None:
        verify_layer(layer)
        # NB: whiteouts hide lower layers only, never entries of their own layer, so they
        # are applied in a first pass whatever their position in the tar.
        # NB: the first pass counts against a copy of the budget, so no byte counts twice.
        for member, _ in iter_layer(layer, self.budget.fork()):
            self._guard(layer, member, self._whiteout)
        for member, tar in iter_layer(layer, self.budget):
            self._guard(layer, member, functools.partial(self._entry, layer, tar))

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
            node = self.lookup(directory)
            if node is not None and node.kind == "dir":
                for child in sorted(os.listdir(self.abs(directory))):
                    self.remove(f"{directory}/{child}" if directory else child)
            return
        self.remove("/".join(resolve(self.lookup, [*parts[:-1], name], follow_last=False)))

    def _entry(self, layer: Layer, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name)
        if not parts or whiteout_name(parts[-1]) is not None:
            return  # the root itself, or a whiteout (applied in the first pass)
        kind = entry_kind(member)
        if kind == "fifo":
            self.result.skipped.append(f"{layer.digest}: {member.name} (fifo)")
            return
        resolved = resolve(self.lookup, parts, follow_last=False)
        self._make_parents(resolved[:-1])
        rel = "/".join(resolved)
        dest = self.abs(rel)
        mode = safe_mode(member.mode, self.limits)
        if kind == "dir":
            existing = self.lookup(rel)
            if existing is None or existing.kind != "dir":
                self.remove(rel)
                os.mkdir(dest, 0o700)
            os.chmod(dest, 0o700 | mode)
            self.dir_modes[rel] = mode
        elif kind == "file":
            self.remove(rel)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                for chunk in read_member(layer, tar, member):
                    f.write(chunk)
                os.fchmod(f.fileno(), mode)
        elif kind == "symlink":
            self.remove(rel)
            os.symlink(member.linkname, dest)
        else:
            self._hardlink(member, rel)

    def _make_parents(self, parts: list[str]) -> None:
        """Create missing parents as 0755 directories. NB: safe, `parts` holds no symlinks."""
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            if self.lookup(rel) is None:
                os.mkdir(self.abs(rel), 0o700)
                self.dir_modes[rel] = 0o755

    def _hardlink(self, member: tarfile.TarInfo, rel: str) -> None:
        link_parts = member_parts(member.linkname)
        if not link_parts:
            raise PathRefused(f"hardlink to the image root {member.linkname!r}")
        target = "/".join(resolve(self.lookup, link_parts, follow_last=False))
        node = self.lookup(target)
        if node is None or node.kind == "dir":
            raise PathRefused(f"hardlink target {member.linkname!r} does not exist or is a directory")
        if target == rel:
            return
        self.remove(rel)
        os.link(self.abs(target), self.abs(rel), follow_symlinks=False)

    def finish(self) -> None:
        self.known_dirs.clear()
        for rel in sorted(self.dir_modes, key=lambda r: r.count("/"), reverse=True):
            parts = rel.split("/")
            try:
                if resolve(self.lookup, parts, follow_last=False) != parts:
                    continue
            except PathRefused:
                continue
            node = self.lookup(rel)
            if node is not None and node.kind == "dir":
                os.chmod(self.abs(rel), self.dir_modes[rel])


_DIR = Node("dir")
