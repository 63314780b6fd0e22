"""A layer, and the entries that a new layer is built from.

A Layer keeps its compressed digest (what registries and manifests address) and its
uncompressed DiffID (what the image config's `rootfs.diff_ids` lists) apart, as
go-containerregistry's `v1.Layer` does: https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md#layer-diffid
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from mlbuild.oci.bytecode import compile_source, pyc_path
from mlbuild.oci.descriptor import Descriptor
from mlbuild.oci.determinism import DIR_MODE, file_kind, normalised_file_mode
from mlbuild.oci.errors import UserError
from mlbuild.oci.rootfs_path import Node, PathRefused, resolve


@dataclass(frozen=True)
class Layer:
    descriptor: Descriptor  # the compressed blob: digest, size, mediaType, annotations
    diff_id: str  # sha256 of the uncompressed tar
    blob_path: Path  # where the compressed bytes are on disk

    @property
    def digest(self) -> str:
        return self.descriptor.digest


def image_path(path: str, *, what: str) -> str:
    """'/opt/program/train' -> 'opt/program/train'; refuses '..' and empty paths."""
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    if not path.strip() or cleaned in ("", ".") or ".." in path.split("/"):
        raise UserError(f"{what}: {path!r} is not a usable path in the image; give an absolute path without '..'.")
    return cleaned


@dataclass(frozen=True)
class LayerEntry:
    """One tar entry of a layer to build. Exactly one of `data`/`source`/`target` fits `kind`.

    A file's content is `data`, or the file `source`, or with `member` set a member of the
    zip `source` (streamed when the layer is written: nothing of a wheel is held in memory);
    with `compile_as`, the bytecode of that content compiled as `/compile_as` (made when
    written; the entry is left out if Python cannot compile it).
    """

    path: str  # relative to the image root, no leading '/'
    kind: str  # 'file' | 'dir' | 'symlink'
    mode: int = 0o644
    data: bytes | None = None  # in-memory file content
    source: Path | None = None  # on-disk file content, streamed
    target: str = ""  # symlink target, stored verbatim
    member: str | None = None  # a member of the zip `source`
    size: int = 0  # a zip member's uncompressed size (for splitting layers by bytes)
    compile_as: str | None = None  # bytecode of `member`, compiled as this image path

    def read_bytes(self) -> bytes | None:
        """The content in memory (small files, tests); None for bytecode Python cannot compile."""
        if self.member is not None:
            assert self.source is not None
            with zipfile.ZipFile(self.source) as archive:
                return self.compiled(archive.read(self.member))
        if self.data is None and self.source is not None:
            return self.compiled(Path(self.source).read_bytes())
        return self.compiled(self.data or b"")

    def compiled(self, content: bytes) -> bytes | None:
        """What this entry holds, given its source's bytes: them, or their bytecode if `compile_as`."""
        return content if self.compile_as is None else compile_source(self.compile_as, content)

    @property
    def content_bytes(self) -> int:
        """About how many bytes of content the entry adds to a layer (exact but for bytecode)."""
        if self.data is not None:
            return len(self.data)
        if self.member is not None:
            return self.size
        return os.stat(self.source).st_size if self.source is not None else 0

    @classmethod
    def file(cls, path: str, data: bytes, mode: int = 0o644) -> LayerEntry:
        return cls(image_path(path, what="file"), "file", normalised_file_mode(mode), data=data)

    @classmethod
    def file_from(cls, path: str, source: Path, mode: int | None = None) -> LayerEntry:
        if mode is None:
            mode = normalised_file_mode(os.stat(source).st_mode)
        return cls(image_path(path, what="file"), "file", normalised_file_mode(mode), source=Path(source))

    @classmethod
    def directory(cls, path: str) -> LayerEntry:
        return cls(image_path(path, what="directory"), "dir", DIR_MODE)

    @classmethod
    def symlink(cls, path: str, target: str) -> LayerEntry:
        if not target:
            raise UserError(f"symlink {path!r}: empty target.")
        return cls(image_path(path, what="symlink"), "symlink", 0o777, target=target)


def entries_from_directory(source_dir: Path, dest_prefix: str) -> list[LayerEntry]:
    """Entries for everything below `source_dir`, placed under `dest_prefix`.

    Symlinks stay symlinks (never followed). NB: `dest_prefix` and its parents get no
    entries of their own: a directory entry for e.g. `bin` would replace the base image's
    merged-/usr symlink `bin -> usr/bin`, and unpackers create missing parents anyway.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise UserError(f"{source_dir}: not a directory.")
    # NB: "/" places the tree at the image root (a base image's rootfs).
    prefix = "" if dest_prefix.strip() == "/" else image_path(dest_prefix, what="destination prefix")
    entries: list[LayerEntry] = []

    def walk(directory: Path, dest: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            kind = file_kind(st.st_mode)
            path = f"{dest}/{entry.name}"
            if kind == "dir":
                entries.append(LayerEntry.directory(path))
                walk(Path(entry.path), path)
            elif kind == "file":
                entries.append(LayerEntry.file_from(path, Path(entry.path), st.st_mode))
            elif kind == "symlink":
                entries.append(LayerEntry.symlink(path, os.readlink(entry.path)))
            else:
                raise UserError(f"{entry.path}: a {kind} cannot go into an image layer; remove it from {source_dir}.")

    walk(source_dir, prefix)
    return entries


def is_bytecode(path: str) -> bool:
    """`.pyc`/`.pyo` files and `__pycache__` folders: what running Python leaves behind."""
    return path.endswith((".pyc", ".pyo")) or "__pycache__" in path.split("/")


def entries_from_zip(source: Path, dest_prefix: str, bytecode: str | None = None) -> list[LayerEntry]:
    """Entries for a zip's members (e.g. an installed wheel packed by pex), under `dest_prefix`.

    Bytecode in the zip never enters a layer: it is machine state that a cache may have
    picked up from a run, not part of the locked input. With `bytecode` (a cache
    tag such as "cpython-311"), every `.py` gets a pyc compiled here from its own bytes
    (`with_bytecode`). Every folder gets an entry, so the layer's bytes do not depend on
    whether the zip lists them.
    """
    prefix = image_path(dest_prefix, what="destination prefix")
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{source}: not a readable zip file ({e}).") from e
    files: dict[str, LayerEntry] = {}
    dirs: set[str] = set()
    source = Path(source)
    with archive:
        for info in archive.infolist():
            name = info.filename.rstrip("/")
            # NB: pex 2.1.137's packed wheels start with a `../` folder entry; a bare `.`/`..`
            # names no file, so it is skipped (a path *through* `..` is still refused below).
            if name in ("", ".", "..") or is_bytecode(name):
                continue
            if ".." in name.split("/") or name.startswith("/"):
                raise UserError(f"{source}: member {info.filename!r} escapes its folder; refusing to unpack it.")
            parts = name.split("/")
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
            if info.is_dir():
                dirs.add(name)
            else:
                mode = normalised_file_mode((info.external_attr >> 16) & 0o777 or 0o644)
                path = image_path(f"{prefix}/{name}", what="file")
                files[name] = LayerEntry(path, "file", mode, source=source, member=info.filename, size=info.file_size)
    entries = [LayerEntry.directory(f"{prefix}/{d}") for d in dirs if d not in files]
    entries.extend(files.values())
    return with_bytecode(entries, bytecode) if bytecode else sorted(entries, key=lambda e: e.path)


def with_bytecode(entries: list[LayerEntry], tag: str) -> list[LayerEntry]:
    """`entries` plus, for every `.py` among them, its pyc for cache tag `tag` (bytecode.py).

    A `.py` symlink (Debian's `sitecustomize.py -> /etc/python3.11/sitecustomize.py`) gets
    the pyc of the file it resolves to inside these entries, compiled under the link's own
    path: that is where the import system looks for it. Bytecode already among the entries
    is dropped (a run's leftovers, or pycs of another interpreter): this is the only source
    of `.pyc` files in a layer. Sorted by path.
    """
    kept = {e.path: e for e in entries if not is_bytecode(e.path)}

    def lookup(path: str) -> Node | None:
        entry = kept.get(path)
        return None if entry is None else Node(entry.kind, entry.mode, entry.target)

    out = dict(kept)
    for entry in kept.values():
        if not entry.path.endswith(".py") or entry.kind == "dir":
            continue
        source = entry
        if entry.kind == "symlink":
            try:
                resolved = "/".join(resolve(lookup, entry.path.split("/"), follow_last=True, chroot=True))
            except PathRefused:
                continue  # NB: a loop or a path through a file: Python could not import it either
            if resolved not in kept or kept[resolved].kind != "file":
                continue  # NB: dangling, or outside this layer: nothing here to compile
            source = kept[resolved]
        cached = pyc_path(entry.path, tag)
        out[cached] = replace(source, path=cached, mode=0o644, compile_as=entry.path)
        folder = posixpath.dirname(cached)
        out.setdefault(folder, LayerEntry.directory(folder))
    return sorted(out.values(), key=lambda e: e.path)
