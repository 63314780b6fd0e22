"""NVIDIA GPUs in the sandbox: the device nodes and the driver libraries an image needs.

Docker does this with the NVIDIA container toolkit; SageMaker GPU instances do it for every
training container. Here, when the host has GPU device nodes, the sandbox gets:

- every `/dev/nvidia*` node (`nvidia0..N`, `nvidiactl`, `nvidia-uvm`, `nvidia-uvm-tools`,
  `nvidia-modeset`) and the `/dev/nvidia-caps` folder, bound with `--dev-bind`;
- the host driver's user-space libraries (`libcuda.so.1`, `libnvidia-ml.so.1`,
  `libnvidia-ptxjitcompiler.so.1`, and `libnvidia-nvvm.so.4` where present), found in
  `ldconfig -p` and bound read-only into `/usr/local/nvidia/lib64`, which is put on
  `LD_LIBRARY_PATH` (AWS's deep learning containers look there too).

The CUDA runtime itself (libcudart, cuDNN, ...) comes with the image (a DLC base or the
framework's wheels): the driver libraries must match the host's kernel module, so they
always come from the host. Verified by hand on an H200 host (TOOLCHAIN.md); the tests here
run against a fake /dev tree and a recorded `ldconfig -p`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mlbuild.container_run.errors import GpuDriverError
from mlbuild.runtime.resources import DEV_DIR, GPU_DEVICE

CONTAINER_LIB_DIR = "/usr/local/nvidia/lib64"
MOUNT_POINT = "/usr/local/nvidia"
DRIVER_LIBRARIES = ("libcuda.so.1", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1", "libnvidia-nvvm.so.4")
REQUIRED_LIBRARIES = ("libcuda.so.1",)
CONTROL_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps")
_LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


@dataclass(frozen=True)
class GpuBinds:
    devices: tuple[str, ...]  # host paths, bound at /dev/<name> in the sandbox
    libraries: tuple[tuple[str, str], ...]  # (host file, container path)

    @property
    def gpu_count(self) -> int:
        return sum(1 for d in self.devices if GPU_DEVICE.match(os.path.basename(d)))

    def bwrap_args(self) -> list[str]:
        args: list[str] = []
        for device in self.devices:
            args += ["--dev-bind", device, f"/dev/{os.path.basename(device)}"]
        if self.libraries:
            args += ["--tmpfs", MOUNT_POINT]
            for host, container in self.libraries:
                args += ["--ro-bind", host, container]
        return args

    def env(self, image_env: Mapping[str, str]) -> dict[str, str]:
        """LD_LIBRARY_PATH with the driver libraries' folder (after the image's own entries)."""
        if not self.libraries:
            return {}
        current = image_env.get("LD_LIBRARY_PATH", "")
        parts = [p for p in current.split(":") if p]
        return {"LD_LIBRARY_PATH": ":".join([*parts, CONTAINER_LIB_DIR] if CONTAINER_LIB_DIR not in parts else parts)}


def device_nodes(dev_dir: Path = DEV_DIR) -> list[str]:
    """The NVIDIA nodes in `dev_dir` (GPUs first, in order, then the control devices present)."""
    try:
        names = set(os.listdir(dev_dir))
    except OSError:
        return []
    gpus = sorted((n for n in names if GPU_DEVICE.match(n)), key=lambda n: int(GPU_DEVICE.match(n).group(1)))  # type: ignore[union-attr]
    return [str(Path(dev_dir) / n) for n in [*gpus, *(c for c in CONTROL_DEVICES if c in names)]]


def parse_ldconfig(text: str, arch: str = "x86-64") -> dict[str, str]:
    """soname -> path from `ldconfig -p` output, for this architecture (the first entry wins, as ld.so's)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match and arch in match.group(2):
            found.setdefault(match.group(1), match.group(3))
    return found


def ldconfig_output() -> str:
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            return subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
    return ""


def discover(dev_dir: Path = DEV_DIR, ldconfig_text: str | None = None) -> GpuBinds:
    """What to give the sandbox on this host: nothing without GPU nodes; an error if the driver is missing."""
    devices = device_nodes(dev_dir)
    if not any(GPU_DEVICE.match(os.path.basename(d)) for d in devices):
        return GpuBinds((), ())
    libraries = parse_ldconfig(ldconfig_output() if ldconfig_text is None else ldconfig_text)
    missing = [name for name in REQUIRED_LIBRARIES if name not in libraries]
    if missing:
        raise GpuDriverError(
            f"{dev_dir} has NVIDIA GPU devices, but `ldconfig -p` lists no {', '.join(missing)}: the driver's "
            f"user-space libraries are not installed or not in ld.so's cache. Fix: install the NVIDIA driver "
            f"libraries matching the kernel module (and run ldconfig), or run without GPUs (--no-gpus)."
        )
    binds = tuple(
        (os.path.realpath(libraries[name]), f"{CONTAINER_LIB_DIR}/{name}")
        for name in DRIVER_LIBRARIES
        if name in libraries
    )
    return GpuBinds(tuple(devices), binds)
