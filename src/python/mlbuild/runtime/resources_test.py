from __future__ import annotations

import os
from pathlib import Path

from mlbuild.runtime import resources


def test_gpus_are_counted_from_device_nodes(tmp_path: Path) -> None:
    for name in ("nvidia0", "nvidia1", "nvidia10", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "null"):
        (tmp_path / name).touch()
    (tmp_path / "nvidia-caps").mkdir()
    assert [p.name for p in resources.gpu_devices(tmp_path)] == ["nvidia0", "nvidia1", "nvidia10"]
    assert resources.num_gpus(tmp_path) == 3


def test_no_gpus_without_nodes(tmp_path: Path) -> None:
    (tmp_path / "nvidiactl").touch()
    assert resources.num_gpus(tmp_path) == 0
    assert resources.num_gpus(tmp_path / "missing") == 0


def test_cpus_follow_the_affinity_mask() -> None:
    assert resources.num_cpus() == len(os.sched_getaffinity(0))
