from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.container_run.errors import RootfsError
from mlbuild.container_run.rootfs_view import find, make_dirs


def test_find_follows_symlinks_inside_the_rootfs(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/python3.11").write_text("")
    os.symlink("usr/bin", tmp_path / "bin")
    os.symlink("/usr/bin/python3.11", tmp_path / "usr/bin/python3")
    assert find(tmp_path, "/bin/python3")[0] == "usr/bin/python3.11"


def test_find_never_leaves_the_rootfs(tmp_path: Path) -> None:
    os.symlink("../../../../../../etc/passwd", tmp_path / "up")
    os.symlink("/etc/passwd", tmp_path / "abs")
    assert find(tmp_path, "/up") == ("etc/passwd", None)  # `..` stops at the root, as in a chroot
    assert find(tmp_path, "/abs") == ("etc/passwd", None)
    os.symlink("loop", tmp_path / "loop")
    assert find(tmp_path, "/loop")[1] is None


def test_make_dirs(tmp_path: Path) -> None:
    make_dirs(tmp_path, "/opt/ml")
    assert (tmp_path / "opt/ml").is_dir() and (tmp_path / "opt").stat().st_mode & 0o777 == 0o755
    make_dirs(tmp_path, "/opt/ml")  # idempotent


@pytest.mark.parametrize("setup", ["file", "absolute-symlink", "escaping-symlink"])
def test_make_dirs_refuses(tmp_path: Path, setup: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    if setup == "file":
        (root / "opt").write_text("")
    elif setup == "absolute-symlink":
        os.symlink(str(tmp_path / "outside"), root / "opt")
    else:
        os.symlink("../outside", root / "opt")
    with pytest.raises(RootfsError, match="/opt/ml"):
        make_dirs(root, "/opt/ml")
    assert not (tmp_path / "outside").exists()
