"""A multi-host run's record names its instance count and each host's data shards."""

import json
from pathlib import Path

from mlbuild.lineage.collect import run_record
from mlbuild.lineage.record import Record
from mlbuild.names import HOSTS_RECORD


def _run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "runs" / "20261130T100000Z-abcd1234"
    (run_dir / "input" / "config").mkdir(parents=True)
    (run_dir / "model").mkdir()
    (run_dir / "model" / "model.txt").write_text("trees")
    return run_dir


def test_a_multi_host_run_records_its_hosts_and_shards(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    hosts = {
        "instance_count": 2,
        "hosts": [
            {
                "host": "algo-1",
                "address": "127.0.1.1",
                "leader": True,
                "channels": {"train": {"distribution": "ShardedByS3Key", "keys": ["part-0.csv", "part-2.csv"]}},
            },
            {
                "host": "algo-2",
                "address": "127.0.1.2",
                "leader": False,
                "channels": {"train": {"distribution": "ShardedByS3Key", "keys": ["part-1.csv", "part-3.csv"]}},
            },
        ],
    }
    (run_dir / HOSTS_RECORD).parent.mkdir(parents=True)
    (run_dir / HOSTS_RECORD).write_text(json.dumps(hosts))
    record = run_record(run_dir, "src/python/pipelines/lightgbm_dist:train")
    assert record.get("extra.instance_count") == 2
    assert [h["channels"]["train"]["keys"] for h in record.get("extra.hosts")] == [
        ["part-0.csv", "part-2.csv"],
        ["part-1.csv", "part-3.csv"],
    ]
    assert Record.from_stored(record.canonical).id == record.id  # the store takes it as it is


def test_a_one_host_run_has_no_hosts_entry(tmp_path: Path) -> None:
    record = run_record(_run_dir(tmp_path), "p:train")
    assert record.get("extra.instance_count") is None and record.get("extra.hosts") is None
