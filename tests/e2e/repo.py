"""Helpers for end-to-end tests: a temporary copy of the repo and a ./pants runner."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

# NB: Pants materialises the `//:repo` files target at the sandbox root, which is the cwd.
SANDBOX = Path.cwd()


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in (
        "pants",
        "pants.toml",
        "BUILD",
        "3rdparty",
        "bench",
        "build-support",
        "docker",
        "docs",
        "pants-plugins",
        "src",
    ):
        source = SANDBOX / name
        if source.is_dir():
            shutil.copytree(source, dest / name, symlinks=True)
        elif source.exists():
            shutil.copy2(source, dest / name)
    (dest / "pants").chmod(0o755)
    return dest


def pants(
    repo: Path,
    *args: str,
    timeout: int = 1200,
    env: Optional[Mapping[str, Optional[str]]] = None,
    umask: Optional[int] = None,
) -> Result:
    """Run ./pants in `repo`; `env` entries are set, or removed when None."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    # NB: no pantsd, so nothing outlives the test; the launcher re-derives its PANTS_* settings.
    proc = subprocess.run(
        ["./pants", "--no-pantsd", "--no-dynamic-ui", *args],
        cwd=repo,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pex_sha256(path: Path) -> str:
    """A PEX's sha256 as `package` prints it: the file's, or for a packed PEX (a folder) that of
    `find -L . -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum` run in it
    (running a packed PEX writes bytecode beside its code files: not built, not counted)."""
    if not path.is_dir():
        return sha256_file(path)
    listing = subprocess.run(
        "find -L . -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum",
        shell=True,
        cwd=path,
        capture_output=True,
        check=True,
    ).stdout
    return hashlib.sha256(listing).hexdigest()


# The repo's .gitignore: a copy's build outputs must not make its tree dirty.
GITIGNORE = "/dist/\n/.mlbuild/\n/.pants.d/\n/.pids/\n__pycache__/\n*.pyc\n"


def commit_copy(repo: Path, message: str = "copy of the repo") -> str:
    """Make a copy a git repository with everything committed, as a user's checkout is (builds
    record the commit, and publish tags the job with it); returns the commit id."""
    (repo / ".gitignore").write_text(GITIGNORE)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.com",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.com",
    }
    for args in (
        ["init", "--quiet"],
        ["add", "-A"],
        ["-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def pantsd_pid(repo: Path) -> Optional[int]:
    """pantsd's pid, from `.pids/<hash>/pantsd/pid` (Pants' `pants_subprocessdir`)."""
    for path in (repo / ".pids").glob("*/pantsd/pid"):
        text = path.read_text().strip()
        return int(text) if text.isdigit() else None
    return None


def stop_pantsd(repo: Path, sig: int = signal.SIGTERM) -> None:
    pid = pantsd_pid(repo)
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
