from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlbuild.debian.errors import ChecksumMismatch, FetchError
from mlbuild.debian.fetch import default_cache_dir, fetch_all, fetch_package
from mlbuild.debian.testing import Entry, make_deb, make_mirror


@pytest.fixture()
def mirror(tmp_path: Path):
    debs = []
    for name in ("alpha", "beta"):
        deb = make_deb(tmp_path / f"{name}.deb", name, entries=[Entry(f"./usr/share/{name}", content=name.encode())])
        debs.append((name, "1.0-1", deb))
    return make_mirror(tmp_path / "mirror", debs)


def test_fetch_downloads_verifies_and_caches(tmp_path: Path, mirror) -> None:
    cache = tmp_path / "cache"
    paths = fetch_all(mirror, cache, apt_fallback=False)
    assert set(paths) == {"alpha", "beta"}
    for pkg in mirror.packages:
        assert paths[pkg.name] == cache / f"{pkg.sha256}.deb"
        assert hashlib.sha256(paths[pkg.name].read_bytes()).hexdigest() == pkg.sha256

    def no_network(url, dest):
        raise AssertionError(f"cache miss for {url}")

    assert fetch_all(mirror, cache, download=no_network, apt_fallback=False) == paths
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{p.sha256}.deb" for p in mirror.packages)


def test_sha256_mismatch_names_package_and_both_hashes(tmp_path: Path, mirror) -> None:
    pkg = mirror.packages[0]
    (tmp_path / "mirror" / pkg.filename).write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch) as err:
        fetch_package(pkg, mirror.mirrors, cache, apt_fallback=False)
    msg = str(err.value)
    assert pkg.name in msg and pkg.version in msg
    assert pkg.sha256 in msg and hashlib.sha256(b"tampered").hexdigest() in msg
    assert "refresh the lock" in msg
    assert list(cache.iterdir()) == []  # nothing half-written left in the cache


def test_corrupted_cache_entry_is_refetched(tmp_path: Path, mirror) -> None:
    cache = tmp_path / "cache"
    pkg = mirror.packages[0]
    path = fetch_package(pkg, mirror.mirrors, cache, apt_fallback=False)
    path.write_bytes(b"bit rot")
    assert fetch_package(pkg, mirror.mirrors, cache, apt_fallback=False).read_bytes() != b"bit rot"


def test_missing_file_on_mirror_is_a_fetch_error(tmp_path: Path, mirror) -> None:
    pkg = mirror.packages[0]
    (tmp_path / "mirror" / pkg.filename).unlink()
    with pytest.raises(FetchError, match=f"{pkg.name} 1.0-1: download of file://"):
        fetch_package(pkg, mirror.mirrors, tmp_path / "cache", apt_fallback=False)


def test_default_cache_dir_honours_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mlbuild" / "debs"
