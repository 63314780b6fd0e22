from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.runtime import sharding
from mlbuild.runtime.errors import DataError


def _channel(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    return tmp_path


def test_shards_are_disjoint_cover_and_deterministic(tmp_path: Path) -> None:
    keys = [f"part-{i:03d}.csv" for i in range(10)] + ["sub/a.csv", "B.csv"]
    channel = _channel(tmp_path, keys)
    plan = sharding.plan_shards("train", channel, sharding.SHARDED_BY_S3_KEY, 3, "p.yaml")
    assert sorted(k for share in plan.values() for k in share) == sorted(keys)
    assert sum(len(share) for share in plan.values()) == len(keys)
    assert [len(plan[i]) for i in range(3)] == [4, 4, 4]
    # S3 order: by UTF-8 bytes, so 'B.csv' sorts before 'part-...'; key k goes to host k mod 3.
    assert plan[0][:2] == ["B.csv", "part-002.csv"]
    assert plan == sharding.plan_shards("train", channel, sharding.SHARDED_BY_S3_KEY, 3, "p.yaml")


def test_fully_replicated_gives_everything(tmp_path: Path) -> None:
    channel = _channel(tmp_path, ["a", "b"])
    assert sharding.plan_shards("train", channel, sharding.FULLY_REPLICATED, 3, "p.yaml") == {
        i: ["a", "b"] for i in range(3)
    }


def test_more_hosts_than_objects_is_an_error(tmp_path: Path) -> None:
    channel = _channel(tmp_path, ["only.csv"])
    with pytest.raises(
        DataError,
        match=r"p.yaml: `channels.train.distribution` is ShardedByS3Key over 1 object\(s\), but `sagemaker.instance_count` is 2.*Fix",
    ):
        sharding.plan_shards("train", channel, sharding.SHARDED_BY_S3_KEY, 2, "p.yaml")


def test_shard_keys_checks_the_index() -> None:
    with pytest.raises(ValueError):
        sharding.shard_keys(["a"], 2, 2)
