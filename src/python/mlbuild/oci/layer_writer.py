"""Building layers: entries -> normalised tar -> deterministic gzip, streamed into a BlobStore.

Nothing holds a whole layer in memory: the tar goes to a temporary file while its sha256
(the DiffID) is computed; then, unless the cache already has a blob for this DiffID and
compressor, it is gzipped chunk by chunk into the store while the blob digest is computed.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import OCI_LAYER_GZIP, Descriptor
from mlbuild.oci.determinism import (
    COMPRESSOR_ANNOTATION,
    GZIP_HEADER,
    TAR_ENCODING,
    TAR_FORMAT,
    Compressor,
    tar_info,
)
from mlbuild.oci.digest import CHUNK_SIZE, HashingReader, HashingWriter
from mlbuild.oci.errors import UserError
from mlbuild.oci.layer import Layer, LayerEntry

_KINDS = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}


def write_tar(entries: Iterable[LayerEntry], sink: BinaryIO) -> None:
    """Write `entries` as a normalised tar, sorted by path whatever order they came in."""
    by_path: dict[str, LayerEntry] = {}
    for entry in entries:
        if entry.path in by_path and by_path[entry.path] != entry:
            raise UserError(f"layer entry {'/' + entry.path!r}: given twice with different content; keep one.")
        by_path[entry.path] = entry
    with tarfile.open(fileobj=sink, mode="w|", format=TAR_FORMAT, encoding=TAR_ENCODING) as tar, _Zips() as zips:
        for path in sorted(by_path):
            _add(tar, by_path[path], zips)


class _Zips:
    """The zips that a layer's members come from, each opened once while the layer is written."""

    def __init__(self) -> None:
        self.open: dict[Path, zipfile.ZipFile] = {}

    def get(self, path: Path) -> zipfile.ZipFile:
        if path not in self.open:
            self.open[path] = zipfile.ZipFile(path)
        return self.open[path]

    def __enter__(self) -> _Zips:
        return self

    def __exit__(self, *_: object) -> None:
        for archive in self.open.values():
            archive.close()


def _add(tar: tarfile.TarFile, entry: LayerEntry, zips: _Zips) -> None:
    kind = _KINDS[entry.kind]
    if entry.kind != "file":
        tar.addfile(tar_info(entry.path, kind, mode=entry.mode, linkname=entry.target))
    elif entry.compile_as is not None:
        pyc = entry.compiled(_source_bytes(entry, zips))
        if pyc is not None:  # NB: templates and Python 2 leftovers: never imported, not compiled
            tar.addfile(tar_info(entry.path, kind, mode=entry.mode, size=len(pyc)), io.BytesIO(pyc))
    elif entry.member is not None:
        assert entry.source is not None
        try:
            with zips.get(entry.source).open(entry.member) as member:
                tar.addfile(tar_info(entry.path, kind, mode=entry.mode, size=entry.size), member)
        except (OSError, zipfile.BadZipFile) as e:
            raise UserError(
                f"{entry.source}: cannot read {entry.member!r} for image path {'/' + entry.path!r} ({e})."
            ) from e
    elif entry.data is not None:
        tar.addfile(tar_info(entry.path, kind, mode=entry.mode, size=len(entry.data)), io.BytesIO(entry.data))
    else:
        assert entry.source is not None
        try:
            with open(entry.source, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                tar.addfile(tar_info(entry.path, kind, mode=entry.mode, size=size), f)
        except OSError as e:
            raise UserError(
                f"{entry.source}: cannot read it for image path {'/' + entry.path!r} ({e.strerror})."
            ) from e


def _source_bytes(entry: LayerEntry, zips: _Zips) -> bytes:
    """The bytes of the source an entry is compiled from: in memory, a zip member or a file."""
    if entry.data is not None:
        return entry.data
    assert entry.source is not None
    try:
        if entry.member is not None:
            return zips.get(entry.source).read(entry.member)
        return Path(entry.source).read_bytes()
    except (OSError, zipfile.BadZipFile) as e:
        what = f"{entry.member!r}" if entry.member is not None else "it"
        raise UserError(
            f"{entry.source}: cannot read {what} to compile it for image path {'/' + entry.path!r} ({e})."
        ) from e


def gzip_stream(source: BinaryIO, sink: BinaryIO, compressor: Compressor) -> None:
    """RFC 1952 framing around raw deflate, with the fixed header from determinism.py."""
    deflate = compressor.compressobj()
    crc = 0
    size = 0
    sink.write(GZIP_HEADER)
    while chunk := source.read(CHUNK_SIZE):
        crc = compressor.crc32(chunk, crc)
        size += len(chunk)
        sink.write(deflate.compress(chunk))
    sink.write(deflate.flush())
    sink.write((crc & 0xFFFFFFFF).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))


def write_layer(
    entries: Iterable[LayerEntry],
    store: BlobStore,
    compressor: Compressor,
    annotations: Mapping[str, str] | None = None,
) -> Layer:
    """Build one layer from entries into `store`; reuses a cached blob when the tar is unchanged."""
    tar_path = store.temp_file()
    try:
        with open(tar_path, "wb") as f:
            writer = HashingWriter(f)
            write_tar(entries, writer)  # type: ignore[arg-type]
        return _compress(tar_path, writer.digest, store, compressor, annotations)
    finally:
        tar_path.unlink(missing_ok=True)


def write_layer_from_tar(
    tar_path: Path,
    store: BlobStore,
    compressor: Compressor,
    annotations: Mapping[str, str] | None = None,
) -> Layer:
    """Compress an existing uncompressed tar into a layer, taken as is (no normalisation)."""
    with open(tar_path, "rb") as f:
        reader = HashingReader(f)
        reader.drain()
    return _compress(tar_path, reader.digest, store, compressor, annotations)


def _compress(
    tar_path: Path, diff_id: str, store: BlobStore, compressor: Compressor, annotations: Mapping[str, str] | None
) -> Layer:
    digest = store.cached_layer_digest(diff_id, compressor.id)
    if digest is None:
        blob_temp = store.temp_file()
        try:
            with open(tar_path, "rb") as src, open(blob_temp, "wb") as dst:
                writer = HashingWriter(dst)
                gzip_stream(src, writer, compressor)  # type: ignore[arg-type]
            digest = writer.digest
            store.put(blob_temp, digest)
        finally:
            blob_temp.unlink(missing_ok=True)
        store.remember_layer(diff_id, compressor.id, digest)
    blob = store.path(digest)
    all_annotations = {**(annotations or {}), COMPRESSOR_ANNOTATION: compressor.id}
    descriptor = Descriptor(OCI_LAYER_GZIP, digest, blob.stat().st_size, all_annotations)
    return Layer(descriptor, diff_id, blob)
