from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlbuild.container_run.rootfs_cache import RootfsCache, default_cache_dir
from mlbuild.oci.image import Image, set_config


class FakeUnpack:
    """Writes one marker file (plus a read-only dir, as images have) and counts calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __call__(self, image: Image, rootfs: Path) -> None:
        self.calls.append(image.env()["N"])
        (rootfs / "usr").mkdir()
        (rootfs / "usr/marker").write_text(image.env()["N"])
        os.chmod(rootfs / "usr", 0o555)
        if self.fail:
            raise RuntimeError("unpack failed")


def _image(n: int) -> Image:
    return set_config(Image(), env={"N": str(n)})


def _use(cache: RootfsCache, n: int) -> tuple[Path, bool]:
    with cache.use(_image(n)) as rootfs:
        assert (rootfs.path / "usr/marker").read_text() == str(n)
        return rootfs.path, rootfs.reused


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mlbuild"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home/.cache/mlbuild"


def test_unpacked_once_then_reused(tmp_path: Path) -> None:
    unpack = FakeUnpack()
    cache = RootfsCache(tmp_path, unpack=unpack)
    first, reused_first = _use(cache, 1)
    second, reused_second = _use(cache, 1)
    assert first == second == tmp_path / "rootfs" / RootfsCache.key(_image(1))
    assert (reused_first, reused_second) == (False, True)
    assert unpack.calls == ["1"]
    assert first.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in (tmp_path / "rootfs").iterdir()] == [first.name]  # no temp dirs left


def test_prepare_runs_before_publishing(tmp_path: Path) -> None:
    seen = []

    def prepare(root: Path) -> None:
        seen.append(root)
        assert root.name.startswith(".") and (root / "usr/marker").exists()
        (root / "opt/ml").mkdir(parents=True)

    with RootfsCache(tmp_path, unpack=FakeUnpack()).use(_image(1), prepare=prepare) as rootfs:
        assert (rootfs.path / "opt/ml").is_dir()
    assert len(seen) == 1


def test_least_recently_used_are_evicted(tmp_path: Path) -> None:
    unpack = FakeUnpack()
    cache = RootfsCache(tmp_path, keep=2, unpack=unpack)
    paths = {n: _use(cache, n)[0] for n in (1, 2)}
    time.sleep(0.01)
    _use(cache, 1)  # 1 is now more recent than 2
    time.sleep(0.01)
    paths[3] = _use(cache, 3)[0]
    assert not paths[2].exists() and paths[1].exists() and paths[3].exists()
    assert cache.entries() == [paths[3], paths[1]]
    _use(cache, 2)
    assert unpack.calls == ["1", "2", "3", "2"]
    assert {p.name for p in (tmp_path / "rootfs").iterdir()} == {paths[2].name, paths[3].name}


def test_a_rootfs_in_use_is_not_evicted(tmp_path: Path) -> None:
    cache = RootfsCache(tmp_path, keep=1, unpack=FakeUnpack())
    with cache.use(_image(1)) as held:
        _use(cache, 2)  # would evict 1, but a run holds it
        assert held.path.exists()
    assert cache.evict() == [held.key]
    assert not held.path.exists()


def test_failed_unpack_leaves_nothing(tmp_path: Path) -> None:
    cache = RootfsCache(tmp_path, unpack=FakeUnpack(fail=True))
    with pytest.raises(RuntimeError):
        _use(cache, 1)
    assert list((tmp_path / "rootfs").iterdir()) == []


def test_losing_a_publish_race_keeps_the_winner(tmp_path: Path) -> None:
    cache = RootfsCache(tmp_path, unpack=FakeUnpack())
    winner = tmp_path / "rootfs" / RootfsCache.key(_image(1))

    def racing_unpack(image: Image, rootfs: Path) -> None:
        FakeUnpack()(image, rootfs)
        if not winner.exists():
            winner.mkdir(parents=True)
            (winner / "usr").mkdir()
            (winner / "usr/marker").write_text("1")
            (winner / "won").write_text("")

    cache.unpack = racing_unpack
    path, reused = _use(cache, 1)
    assert (path / "won").exists() and not reused
    assert [p.name for p in (tmp_path / "rootfs").iterdir()] == [winner.name]


def test_stale_temp_dirs_are_cleaned(tmp_path: Path) -> None:
    """kill -9 mid-unpack leaves `.<key>.incomplete-<pid>-*`: removed by age, or once its owner is dead."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp_path / "rootfs" / f".abc.incomplete-{os.getpid()}-x"
    (old / "usr").mkdir(parents=True)
    os.chmod(old / "usr", 0o555)
    orphan = tmp_path / "rootfs" / f".ghi.incomplete-{dead.pid}-z"
    orphan.mkdir()
    fresh_orphan = tmp_path / "rootfs" / f".jkl.evicting-{dead.pid}-w"
    fresh_orphan.mkdir()
    live = tmp_path / "rootfs" / f".def.incomplete-{os.getpid()}-y"
    live.mkdir()
    foreign = tmp_path / "rootfs" / ".not-ours"
    foreign.mkdir()
    os.utime(old, (0, 0))
    os.utime(foreign, (0, 0))
    two_minutes_ago = time.time() - 120
    os.utime(orphan, (two_minutes_ago, two_minutes_ago))
    _use(RootfsCache(tmp_path, unpack=FakeUnpack()), 1)
    assert not old.exists() and not orphan.exists()
    assert live.exists() and fresh_orphan.exists() and foreign.exists()


def test_cache_folders_are_private(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir(mode=0o755)
    path, _ = _use(RootfsCache(tmp_path, unpack=FakeUnpack()), 1)
    assert stat.S_IMODE((tmp_path / "rootfs").stat().st_mode) == 0o700
