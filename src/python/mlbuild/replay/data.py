"""The job's data, checked against what the job pinned, laid out as the runner's data folder.

The container runner takes a sample-data folder with one subfolder per channel (named by
the config's `channels.<name>.local`); a replay builds such a folder of links to the job's
own data, after checking each channel's checksum against the job's pin, so changed data
is reported, never silently used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping

from mlbuild.lineage.digests import tree_checksum
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import UserError

SAMPLE_DATA_FIX = "or replay on other data with --sample-data DIR (the verdict then says the data differ)"


def job_data_dirs(job_name: str, dirs: Mapping[str, Path], pins: Mapping[str, str]) -> Dict[str, Path]:
    """Each channel's folder, resolved, after checking it still has the checksum the job pinned."""
    checked: Dict[str, Path] = {}
    changed: List[str] = []
    for channel in sorted(pins):
        link = dirs.get(channel)
        if link is None or not Path(link).exists():
            raise UserError(
                f"job {job_name}: channel {channel!r}: its data {link or '(not recorded)'} is gone. "
                f"Fix: restore it, {SAMPLE_DATA_FIX}."
            )
        path = Path(link).resolve()
        now = tree_checksum(path)
        if now != pins[channel]:
            changed.append(f"{channel} ({path}: {now[:19]}…, the job had {pins[channel][:19]}…)")
        checked[channel] = path
    if changed:
        raise UserError(
            f"job {job_name}: the data changed since the job ran: {'; '.join(changed)}. "
            f"Fix: restore the job's data, {SAMPLE_DATA_FIX}."
        )
    return checked


def data_checksums(config: PipelineConfig, data_dir: Path) -> Dict[str, str]:
    """Each channel's checksum in a sample-data folder (what the replay trained on)."""
    return {
        c.name: tree_checksum(Path(data_dir) / c.local) for c in config.channels if (Path(data_dir) / c.local).exists()
    }


def link_data_dir(config: PipelineConfig, channels: Mapping[str, Path], data_dir: Path) -> Path:
    """`data_dir/<channel.local>` -> each channel's folder: the runner's sample-data folder."""
    missing = [c.name for c in config.channels if c.name not in channels]
    if missing:
        raise UserError(
            f"{config.source}: channels {', '.join(missing)} have no data in the job. "
            f"Fix: {SAMPLE_DATA_FIX.replace('or ', '', 1)}."
        )
    for channel in config.channels:
        link = Path(data_dir) / channel.local
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(channels[channel.name], link, target_is_directory=True)
    return Path(data_dir)
