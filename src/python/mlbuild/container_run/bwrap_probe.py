"""Is bubblewrap installed, and can it create the namespaces a run needs? Asked once per process."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

from mlbuild.container_run.errors import SandboxUnavailableError

INSTALL_HINT = "apt-get install bubblewrap"


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
    argv = [path, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all",
            "--uid", "0", "--gid", "0", "--die-with-parent", "--", probe]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailableError(f"{path} could not be started ({e}).") from e
    if proc.returncode != 0:
        raise SandboxUnavailableError(
            f"{path} is installed but cannot create a sandbox here: {proc.stderr.strip() or f'exit {proc.returncode}'}. "
            "Fix: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0), or run as root / in a container started with --privileged; "
            f"a too-old bwrap also fails here (`{INSTALL_HINT}` gives a current one)."
        )
    return path
