"""Reading layer blobs back: verify the digest, then stream the tar (gzip or plain)."""

from __future__ import annotations

import gzip
import tarfile
from typing import BinaryIO, Iterator, Tuple

from mlbuild.oci.digest import CHUNK_SIZE, HashingReader
from mlbuild.oci.errors import UserError
from mlbuild.oci.layer import Layer

_GZIP_MAGIC = b"\x1f\x8b"


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
    if reader.digest != layer.digest or reader.size != layer.descriptor.size:
        raise UserError(
            f"layer {layer.digest}: blob {layer.blob_path} has digest {reader.digest} and size {reader.size}; "
            "it is corrupt or was modified. Rebuild or re-pull the image."
        )


def iter_layer(layer: Layer) -> Iterator[Tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The layer's tar members in order (stream mode: read a member's data before the next)."""
    with open(layer.blob_path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = _gzip_reader(raw) if is_gzip else raw
        try:
            tar = tarfile.open(fileobj=stream, mode="r|")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise _unreadable(layer, e) from e
        with tar:
            members = iter(tar)
            while True:
                try:
                    member = next(members)
                except StopIteration:
                    return
                except (tarfile.TarError, OSError, EOFError) as e:
                    raise _unreadable(layer, e) from e
                yield member, tar


def read_member(layer: Layer, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    """A regular member's bytes in chunks."""
    source = tar.extractfile(member)
    assert source is not None
    try:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk
    except (tarfile.TarError, OSError, EOFError) as e:
        raise _unreadable(layer, e) from e


def _unreadable(layer: Layer, e: BaseException) -> UserError:
    return UserError(f"layer {layer.digest}: not a readable tar or gzip stream ({e}); the blob is corrupt.")
