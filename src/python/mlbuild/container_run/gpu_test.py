"""GPU discovery and binds against a fake /dev tree and a recorded `ldconfig -p` (no GPU on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.container_run import gpu
from mlbuild.container_run.errors import GpuDriverError
from mlbuild.container_run.sandbox import SandboxSpec, bwrap_argv

# As on the H200 host of TOOLCHAIN.md: the driver under /usr/local/nvidia/lib64, an i386 copy too.
LDCONFIG = """\
1234 libs found in cache `/etc/ld.so.cache'
\tlibnvidia-ml.so.1 (libc6,x86-64) => {lib}/libnvidia-ml.so.1
\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
\tlibcuda.so.1 (libc6,x86-64) => {lib}/libcuda.so.1
\tlibnvidia-ptxjitcompiler.so.1 (libc6,x86-64) => {lib}/libnvidia-ptxjitcompiler.so.1
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
"""


def _fake_dev(root: Path, names: list[str]) -> Path:
    dev = root / "dev"
    dev.mkdir()
    for name in names:
        if name.endswith("/"):
            (dev / name).mkdir()
        else:
            (dev / name).touch()
    return dev


def _fake_driver(root: Path) -> tuple[Path, str]:
    lib = root / "nvidia/lib64"
    lib.mkdir(parents=True)
    for name in ("libcuda.so.580.1", "libnvidia-ml.so.580.1", "libnvidia-ptxjitcompiler.so.580.1"):
        (lib / name).write_bytes(b"\x7fELF")
        os.symlink(name, lib / (name.split(".so")[0] + ".so.1"))
    return lib, LDCONFIG.format(lib=lib)


def test_devices_and_driver_libraries_are_found(tmp_path: Path) -> None:
    dev = _fake_dev(
        tmp_path, ["nvidia1", "nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps/", "null", "nvme0"]
    )
    lib, ldconfig = _fake_driver(tmp_path)
    binds = gpu.discover(dev, ldconfig)
    assert binds.devices == tuple(
        str(dev / n) for n in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps")
    )
    assert binds.gpu_count == 2
    # Symlinks resolved (bwrap binds the file), x86-64 entries only, at the container's driver folder.
    assert binds.libraries == (
        (str(lib / "libcuda.so.580.1"), "/usr/local/nvidia/lib64/libcuda.so.1"),
        (str(lib / "libnvidia-ml.so.580.1"), "/usr/local/nvidia/lib64/libnvidia-ml.so.1"),
        (str(lib / "libnvidia-ptxjitcompiler.so.580.1"), "/usr/local/nvidia/lib64/libnvidia-ptxjitcompiler.so.1"),
    )
    assert binds.env({"LD_LIBRARY_PATH": "/opt/lib"}) == {"LD_LIBRARY_PATH": "/opt/lib:/usr/local/nvidia/lib64"}


def test_the_sandbox_gets_the_devices_and_libraries(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, ["nvidia0", "nvidiactl"])
    _, ldconfig = _fake_driver(tmp_path)
    binds = gpu.discover(dev, ldconfig)
    argv = bwrap_argv(SandboxSpec(tmp_path / "root", tmp_path / "ml", ("/usr/local/bin/train",), gpus=binds))
    joined = " ".join(argv)
    assert f"--dev-bind {dev}/nvidia0 /dev/nvidia0" in joined and f"--dev-bind {dev}/nvidiactl /dev/nvidiactl" in joined
    # the driver folder is a tmpfs first, then each library is bound into it
    assert "--tmpfs /usr/local/nvidia --ro-bind" in joined
    assert joined.index("--tmpfs /usr/local/nvidia") < joined.index("/usr/local/nvidia/lib64/libcuda.so.1")
    assert argv.index("--dev") < argv.index("--dev-bind")  # NB: after bwrap's own /dev, or it would hide them


def test_no_gpu_nodes_means_no_binds(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, ["nvidiactl", "null"])  # a driver without GPUs (or a CPU host with the module)
    assert gpu.discover(dev, "") == gpu.GpuBinds((), ())
    assert gpu.GpuBinds((), ()).bwrap_args() == [] and gpu.GpuBinds((), ()).env({}) == {}


def test_gpus_without_the_driver_library_are_an_error_with_the_fix(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, ["nvidia0"])
    with pytest.raises(GpuDriverError, match=r"lists no libcuda.so.1.*Fix: install the NVIDIA driver libraries"):
        gpu.discover(dev, "0 libs found\n")


def test_parse_ldconfig_keeps_the_first_entry_of_the_arch() -> None:
    text = "\tlibcuda.so.1 (libc6,x86-64) => /a/libcuda.so.1\n\tlibcuda.so.1 (libc6,x86-64) => /b/libcuda.so.1\n"
    assert gpu.parse_ldconfig(text) == {"libcuda.so.1": "/a/libcuda.so.1"}
