import errno
import os
import tarfile
from pathlib import Path

import pytest

from mlbuild import kernel_copy
from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.determinism import DIR_MODE, FILE_MODE, TAR_ENCODING, TAR_FORMAT, tar_info


def tarfile_archive(layout_dir: Path, archive_path: Path) -> None:
    """The reference: the same entries written by the standard library's tarfile."""
    paths = sorted(p for p in layout_dir.rglob("*") if not p.name.startswith("."))
    with open(archive_path, "wb") as f, tarfile.open(
        fileobj=f, mode="w|", format=TAR_FORMAT, encoding=TAR_ENCODING
    ) as tar:
        for path in paths:
            name = path.relative_to(layout_dir).as_posix()
            if path.is_dir():
                tar.addfile(tar_info(name, tarfile.DIRTYPE, mode=DIR_MODE))
            else:
                with open(path, "rb") as blob:
                    tar.addfile(tar_info(name, tarfile.REGTYPE, mode=FILE_MODE, size=path.stat().st_size), blob)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    root = tmp_path / "layout"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    # Sizes around the 512-byte block and the 10 KiB record, an empty file, and a name
    # longer than ustar's 100 bytes (a PAX header).
    for size in (0, 1, 511, 512, 513, 10240, 10241, 3 * 1024 * 1024 + 7):
        (blobs / f"{size:064d}").write_bytes(os.urandom(size))
    (root / ("n" * 150)).write_bytes(b"long name")
    (root / "index.json").write_text('{"schemaVersion": 2}')
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def test_the_archive_is_what_tarfile_writes(layout: Path, tmp_path: Path) -> None:
    write_oci_archive(layout, tmp_path / "mine.tar")
    tarfile_archive(layout, tmp_path / "reference.tar")
    assert (tmp_path / "mine.tar").read_bytes() == (tmp_path / "reference.tar").read_bytes()
    with tarfile.open(tmp_path / "mine.tar") as tar:
        member = tar.getmember(f"blobs/sha256/{513:064d}")
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == (layout / "blobs/sha256" / f"{513:064d}").read_bytes()


def test_without_copy_file_range_the_bytes_are_the_same(layout: Path, tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(kernel_copy.os, "copy_file_range", refuse)
    write_oci_archive(layout, tmp_path / "fallback.tar")
    tarfile_archive(layout, tmp_path / "reference.tar")
    assert (tmp_path / "fallback.tar").read_bytes() == (tmp_path / "reference.tar").read_bytes()


def test_a_blob_that_shrinks_while_archived_is_an_error(layout: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(kernel_copy.os, "copy_file_range", lambda *args, **kwargs: 0)
    with pytest.raises(OSError, match="bytes early"):
        write_oci_archive(layout, tmp_path / "short.tar")
