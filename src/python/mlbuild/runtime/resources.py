"""What a host has to train with: CPUs and NVIDIA GPUs, counted the way a container sees them.

`num_gpus` counts the GPU device nodes (`/dev/nvidia0`, `/dev/nvidia1`, ...) rather than asking
`nvidia-smi` (the sagemaker-training-toolkit's way): mlbuild's base image has no nvidia-smi,
and a GPU the sandbox was not given has no node, so the count is what the process can use.
The container runner (`mlbuild.container_run.gpu`) binds exactly these nodes in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# One node per GPU; nvidiactl, nvidia-uvm, nvidia-modeset and nvidia-caps/ are control devices.
GPU_DEVICE = re.compile(r"^nvidia(\d+)$")
DEV_DIR = Path("/dev")


def num_cpus() -> int:
    """The CPUs this process may run on (a cgroup/affinity limit counts, as on SageMaker)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_devices(dev_dir: Path = DEV_DIR) -> list[Path]:
    """The GPU device nodes under `dev_dir`, in GPU order (nvidia0, nvidia1, ..., nvidia10)."""
    try:
        names = [entry.name for entry in os.scandir(dev_dir) if GPU_DEVICE.match(entry.name)]
    except OSError:
        return []
    return [Path(dev_dir) / name for name in sorted(names, key=lambda n: int(GPU_DEVICE.match(n).group(1)))]  # type: ignore[union-attr]


def num_gpus(dev_dir: Path = DEV_DIR) -> int:
    return len(gpu_devices(dev_dir))
