from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlbuild.debian.deb import DebPackage, read_ar_members
from mlbuild.debian.errors import DebFormatError, RootfsError
from mlbuild.debian.extract import keep_path, unpack_debs
from mlbuild.debian.testing import Entry, make_deb
from mlbuild.tools_required import tool_path

TOOL = [
    Entry("./", "dir", mode=0o755),
    Entry("./usr/", "dir", mode=0o755),
    Entry("./usr/bin/", "dir", mode=0o755),
    Entry("./usr/bin/tool", content=b"#!tool\n", mode=0o755),
    Entry("./usr/bin/tool-alias", "symlink", target="tool"),
    Entry("./usr/bin/tool-hard", "hardlink", target="./usr/bin/tool"),
    Entry("./usr/lib/", "dir", mode=0o755),
    Entry("./usr/lib/libtool.so.1", content=b"\x7fELF fake", mode=0o644),
    Entry("./etc/", "dir", mode=0o755),
    Entry("./etc/secret/", "dir", mode=0o700),
    Entry("./usr/share/doc/tool/", "dir"),
    Entry("./usr/share/doc/tool/copyright", content=b"GPL\n"),
    Entry("./usr/share/doc/tool/changelog.Debian.gz", content=b"zzz"),
    Entry("./usr/share/man/man1/tool.1.gz", content=b"man"),
    Entry("./usr/share/locale/de/LC_MESSAGES/tool.mo", content=b"mo"),
]


@pytest.mark.parametrize("compression", ["xz", "gz", "", "zst"])
def test_extracts_tiny_deb(tmp_path: Path, compression: str) -> None:
    if compression == "zst":
        tool_path("zstd", "zstd")  # NB: make_deb compresses with it; a skip, or a failure under CI
    deb = make_deb(tmp_path / "tool.deb", "tool", "2.0-1", TOOL, compression=compression)
    root = tmp_path / "root"
    root.mkdir()
    [control] = unpack_debs([("tool", deb)], root)
    assert "Package: tool\nVersion: 2.0-1\n" in control
    assert (root / "usr/bin/tool").read_bytes() == b"#!tool\n"
    assert stat.S_IMODE((root / "usr/bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "usr/lib/libtool.so.1").stat().st_mode) == 0o644
    assert os.readlink(root / "usr/bin/tool-alias") == "tool"
    assert (root / "usr/bin/tool-hard").read_bytes() == b"#!tool\n"
    assert stat.S_IMODE((root / "etc/secret").stat().st_mode) == 0o700
    assert (root / "usr/share/doc/tool/copyright").read_text() == "GPL\n"
    assert not (root / "usr/share/doc/tool/changelog.Debian.gz").exists()
    assert not (root / "usr/share/man").exists()
    assert not (root / "usr/share/locale").exists()


def test_ar_reader_rejects_garbage(tmp_path: Path) -> None:
    with pytest.raises(DebFormatError, match="not a .deb"):
        read_ar_members(b"PK\x03\x04zip", "x.deb")
    deb = make_deb(tmp_path / "t.deb", "t", entries=[Entry("./a", content=b"a")])
    truncated = tmp_path / "trunc.deb"
    truncated.write_bytes(deb.read_bytes()[:-10])
    with pytest.raises(DebFormatError, match="runs past the end"):
        DebPackage(truncated)


@pytest.mark.parametrize("bad", ["../escape", "/etc/abs", "./usr/../../x"])
def test_rejects_unsafe_paths(tmp_path: Path, bad: str) -> None:
    deb = make_deb(tmp_path / "evil.deb", "evil", entries=[Entry(bad, content=b"x")])
    (tmp_path / "root").mkdir()
    with pytest.raises(RootfsError, match="unsafe path"):
        unpack_debs([("evil", deb)], tmp_path / "root")


def test_rejects_writing_through_a_symlink(tmp_path: Path) -> None:
    a = make_deb(tmp_path / "a.deb", "a", entries=[Entry("./lib", "symlink", target="/tmp")])
    b = make_deb(tmp_path / "b.deb", "b", entries=[Entry("./lib/x", content=b"x")])
    (tmp_path / "root").mkdir()
    with pytest.raises(
        RootfsError, match="b: lib/x would be written through lib, which is not a directory .shipped by a"
    ):
        unpack_debs([("a", a), ("b", b)], tmp_path / "root")


def test_conflicting_files_name_both_packages(tmp_path: Path) -> None:
    a = make_deb(tmp_path / "a.deb", "a", entries=[Entry("./etc/conf", content=b"one")])
    b = make_deb(tmp_path / "b.deb", "b", entries=[Entry("./etc/conf", content=b"two")])
    same = make_deb(tmp_path / "c.deb", "c", entries=[Entry("./etc/conf", content=b"one")])
    (tmp_path / "r1").mkdir()
    unpack_debs([("a", a), ("c", same)], tmp_path / "r1")  # identical content is fine
    (tmp_path / "r2").mkdir()
    with pytest.raises(RootfsError, match="b: etc/conf is also shipped, with different contents, by a"):
        unpack_debs([("a", a), ("b", b)], tmp_path / "r2")


def test_keep_path() -> None:
    assert keep_path("usr/share/doc")
    assert keep_path("usr/share/doc/libc6")
    assert keep_path("usr/share/doc/libc6/copyright")
    assert not keep_path("usr/share/doc/libc6/changelog.gz")
    assert not keep_path("usr/share/man")
    assert keep_path("usr/share/zoneinfo/Etc/UTC")
    assert keep_path("usr/lib/python3.11/locale.py")
