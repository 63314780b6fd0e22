from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.runtime import checkpoints


def test_latest_is_the_highest_step_not_the_newest_file(tmp_path: Path) -> None:
    checkpoints.save(tmp_path, 10, b"ten")
    checkpoints.save(tmp_path, 9, b"nine")  # written last, but an older step
    found = checkpoints.latest(tmp_path)
    assert found is not None and found.step == 10 and found.path.read_bytes() == b"ten"


def test_partial_writes_and_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".partial-abc").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("x")
    assert checkpoints.latest(tmp_path) is None
    assert checkpoints.latest(tmp_path / "missing") is None


def test_hosts_keep_their_own(tmp_path: Path) -> None:
    checkpoints.save(tmp_path, 3, b"a1", host="algo-1")
    checkpoints.save(tmp_path, 5, b"a2", host="algo-2")
    checkpoints.save(tmp_path, 4, b"shared")
    assert checkpoints.latest(tmp_path, host="algo-1").path.read_bytes() == b"a1"  # type: ignore[union-attr]
    assert checkpoints.latest(tmp_path, host="algo-2").step == 5  # type: ignore[union-attr]
    assert checkpoints.latest(tmp_path).step == 4  # type: ignore[union-attr]


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        checkpoints.save(tmp_path, 1, b"x")
    assert os.listdir(tmp_path) == []


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in range(1, 6):
        checkpoints.save(tmp_path, step, b"s")
    checkpoints.prune(tmp_path, keep=2)
    assert [c.step for c in checkpoints.all_checkpoints(tmp_path)] == [4, 5]


def test_names_sort_by_step() -> None:
    assert checkpoints.name(42) == "checkpoint-000000042.bin"
    assert checkpoints.name(1, ".txt", "algo-2") == "checkpoint-algo-2-000000001.txt"
    with pytest.raises(ValueError):
        checkpoints.name(-1)
