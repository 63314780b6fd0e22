"""Running git and Pants for `verify`: the one side effect of a rebuild, behind one `Runner`.

Tests replace the Runner; the real one scrubs the environment (SCRUBBED_ENV) so the
checkout's own Pants and plugin are what run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from mlbuild.lineage.errors import PlatformError, UserError

# NB: variables that would make the checkout's Pants (or the plugin it imports) come from
# somewhere other than the checkout: `./pants mlbuild verify` runs from a PEX (PEX_* variables), a
# hand run may set PYTHONPATH=src/python, and the plugin is on Pants' pythonpath.
SCRUBBED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PEX",
    "PEX_ROOT",
    "PEX_PATH",
    "PEX_MODULE",
    "PEX_SCRIPT",
)


class CannotRebuild(UserError):
    """The record can't be rebuilt (dirty or unknown revision, revision not in the repo)."""


class RebuildFailed(PlatformError):
    """git or Pants failed in the temporary checkout."""


# run(argv, cwd, stream) -> stdout. stream=True: send the command's output to stderr as it
# comes (Pants); False: capture and return stdout (git). Raises RebuildFailed on failure.
Runner = Callable[[Sequence[str], Optional[Path], bool], str]


def child_env(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in SCRUBBED_ENV}


def run_command(argv: Sequence[str], cwd: Optional[Path] = None, stream: bool = False) -> str:
    """The real Runner: subprocess, with the environment scrubbed (see SCRUBBED_ENV)."""
    where = f" (in {cwd})" if cwd else ""
    try:
        if not stream:
            done = subprocess.run(list(argv), cwd=cwd, env=child_env(), capture_output=True, text=True)
            if done.returncode != 0:
                raise RebuildFailed(
                    f"`{' '.join(argv)}`{where} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
                )
            return done.stdout
        with subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as proc:
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()
            code = proc.wait()
        if code != 0:
            raise RebuildFailed(f"`{' '.join(argv)}`{where} exited {code}; its output is above.")
        return ""
    except FileNotFoundError as e:
        raise RebuildFailed(f"`{argv[0]}`{where}: not found ({e}).") from e


def pants_argv(pipeline: str, reuse_cache: bool = False, named_caches: Optional[Path] = None) -> List[str]:
    isolation = (
        [] if reuse_cache else ["--no-local-cache", *([f"--named-caches-dir={named_caches}"] if named_caches else [])]
    )
    return ["./pants", "--no-pantsd", *isolation, "package", pipeline]


def git_toplevel(runner: Runner, cwd: Optional[Path] = None) -> Path:
    try:
        return Path(runner(["git", "rev-parse", "--show-toplevel"], cwd, False).strip())
    except RebuildFailed as e:
        raise UserError(f"not in a git repository, and no --repo given ({e}).") from e
