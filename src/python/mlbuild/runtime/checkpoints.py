"""Checkpoints: save them so a restarted job (a spot interruption, a kill) resumes instead of starting over.

SageMaker syncs `/opt/ml/checkpoints` (`ctx.checkpoints_dir`) to the job's `checkpoint_s3_uri`
while it runs and copies it back before a restarted or re-submitted job starts; the local runs
keep that folder per job (pipeline + hyperparameters) under the runs folder, so a re-run of the
same job finds it. These helpers give checkpoint files names that sort by step, write them
atomically (a kill mid-write leaves no half checkpoint that looks complete), and find the newest:

    start = 0
    found = checkpoints.latest(ctx.checkpoints_dir)
    if found:
        start, path = found.step, found.path
        model = load(path)
    for step in range(start, total):
        ...
        checkpoints.save(ctx.checkpoints_dir, step + 1, model_bytes)

Every host of a multi-host job sees the same folder (SageMaker copies the whole S3 prefix to
each host): pass `host=ctx.current_host` to keep hosts' files apart.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from mlbuild.atomic_write import write_durably

PREFIX = "checkpoint-"
_NAME = re.compile(r"^checkpoint-(?:(?P<host>[A-Za-z0-9_.\-]+)-)?(?P<step>\d{1,18})(?P<suffix>\.[A-Za-z0-9_.\-]+)?$")
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    host: Optional[str] = None


def name(step: int, suffix: str = ".bin", host: Optional[str] = None) -> str:
    """`checkpoint-000000042.bin` (`checkpoint-algo-2-000000042.bin` with a host)."""
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    if suffix and not suffix.startswith("."):
        raise ValueError(f"checkpoint suffix must start with '.', got {suffix!r}")
    if host is not None and not _HOST.match(host):
        raise ValueError(f"checkpoint host {host!r}: use letters, digits, '.', '-' and '_'")
    return f"{PREFIX}{host + '-' if host else ''}{step:09d}{suffix}"


def save(directory: Path, step: int, data: bytes, suffix: str = ".bin", host: Optional[str] = None) -> Path:
    """Write a checkpoint atomically (temp file, fsync, rename); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_durably(directory / name(step, suffix, host), data, prefix=".partial-")


def all_checkpoints(directory: Path, host: Optional[str] = None) -> List[Checkpoint]:
    """The complete checkpoints in `directory` (of `host`, when given), oldest step first."""
    try:
        entries = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        match = _NAME.match(entry)
        if not match or match.group("host") != host or not (Path(directory) / entry).is_file():
            continue
        found.append(Checkpoint(int(match.group("step")), Path(directory) / entry, match.group("host")))
    return sorted(found, key=lambda c: (c.step, c.path.name))


def latest(directory: Path, host: Optional[str] = None) -> Optional[Checkpoint]:
    """The checkpoint with the highest step, or None when training has to start from scratch."""
    found = all_checkpoints(directory, host)
    return found[-1] if found else None


def prune(directory: Path, keep: int = 2, host: Optional[str] = None) -> List[Path]:
    """Delete all but the newest `keep` checkpoints; returns what was deleted."""
    if keep < 1:
        raise ValueError("keep at least one checkpoint")
    old = all_checkpoints(directory, host)[:-keep]
    for c in old:
        c.path.unlink(missing_ok=True)
    return [c.path for c in old]
