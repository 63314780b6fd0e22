"""Helpers for tests: hand-made (possibly malicious) layers, which the builder would refuse to write."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.image import Image, add_layer
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_writer import write_layer_from_tar


@dataclass(frozen=True)
class Raw:
    """One tar member exactly as given: no cleaning, no normalisation."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    pax: tuple = ()  # (key, value) PAX records, e.g. (("path", "../x"),): they override the header


def F(name: str, data: bytes = b"x", mode: int = 0o644) -> Raw:
    return Raw(name, tarfile.REGTYPE, data, mode=mode)


def D(name: str, mode: int = 0o755) -> Raw:
    return Raw(name, tarfile.DIRTYPE, mode=mode)


def S(name: str, target: str) -> Raw:
    return Raw(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def H(name: str, target: str) -> Raw:
    return Raw(name, tarfile.LNKTYPE, linkname=target)


def raw_layer(store: BlobStore, members: Iterable[Raw]) -> Layer:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mode, info.size = m.type, m.linkname, m.mode, len(m.data)
            info.pax_headers = dict(m.pax)
            tar.addfile(info, io.BytesIO(m.data) if m.data else None)
    tar_path = store.temp_file()
    tar_path.write_bytes(buf.getvalue())
    try:
        return write_layer_from_tar(tar_path, store, choose_compressor("zlib"))
    finally:
        tar_path.unlink()


def raw_image(store_dir: Path, *layers: Iterable[Raw]) -> Image:
    store = BlobStore(store_dir)
    image = Image()
    for members in layers:
        image = add_layer(image, raw_layer(store, members))
    return image
