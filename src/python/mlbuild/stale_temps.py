"""Private temp folders named for their owner, and the sweep that removes them once stale.

A temp folder is `<prefix>-<pid>-<random>` (mode 0700). A process killed with -9 cannot clean
up, so whoever next works in the same parent removes temp folders whose owner pid is no longer
running (after a short grace, as a pid is only meaningful on this machine and in this pid
namespace), and any of them older than a day whatever the pid says (pids are reused).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

STALE_SECONDS = 24 * 3600
DEAD_OWNER_GRACE_SECONDS = 60  # NB: a folder this young may belong to a pid of another namespace
_TEMP_RE = re.compile(r"^\..*\.(?:incomplete|evicting)-(\d+)-[^/]+$")


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new 0700 folder `<prefix>-<pid>-<random>` in `parent`."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=parent))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (in this pid namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # NB: someone else's live process
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    m = _TEMP_RE.match(path.name)
    if m is None:
        return False
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    pid = int(m[1])
    return age > STALE_SECONDS or (age > DEAD_OWNER_GRACE_SECONDS and pid != os.getpid() and not pid_alive(pid))


def remove_stale_temps(parent: Path, now: float | None = None) -> list[str]:
    """Remove this module's stale temp folders in `parent`; returns their names."""
    removed: list[str] = []
    try:
        children = list(parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in children:
        if path.is_dir() and not path.is_symlink() and is_stale(path, now):
            remove_tree(path)
            removed.append(path.name)
    return removed


def remove_tree(path: Path) -> None:
    """shutil.rmtree that also removes read-only directories (images have 0555 ones); gone already is fine."""

    def make_writable(func, p, exc_info):
        if isinstance(exc_info[1], FileNotFoundError):
            return
        os.chmod(os.path.dirname(p), stat.S_IRWXU)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IRWXU)
        func(p)

    shutil.rmtree(path, onerror=make_writable)
