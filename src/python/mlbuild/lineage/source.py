"""The git revision a run or publish came from: `{"revision": SHA, "dirty": BOOL}` or None.

`$MLBUILD_SOURCE_REVISION` (`<sha>`, `<sha>-dirty`, as the image's revision label spells it;
set by the Pants rules) wins; else, when the working directory is in a git work tree and git
is installed, `git rev-parse HEAD` and `git status --porcelain` there. Quiet: no git, no
repository, no commit yet, or a git that fails all give None (a record without a revision).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from mlbuild.lineage.record import source_from_revision
from mlbuild.names import SOURCE_REVISION_ENV as SOURCE_REVISION_ENV_VAR

GIT_TIMEOUT_S = 10


def current_source(
    environ: Mapping[str, str] = os.environ, cwd: Optional[Union[str, Path]] = None
) -> Optional[Dict[str, Any]]:
    value = environ.get(SOURCE_REVISION_ENV_VAR, "").strip()
    if value and value != "unknown":
        return source_from_revision(value)
    return git_source(cwd)


def _git(git: str, cwd: Optional[Union[str, Path]], *args: str) -> Optional[str]:
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            # NB: never a pager or a credential prompt; a locale-independent output.
            env={**os.environ, "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_source(cwd: Optional[Union[str, Path]] = None) -> Optional[Dict[str, Any]]:
    git = shutil.which("git")
    if git is None:
        return None
    if (_git(git, cwd, "rev-parse", "--is-inside-work-tree") or "").strip() != "true":
        return None
    head = (_git(git, cwd, "rev-parse", "--verify", "--quiet", "HEAD") or "").strip()
    status = _git(git, cwd, "status", "--porcelain")
    if not head or status is None:
        return None
    return {"revision": head, "dirty": bool(status.strip())}
