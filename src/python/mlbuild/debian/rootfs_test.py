from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.debian.errors import RootfsError
from mlbuild.debian.rootfs import assemble_rootfs, build_rootfs
from mlbuild.debian.testing import Entry, make_deb, make_mirror
from mlbuild.debian.treehash import summarize_tree

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture()
def fake_base(tmp_path: Path):
    python = make_deb(
        tmp_path / "python3.11.deb",
        "python3.11",
        "3.11.2-6",
        [
            Entry("./usr/bin/python3.11", content=b"\x7fELF python", mode=0o755),
            Entry("./usr/lib/python3.11/os.py", content=b"# os\n"),
            Entry("./usr/share/doc/python3.11/copyright", content=b"PSF\n"),
            Entry("./usr/share/man/man1/python3.11.1.gz", content=b"man"),
        ],
    )
    ca = make_deb(
        tmp_path / "ca.deb",
        "ca-certificates",
        "20250419",
        architecture="all",
        entries=[
            Entry("./etc/ssl/certs/", "dir"),
            Entry("./usr/share/ca-certificates/mozilla/Z_CA.crt", content=CERT.encode()),
            Entry("./usr/share/ca-certificates/mozilla/A_CA.crt", content=CERT.replace("MIIB", "MIIA").encode()),
        ],
    )
    gomp = make_deb(
        tmp_path / "gomp.deb",
        "libgomp1",
        "12.2.0-14",
        [
            Entry("./usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0", content=b"gomp"),
            Entry("./usr/lib/x86_64-linux-gnu/libgomp.so.1", "symlink", target="libgomp.so.1.0.0"),
        ],
    )
    debs = [("python3.11", "3.11.2-6", python), ("ca-certificates", "20250419", ca), ("libgomp1", "12.2.0-14", gomp)]
    return make_mirror(tmp_path / "mirror", debs)


def test_rootfs_is_deterministic(tmp_path: Path, fake_base) -> None:
    a = build_rootfs(fake_base, tmp_path / "a", cache_dir=tmp_path / "cache")
    b = build_rootfs(fake_base, tmp_path / "nested/b", cache_dir=tmp_path / "cache2")
    assert a.summary.digest == b.summary.digest == summarize_tree(tmp_path / "a").digest
    assert a.packages == (("ca-certificates", "20250419"), ("libgomp1", "12.2.0-14"), ("python3.11", "3.11.2-6"))
    root = tmp_path / "a"
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert bundle.index("MIIA") < bundle.index("MIIB")
    assert os.readlink(root / "usr/bin/python3") == "python3.11"
    assert not (root / "usr/share/man").exists()
    assert "Package: libgomp1" in (root / "var/lib/dpkg/status").read_text()
    # The digest sees content and mode changes.
    os.chmod(root / "usr/lib/python3.11/os.py", 0o600)
    assert summarize_tree(root).digest != b.summary.digest


def test_existing_output_needs_replace(tmp_path: Path, fake_base) -> None:
    out = tmp_path / "out"
    build_rootfs(fake_base, out, cache_dir=tmp_path / "cache")
    with pytest.raises(RootfsError, match="already exists; remove it or pass --force"):
        build_rootfs(fake_base, out, cache_dir=tmp_path / "cache")
    (out / "stale").write_text("old")
    build_rootfs(fake_base, out, cache_dir=tmp_path / "cache", replace=True)
    assert not (out / "stale").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_failed_build_leaves_no_output(tmp_path: Path) -> None:
    good = make_deb(tmp_path / "a.deb", "a", entries=[Entry("./etc/x", content=b"1")])
    bad = make_deb(tmp_path / "b.deb", "b", entries=[Entry("./etc/x", content=b"2")])
    with pytest.raises(RootfsError, match="also shipped"):
        assemble_rootfs([("a", good), ("b", bad)], tmp_path / "out")
    assert list(tmp_path.glob("*out*")) == [] and list(tmp_path.glob(".out*")) == []
