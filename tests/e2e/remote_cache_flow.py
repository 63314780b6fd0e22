"""`./pants package` of churn against a remote cache, with caches of its own: shared by the
remote-cache e2e test and bench/remote_cache.py."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from e2e.repo import SANDBOX, Result, copy_repo, pants, pex_sha256

CHURN = "src/python/pipelines/churn:train"
DIST = Path("dist/src.python.pipelines.churn")
CONFIG = "pants.remote-cache.toml"
# NB: what `[stats].log` prints at the end of a run: "Counters:" then "  name: value" lines.
COUNTER = re.compile(r"^\s+([a-z_]+): (\d+)$")
# NB: Pants logs "Completed: <description>" for a Process that ran; one served from a cache
# (local or remote) completes at debug level and is not shown.
COMPLETED = re.compile(r"Completed: (.+)$")
# The heavy Processes of a churn package, by a part of their description (Pants names a
# PEX build "Building N requirements for <name> ...").
HEAVY = (
    "Building the mlbuild tool PEX",
    "requirements for",  # the requirements-only PEXes: the zipapp's base and the image's wheels
    "PEX of ml_pipeline",  # the pipeline's zipapp
    "Assembling base image",
    "locked wheels into the dependency layers",
    "Assembling OCI image",
)

# mlbuild's own Processes: keyed on their inputs alone, so they hit on any machine.
MLBUILD_STEPS = (
    "Checking ",
    "Assembling base image",
    "locked wheels into the dependency layers",
    "Assembling OCI image",
    "Assembling the PEX of ml_pipeline",
    "Recording the provenance",
)


def clone(dest: Path) -> Path:
    """A copy of the repo, as the other e2e tests make it, with the remote-cache config."""
    repo = copy_repo(dest)
    source = SANDBOX / CONFIG
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} is not in the test's sandbox. Fix: add {CONFIG!r} to the //:repo files target."
        )
    shutil.copy2(source, repo / CONFIG)
    return repo


def empty_cache_args(scratch: Path) -> Tuple[str, ...]:
    """Pants flags for a build that starts from nothing on this machine: its own store (the
    process cache and every digest, Pants' lmdb), named caches (pex, pip, mlbuild's .debs and
    layers) and execution root."""
    for name in ("lmdb", "named_caches", "tmp"):
        (scratch / name).mkdir(parents=True, exist_ok=True)
    return (
        f"--local-store-dir={scratch / 'lmdb'}",
        f"--named-caches-dir={scratch / 'named_caches'}",
        f"--local-execution-root-dir={scratch / 'tmp'}",
    )


def remote_cache_args(address: str, write: bool) -> Tuple[str, ...]:
    """The config file at `address`; read-only as the file says, unless `write` (what CI adds)."""
    return (
        f"--pants-config-files={CONFIG}",
        f"--remote-store-address={address}",
        *(("--remote-cache-write",) if write else ()),
    )


@dataclass(frozen=True)
class Build:
    result: Result
    seconds: float
    counters: Dict[str, int]
    ran: List[str]  # descriptions of the Processes that ran (not served by a cache)
    pex_sha256: Optional[str]
    image_digest: Optional[str]

    def ran_heavy(self) -> List[str]:
        return [d for d in self.ran if any(h in d for h in HEAVY)]


def counters(stderr: str) -> Dict[str, int]:
    lines = stderr.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("Counters:"))
    except StopIteration:
        return {}
    found = {}
    for line in lines[start + 1 :]:
        match = COUNTER.match(line)
        if not match:
            break
        found[match.group(1)] = int(match.group(2))
    return found


def package(repo: Path, *args: str, timeout: int = 2400, env: Optional[Dict[str, Optional[str]]] = None) -> Build:
    """`./pants --stats-log [args] package churn`, timed, with what it printed parsed."""
    started = time.monotonic()
    result = pants(repo, "--stats-log", *args, "package", CHURN, timeout=timeout, env=env)
    seconds = time.monotonic() - started
    ran = [m.group(1).strip() for m in map(COMPLETED.search, result.stderr.splitlines()) if m]
    pex = repo / DIST / "train.pex"
    summary = repo / DIST / "train.image.json"
    return Build(
        result,
        seconds,
        counters(result.stderr),
        ran,
        pex_sha256(pex) if result.exit_code == 0 and pex.exists() else None,
        json.loads(summary.read_text())["manifest_digest"] if result.exit_code == 0 and summary.is_file() else None,
    )


def clean_dist(repo: Path) -> None:
    shutil.rmtree(repo / "dist", ignore_errors=True)
