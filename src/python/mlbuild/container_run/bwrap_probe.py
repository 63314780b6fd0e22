"""Is bubblewrap installed, and can it create the namespaces a run needs? Asked once per process."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

from mlbuild.container_run.errors import SandboxUnavailableError

INSTALL_HINT = "apt-get install bubblewrap"


def _probe(argv: list[str]) -> str:
    """'' when `argv` ran and exited 0, else what went wrong (bwrap's own words where it said any)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailableError(f"{argv[0]} could not be started ({e}).") from e
    return "" if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


@functools.lru_cache(maxsize=None)
def check_bwrap(bwrap: str = "bwrap") -> str:
    """The absolute path of a working `bwrap`, or SandboxUnavailableError saying how to fix it."""
    path = shutil.which(bwrap)
    if path is None:
        raise SandboxUnavailableError(
            f"bubblewrap (`{bwrap}`) is not installed; mlbuild runs images with it instead of Docker. "
            f"Fix: `{INSTALL_HINT}` (Debian/Ubuntu), then retry."
        )
    # NB: the same namespaces and uid mapping a run uses, on the host's own root, so a
    # kernel or container policy that forbids them fails here with bwrap's own words.
    probe = shutil.which("true") or sys.executable
    argv = [
        path,
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--unshare-all",
        "--uid",
        "0",
        "--gid",
        "0",
        "--die-with-parent",
        "--",
        probe,
    ]
    problem = _probe(argv)
    if problem:
        raise SandboxUnavailableError(
            f"{path} is installed but cannot create a sandbox here: {problem}. "
            "Fix: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0), or run as root / in a container started with --privileged; "
            f"a too-old bwrap also fails here (`{INSTALL_HINT}` gives a current one)."
        )
    return path


@functools.lru_cache(maxsize=None)
def check_host_network(bwrap: str) -> None:
    """Can `bwrap` make a multi-host job's network: a user namespace mapped to root with
    CAP_NET_ADMIN, a new network namespace, and nested sandboxes inside it (multi_host.outer_argv)?"""
    probe = shutil.which("true") or sys.executable
    inner = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--unshare-all",
        "--share-net",
        "--uid",
        "0",
        "--gid",
        "0",
        "--die-with-parent",
        "--",
        probe,
    ]
    argv = [
        bwrap,
        "--dev-bind",
        "/",
        "/",
        "--unshare-user",
        "--unshare-net",
        "--uid",
        "0",
        "--gid",
        "0",
        "--cap-add",
        "CAP_NET_ADMIN",
        "--die-with-parent",
        "--",
        *inner,
    ]
    problem = _probe(argv)
    if problem:
        raise SandboxUnavailableError(
            f"{bwrap} cannot make the network of a multi-host job here: {problem}. "
            "Fix: a bwrap that is not setuid, with unprivileged user namespaces allowed (nested ones too), "
            "or run on one host (--instance-count 1)."
        )
