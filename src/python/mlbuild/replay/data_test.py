from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.lineage.digests import tree_checksum
from mlbuild.replay.data import job_data_dirs, link_data_dir
from mlbuild.runtime.config import parse_config
from mlbuild.runtime.errors import UserError


def make(tmp_path: Path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "train" / "a.csv").write_text("1\n")
    return {"train": tmp_path / "d" / "train"}, {"train": tree_checksum(tmp_path / "d" / "train")}


def test_unchanged_data_is_used(tmp_path: Path) -> None:
    dirs, pins = make(tmp_path)
    assert job_data_dirs("j", dirs, pins) == {"train": (tmp_path / "d" / "train").resolve()}


def test_changed_data_is_refused_naming_the_channel(tmp_path: Path) -> None:
    dirs, pins = make(tmp_path)
    (tmp_path / "d" / "train" / "a.csv").write_text("2\n")
    with pytest.raises(UserError, match=r"job j: the data changed since the job ran: train \(.*--sample-data DIR"):
        job_data_dirs("j", dirs, pins)


def test_gone_data_is_refused(tmp_path: Path) -> None:
    _, pins = make(tmp_path)
    with pytest.raises(UserError, match="channel 'train': its data .*missing.* is gone"):
        job_data_dirs("j", {"train": tmp_path / "missing"}, pins)


def test_link_data_dir_uses_the_configs_local_names(tmp_path: Path) -> None:
    dirs, _ = make(tmp_path)
    config = parse_config("hyperparameters: {}\nchannels:\n  train: {local: folder/tr}\n", "p.yaml")
    out = link_data_dir(config, dirs, tmp_path / "work")
    assert (out / "folder" / "tr" / "a.csv").read_text() == "1\n"
    link_data_dir(config, dirs, tmp_path / "work")  # NB: a second replay replaces the links
    with pytest.raises(UserError, match="channels validation have no data in the job"):
        link_data_dir(parse_config("channels:\n  train: {}\n  validation: {}\n", "p.yaml"), dirs, tmp_path / "w2")
