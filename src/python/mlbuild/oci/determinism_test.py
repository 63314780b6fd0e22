from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib

import pytest

from mlbuild.oci import determinism
from mlbuild.oci.determinism import GZIP_HEADER, choose_compressor, normalised_file_mode, tar_info
from mlbuild.oci.errors import UserError
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_writer import gzip_stream, write_tar


@pytest.mark.parametrize(
    "mode, expected",
    [(0o644, 0o644), (0o600, 0o644), (0o666, 0o644), (0o700, 0o755), (0o744, 0o755), (0o4711, 0o755), (0o001, 0o755)],
)
def test_file_modes_keep_only_the_execute_bit(mode: int, expected: int) -> None:
    assert normalised_file_mode(mode) == expected


def test_tar_info_pins_everything() -> None:
    info = tar_info("a", tarfile.REGTYPE, mode=0o755, size=3)
    assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (determinism.EPOCH, 0, 0, "", "")


@pytest.mark.parametrize("choice", ["zlib", "auto"])
def test_gzip_stream_is_plain_gzip_with_a_fixed_header(choice: str) -> None:
    data = os.urandom(100_000) + b"a" * 3_000_000
    out = io.BytesIO()
    gzip_stream(io.BytesIO(data), out, choose_compressor(choice))
    blob = out.getvalue()
    assert blob[:10] == GZIP_HEADER
    assert gzip.decompress(blob) == data
    assert zlib.decompress(blob, 31) == data


def test_compressor_ids_name_library_and_version() -> None:
    assert choose_compressor("zlib").id == f"zlib-{zlib.ZLIB_RUNTIME_VERSION}/level1"
    with pytest.raises(UserError, match="unknown"):
        choose_compressor("zstd")


def test_tar_is_sorted_and_normalised_whatever_the_input_order() -> None:
    entries = [
        LayerEntry.file("/b/z", b"1"),
        LayerEntry.directory("/b"),
        LayerEntry.symlink("/a", "b/z"),
        LayerEntry.file("/b-c", b"2", 0o700),
    ]
    outs = []
    for order in (entries, entries[::-1]):
        buf = io.BytesIO()
        write_tar(order, buf)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    with tarfile.open(fileobj=io.BytesIO(outs[0])) as tar:
        assert [(m.name, m.mode) for m in tar.getmembers()] == [
            ("a", 0o777),
            ("b", 0o755),
            ("b-c", 0o755),
            ("b/z", 0o644),
        ]


def test_the_same_path_twice_with_different_content_is_refused() -> None:
    with pytest.raises(UserError, match="given twice"):
        write_tar([LayerEntry.file("/a", b"1"), LayerEntry.file("a", b"2")], io.BytesIO())
