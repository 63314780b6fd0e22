"""Pulling channels from a moto S3 into local folders with a checksum manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlbuild.runtime.errors import ConfigError
from mlbuild.sagemaker.aws import Clients
from mlbuild.sagemaker.conftest import make_config
from mlbuild.sagemaker.s3_data import listing_checksum, pull_channel, pull_config


@pytest.fixture
def s3(aws: str):
    client = Clients.create().s3
    client.create_bucket(Bucket="demo-bucket")
    for key, body in {
        "demo/data/train/part-0.csv": b"a,b\n1,2\n",
        "demo/data/train/nested/part-1.csv": b"a,b\n3,4\n",
        "demo/data/train/": b"",  # a console "folder" marker
        "demo/data/validation/v.csv": b"a,b\n5,6\n",
        "demo/data/trainer/not-this.csv": b"other prefix",
    }.items():
        client.put_object(Bucket="demo-bucket", Key=key, Body=body)
    return client


def test_pull_twice_downloads_once(s3, tmp_path: Path) -> None:
    source = "s3://demo-bucket/demo/data/train/"
    first = pull_channel(s3, source, tmp_path / "train")
    assert sorted(first.downloaded) == ["nested/part-1.csv", "part-0.csv"]
    assert (tmp_path / "train/nested/part-1.csv").read_bytes() == b"a,b\n3,4\n"
    manifest = json.loads((tmp_path / "train.manifest.json").read_text())
    assert manifest["source"] == source
    entry = manifest["files"]["part-0.csv"]
    assert entry["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert entry["size"] == 8 and entry["key"] == "demo/data/train/part-0.csv" and entry["etag"]

    second = pull_channel(s3, source, tmp_path / "train")
    assert second.downloaded == [] and sorted(second.skipped) == ["nested/part-1.csv", "part-0.csv"]
    assert second.bytes_downloaded == 0

    # A changed object, a locally edited file and a deleted object are all noticed.
    s3.put_object(Bucket="demo-bucket", Key="demo/data/train/part-0.csv", Body=b"a,b\n9,9\n")
    s3.delete_object(Bucket="demo-bucket", Key="demo/data/train/nested/part-1.csv")
    third = pull_channel(s3, source, tmp_path / "train")
    assert third.downloaded == ["part-0.csv"] and third.removed == ["nested/part-1.csv"]
    assert not (tmp_path / "train/nested/part-1.csv").exists()
    (tmp_path / "train/part-0.csv").write_bytes(b"a,b\n9,0\n")  # same size, other bytes
    assert pull_channel(s3, source, tmp_path / "train").downloaded == ["part-0.csv"]
    assert (tmp_path / "train/part-0.csv").read_bytes() == b"a,b\n9,9\n"
    assert not list(tmp_path.rglob("*.part"))


def test_pull_config_lays_out_every_channel(s3, tmp_path: Path) -> None:
    results = pull_config(s3, make_config(), tmp_path / "data")
    assert [r.channel for r in results] == ["train", "validation"]
    assert (tmp_path / "data/validation/v.csv").exists()
    assert (tmp_path / "data/validation.manifest.json").exists()
    assert not (tmp_path / "data/train/not-this.csv").exists()
    only = pull_config(s3, make_config(), tmp_path / "data", ["validation"])
    assert [r.channel for r in only] == ["validation"] and only[0].downloaded == []
    with pytest.raises(ConfigError, match="no channel 'test'"):
        pull_config(s3, make_config(), tmp_path / "data", ["test"])


def test_listing_checksum_pins_the_channel_without_reading_it(s3) -> None:
    source = "s3://demo-bucket/demo/data/train/"
    first = listing_checksum(s3, source)
    assert first.startswith("sha256:") and listing_checksum(s3, source) == first
    assert listing_checksum(s3, "s3://demo-bucket/demo/data/validation/") != first
    s3.put_object(Bucket="demo-bucket", Key="demo/data/train/part-0.csv", Body=b"a,b\n9,9\n")  # same size
    changed = listing_checksum(s3, source)
    assert changed != first
    s3.put_object(Bucket="demo-bucket", Key="demo/data/train/extra.csv", Body=b"")
    assert listing_checksum(s3, source) != changed
