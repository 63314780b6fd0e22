"""Reading layer blobs back: verify the digest, then stream the tar (gzip or plain).

While a layer streams, the compressed bytes are hashed against its digest, the uncompressed
bytes against the config's `rootfs.diff_ids` entry, and both bytes and entries are counted
against a Budget (layer_rules.py), so a bomb stops at the limit, not at the disk's end.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from typing import BinaryIO, Iterator, Tuple

from mlbuild.oci.digest import CHUNK_SIZE, HashingReader
from mlbuild.oci.errors import UserError
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_rules import Budget

_GZIP_MAGIC = b"\x1f\x8b"


def _inflate_errors() -> tuple[type[BaseException], ...]:
    """What a corrupt stream raises: tarfile's and the OS's errors, zlib's, and isal's own (not an OSError)."""
    errors: tuple[type[BaseException], ...] = (tarfile.TarError, OSError, EOFError, zlib.error)
    try:
        from isal.igzip_lib import IsalError

        return (*errors, IsalError)  # type: ignore[arg-type]  # NB: isal's stub declares the class as an instance
    except ImportError:
        return errors


CORRUPT = _inflate_errors()


def _gzip_reader(fileobj: BinaryIO) -> BinaryIO:
    # NB: only for speed; decompressed bytes are the same whichever library inflates them.
    try:
        from isal import igzip

        return igzip.IGzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]
    except ImportError:
        return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]


def verify_layer(layer: Layer) -> None:
    """Refuse a blob whose bytes do not match the digest the manifest gives it."""
    with open(layer.blob_path, "rb") as f:
        reader = HashingReader(f)
        reader.drain()
    _check_blob(layer, reader)


def _check_blob(layer: Layer, reader: HashingReader) -> None:
    if reader.digest != layer.digest or reader.size != layer.descriptor.size:
        raise UserError(
            f"layer {layer.digest}: blob {layer.blob_path} has digest {reader.digest} and size {reader.size}; "
            "it is corrupt or was modified. Rebuild or re-pull the image."
        )


class _Inflated(HashingReader):
    """The uncompressed stream: hashed (for the diff_id) and counted against the budget as it is read."""

    def __init__(self, source: BinaryIO, budget: Budget, layer: Layer) -> None:
        super().__init__(source)
        self.budget, self.layer = budget, layer

    def read(self, n: int = -1) -> bytes:
        data = super().read(CHUNK_SIZE if n is None or n < 0 else n)  # NB: never one unbounded read
        self.budget.add_bytes(len(data), self.layer.digest)
        return data


def iter_layer(layer: Layer, budget: Budget | None = None) -> Iterator[Tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The layer's tar members in order (stream mode: read a member's data before the next).

    After the last member the rest of the stream is read and the blob's digest and the
    layer's diff_id are checked, so a consumer that iterates to the end has them verified.
    """
    budget = budget if budget is not None else Budget()
    with open(layer.blob_path, "rb") as f:
        raw = HashingReader(f)
        is_gzip = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        inflated = _Inflated(_gzip_reader(raw) if is_gzip else raw, budget, layer)  # type: ignore[arg-type]
        try:
            tar = tarfile.open(fileobj=inflated, mode="r|")  # type: ignore[call-overload]
        except CORRUPT as e:
            raise _unreadable(layer, e) from e
        with tar:
            members = iter(tar)
            while True:
                try:
                    member = next(members)
                except StopIteration:
                    break
                except CORRUPT as e:
                    raise _unreadable(layer, e) from e
                budget.add_entry(member, layer.digest)
                yield member, tar
        try:
            inflated.drain()
            raw.drain()
        except CORRUPT as e:
            raise _unreadable(layer, e) from e
    _check_blob(layer, raw)
    if inflated.digest != layer.diff_id:
        raise UserError(
            f"layer {layer.digest}: its uncompressed tar hashes to {inflated.digest}, but the image config's"
            f" rootfs.diff_ids lists {layer.diff_id}; the config and the layers do not belong together."
            " Fix: rebuild or re-pull the image."
        )


def read_member(layer: Layer, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    """A regular member's bytes in chunks."""
    source = tar.extractfile(member)
    assert source is not None
    try:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk
    except CORRUPT as e:
        raise _unreadable(layer, e) from e


def _unreadable(layer: Layer, e: BaseException) -> UserError:
    return UserError(f"layer {layer.digest}: not a readable tar or gzip stream ({e}); the blob is corrupt.")
