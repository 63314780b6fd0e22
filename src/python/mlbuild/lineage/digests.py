"""Hash forms and the two checksums lineage computes itself: a file's and a directory tree's.

Two spellings exist in mlbuild: OCI digests (`sha256:<hex>`, manifests, configs, layers) and
bare hex (PEX, lockfile, config file, model file, as Pants and `sha256sum` print them).
Records keep each field in its natural spelling; the index keys everything by bare hex.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tarfile
from pathlib import Path
from typing import Iterable, List, Tuple, Union

from mlbuild.lineage.errors import RecordError

PREFIX = "sha256:"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")
CHUNK = 1 << 20


def bare_hex(value: str) -> str:
    """`sha256:ABC…` or `abc…` -> `abc…` (lowercase); no validation of length."""
    value = value.strip().lower()
    return value[len(PREFIX) :] if value.startswith(PREFIX) else value


def is_hex(value: str) -> bool:
    return bool(_HEX.match(value))


def sha256_hex(value: str, what: str) -> str:
    """A sha256 in bare-hex form, whichever spelling it came in."""
    if not isinstance(value, str) or not _HEX64.match(bare_hex(value)):
        raise RecordError(f"{what}: {value!r} is not a sha256 (64 hex characters, optionally prefixed 'sha256:').")
    return bare_hex(value)


def oci_digest(value: str, what: str) -> str:
    """A sha256 in OCI form: `sha256:<hex>`."""
    return PREFIX + sha256_hex(value, what)


def file_sha256(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(functools.partial(f.read, CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def pex_sha256(path: Union[str, Path]) -> str:
    """A PEX's sha256: the file's for a zipapp; for a packed PEX (a folder), that of its listing.

    The listing is what `find -L . -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs
    sha256sum` prints inside the folder (links followed: dist/ links the wheels to its shared
    blobs), as the plugin names it. NB: bytecode is left out: running a packed PEX makes Python
    write `__pycache__/` beside its loose code files, which is not what was built.
    """
    root = Path(path)
    if not root.is_dir():
        return file_sha256(root)
    files = sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
        if "__pycache__" not in Path(folder).relative_to(root).parts
    )
    listing = "".join(f"{file_sha256(root / rel)}  ./{rel}\n" for rel in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def _tree_lines(root: Path, rel: str, out: List[bytes]) -> None:
    # NB: os.scandir order is filesystem-dependent; sorting by name makes the checksum
    # independent of the machine. Symlinks are never followed: a link is its target text.
    with os.scandir(root / rel if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_symlink():
            out.append(b"L\0" + path.encode() + b"\0" + os.readlink(entry.path).encode() + b"\n")
        elif entry.is_dir():
            out.append(b"D\0" + path.encode() + b"\n")
            _tree_lines(root, path, out)
        else:
            out.append(b"F\0" + path.encode() + b"\0" + file_sha256(entry.path).encode() + b"\n")


def tree_checksum(path: Union[str, Path]) -> str:
    """`sha256:<hex>` over (sorted relative path, file sha256 | symlink target) of a tree.

    NB: the root itself is resolved first, because a run's `input/data/<channel>` is a
    symlink to the sample data; links *inside* the tree are recorded, not followed. NUL
    separators keep names with spaces or newlines unambiguous. A plain file is hashed as a
    one-entry tree named by its basename, so a channel can be a single file.
    """
    root = Path(path).resolve()
    lines: List[bytes] = []
    if root.is_file():
        lines.append(b"F\0" + root.name.encode() + b"\0" + file_sha256(root).encode() + b"\n")
    elif root.is_dir():
        _tree_lines(root, "", lines)
    else:
        raise RecordError(f"{path}: no such file or directory to checksum.")
    return PREFIX + hashlib.sha256(b"".join(lines)).hexdigest()


def _files_checksum(entries: Iterable[Tuple[str, bytes]]) -> str:
    """`sha256:<hex>` over sorted (path, `F`+sha256 | `L`+link target) lines; folders don't count."""
    lines = [kind[:1] + b"\0" + path.encode() + b"\0" + kind[1:] + b"\n" for path, kind in sorted(entries)]
    return PREFIX + hashlib.sha256(b"".join(lines)).hexdigest()


def model_checksum(path: Union[str, Path]) -> str:
    """The checksum of a model's files, the same for a model directory and its `model.tar.gz`.

    NB: a local run keeps `model/` and a publish keeps SageMaker's `model.tar.gz` of it; their
    own sha256s never match, but the files inside are the same. Paths are relative to the
    model directory; folders are left out (a tar need not list them); links are their target.
    """
    root = Path(path)
    entries: List[Tuple[str, bytes]] = []
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):  # NB: never into linked folders
            for name in (*filenames, *dirnames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if os.path.islink(full):
                    entries.append((rel, b"L" + os.readlink(full).encode()))
                elif name in filenames:
                    entries.append((rel, b"F" + file_sha256(full).encode()))
    elif root.is_file():
        try:
            with tarfile.open(root, "r:*") as tar:
                for member in tar:
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    if member.isfile():
                        f = tar.extractfile(member)
                        assert f is not None
                        h = hashlib.sha256()
                        for chunk in iter(functools.partial(f.read, CHUNK), b""):
                            h.update(chunk)
                        entries.append((name, b"F" + h.hexdigest().encode()))
                    elif member.issym():
                        entries.append((name, b"L" + member.linkname.encode()))
        except (tarfile.TarError, OSError) as e:
            raise RecordError(f"{path}: not a readable model archive ({e}).") from e
    else:
        raise RecordError(f"{path}: no model directory or archive to checksum.")
    return _files_checksum(entries)
