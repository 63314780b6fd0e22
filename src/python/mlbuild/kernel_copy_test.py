import errno
from pathlib import Path

import pytest

from mlbuild import kernel_copy
from mlbuild.kernel_copy import append_range


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def test_a_range_is_appended_after_what_the_buffer_holds(source: Path, tmp_path: Path) -> None:
    with open(source, "rb") as src, open(tmp_path / "out", "wb") as out:
        out.write(b"head")  # still in Python's buffer: must land first
        append_range(src, out, 100, offset=1000)
        assert out.tell() == 104
        out.write(b"tail")
        src.seek(10)
        append_range(src, out, 5)  # from its position, which then moves past the range
        assert src.tell() == 15
    data = source.read_bytes()
    assert (tmp_path / "out").read_bytes() == b"head" + data[1000:1100] + b"tail" + data[10:15]


def test_where_the_kernel_refuses_python_copies_the_same_bytes(source: Path, tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(kernel_copy.os, "copy_file_range", refuse)
    with open(source, "rb") as src, open(tmp_path / "out", "wb") as out:
        out.write(b"x")
        append_range(src, out, 3000, offset=7)
    assert (tmp_path / "out").read_bytes() == b"x" + source.read_bytes()[7:3007]


def test_a_source_that_ends_early_is_an_error(source: Path, tmp_path: Path) -> None:
    with open(source, "rb") as src, open(tmp_path / "out", "wb") as out:
        with pytest.raises(OSError, match="bytes early"):
            append_range(src, out, source.stat().st_size + 10, offset=0)
