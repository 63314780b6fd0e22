"""The bubblewrap command line that runs an unpacked image like SageMaker's `docker run IMAGE train`.

Pure data in, argv out, so every flag is testable without bwrap. What the process sees:

    /                          the image's rootfs, read-only
    /opt/ml                    the staged run directory, writable (SageMaker mounts its own too)
    /opt/ml/input/data/<ch>    each channel's local data folder, read-only (a host's share of
                               a ShardedByS3Key channel: its files, bound one by one)
    /opt/ml/checkpoints        the job's checkpoint folder on the host, kept across re-runs
    /etc/hosts                 the job's hosts (multi-host jobs)
    /dev/nvidia*               the host's GPUs, when it has any (see gpu.py)
    /proc /dev /tmp            fresh procfs, minimal devtmpfs, empty tmpfs
    network                    none (SageMaker's network-isolation mode) unless `network=True`
    user, hostname             uid/gid 0 (SageMaker runs `train` as root), host `algo-1`
    environment                exactly the image's Env plus Docker's defaults (PATH, HOME, HOSTNAME)

NB: SageMaker's root filesystem is writable; ours is read-only so that a run can never
change the cached rootfs that later runs reuse. The one common writer is a PEX, which
unpacks itself into `$PEX_ROOT` (default `~/.pex`), so `PEX_ROOT=/tmp/.pex` is set unless
the image sets it; anything else that writes outside /opt/ml and /tmp fails loudly here
(EROFS), which is the safer surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from mlbuild.container_run.gpu import GpuBinds
from mlbuild.oci.image import DEFAULT_PATH
from mlbuild.runtime import contract
from mlbuild.runtime.local_run import RESOURCE_CONFIG

ML_DIR = str(contract.SAGEMAKER_BASE_DIR)
HOSTNAME = str(RESOURCE_CONFIG["current_host"])
PEX_ROOT = "/tmp/.pex"

# NB: bwrap must find these directories in the read-only root to mount over them (it
# cannot mkdir there); the rootfs cache creates them once, before publishing a rootfs.
MOUNT_POINTS = ("/proc", "/dev", "/tmp", ML_DIR)
# NB: files to mount over, made empty in the rootfs when missing (a dpkg-built base has no /etc/hosts).
FILE_MOUNT_POINTS = ("/etc/hosts",)


def container_env(image_env: Mapping[str, str]) -> dict[str, str]:
    """The image's Env plus what Docker adds when absent: PATH, HOME, HOSTNAME; plus PEX_ROOT.

    https://github.com/moby/moby/blob/v24.0.0/daemon/container.go (CreateDaemonEnvironment)
    """
    env = {k: v for k, v in image_env.items() if k}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", HOSTNAME)
    env.setdefault("HOME", "/root")
    env.setdefault("PEX_ROOT", PEX_ROOT)
    return env


@dataclass(frozen=True)
class SandboxSpec:
    rootfs: Path  # the unpacked image (with MOUNT_POINTS present)
    ml_dir: Path  # the staged run directory, mounted at /opt/ml
    command: tuple[str, ...]  # absolute program path first (see command.py)
    env: Mapping[str, str] = field(default_factory=dict)  # the complete environment
    workdir: str = "/"
    channels: Mapping[str, Path] = field(default_factory=dict)  # channel name -> host folder
    network: bool = False
    hostname: str = HOSTNAME
    # channel name -> (path inside the channel, host file): a host's share of a sharded channel
    channel_files: Mapping[str, Sequence[tuple[str, Path]]] = field(default_factory=dict)
    checkpoints: Optional[Path] = None  # host folder bound at /opt/ml/checkpoints
    hosts_file: Optional[Path] = None  # bound at /etc/hosts
    gpus: GpuBinds = GpuBinds((), ())


def bwrap_argv(spec: SandboxSpec, bwrap: str = "bwrap") -> list[str]:
    argv = [bwrap, "--ro-bind", str(spec.rootfs), "/"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += ["--bind", str(spec.ml_dir), ML_DIR]
    for name in sorted(spec.channels):
        # NB: the mount point exists: prepare_run(link_channels=False) made it an empty dir.
        argv += ["--ro-bind", str(spec.channels[name]), f"{ML_DIR}/{contract.DATA_DIR}/{name}"]
    for name in sorted(spec.channel_files):
        # NB: the share's folder in the run directory holds an empty file at each destination: bound
        # read-only first, so the channel cannot be written, then each file is bound over its stand-in.
        channel = f"{ML_DIR}/{contract.DATA_DIR}/{name}"
        argv += ["--ro-bind", str(spec.ml_dir / contract.DATA_DIR / name), channel]
        for rel, source in spec.channel_files[name]:
            argv += ["--ro-bind", str(source), f"{channel}/{rel}"]
    if spec.checkpoints is not None:
        argv += ["--bind", str(spec.checkpoints), f"{ML_DIR}/{contract.CHECKPOINTS_DIR}"]
    if spec.hosts_file is not None:
        argv += ["--ro-bind", str(spec.hosts_file), "/etc/hosts"]
    argv += spec.gpus.bwrap_args()
    argv += ["--unshare-all"]
    if spec.network:
        argv += ["--share-net"]
    argv += ["--uid", "0", "--gid", "0", "--hostname", spec.hostname]
    # NB: --die-with-parent: killing the runner kills the container; --new-session: no
    # TIOCSTI keystroke injection into our terminal (CVE-2017-5226).
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    for name in sorted(spec.env):
        argv += ["--setenv", name, spec.env[name]]
    argv += ["--chdir", spec.workdir or "/", "--", *spec.command]
    return argv
