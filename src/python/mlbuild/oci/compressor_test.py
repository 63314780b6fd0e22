"""The `auto` compressor really is isal in the project's resolve, not a silent zlib fallback.

isal is pinned in 3rdparty/python/requirements.txt and a declared dependency of mlbuild.oci
(see its BUILD), so under `./pants test` it is importable: these tests import it without
`importorskip`, so dropping it from the resolve or the BUILD fails them instead of turning
every "isal" build (and its reproducibility check) into a second zlib run.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import isal
from isal import isal_zlib

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import COMPRESS_LEVEL, COMPRESSOR_ANNOTATION, GZIP_HEADER, choose_compressor
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_writer import CHUNK_SIZE, gzip_stream, write_layer

DATA = os.urandom(50_000) + b"mlbuild layer " * 200_000


def raw_deflate(compressobj, data: bytes) -> bytes:
    """Raw deflate fed in the writer's chunks (isal's bytes depend on where they break)."""
    deflate = compressobj()
    chunks = [deflate.compress(data[i : i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE)]
    return b"".join(chunks) + deflate.flush()


def test_auto_picks_isal_and_names_its_versions() -> None:
    chosen = choose_compressor("auto")
    assert chosen.id == f"isal-{isal.__version__}+isa-l-{isal.ISAL_VERSION}/level{COMPRESS_LEVEL}"
    assert chosen.id == choose_compressor("isal").id


def test_auto_streams_isal_bytes_not_zlib_bytes() -> None:
    out = io.BytesIO()
    gzip_stream(io.BytesIO(DATA), out, choose_compressor("auto"))
    blob = out.getvalue()
    body = blob[len(GZIP_HEADER) : -8]
    isal_body = raw_deflate(lambda: isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, -15), DATA)
    zlib_body = raw_deflate(lambda: zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS), DATA)
    # The check is only meaningful while the two libraries' streams differ for this input.
    assert isal_body != zlib_body
    assert body == isal_body
    assert gzip.decompress(blob) == DATA


def test_a_layer_built_with_auto_records_isal_and_holds_isal_bytes(tmp_path: Path) -> None:
    auto = choose_compressor("auto")
    layer = write_layer([LayerEntry.file("/data.bin", DATA)], BlobStore(tmp_path / "blobs"), auto)
    assert layer.descriptor.annotations[COMPRESSOR_ANNOTATION] == auto.id
    assert layer.descriptor.annotations[COMPRESSOR_ANNOTATION].startswith("isal-")
    zlib_layer = write_layer(
        [LayerEntry.file("/data.bin", DATA)], BlobStore(tmp_path / "zlib"), choose_compressor("zlib")
    )
    assert zlib_layer.diff_id == layer.diff_id  # the same tar ...
    assert zlib_layer.descriptor.digest != layer.descriptor.digest  # ... compressed by another library
