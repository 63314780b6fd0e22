"""`ShardedByS3Key`: each host gets a disjoint, deterministic share of a channel's objects.

SageMaker's rule, as documented: with `S3DataDistributionType: ShardedByS3Key` each of the N
instances receives about 1/N of the objects under the channel's prefix, every object goes to
exactly one instance, and each instance sees its share under the same channel path. Which
object goes where is not documented. mlbuild's local rule, applied to the sample files the
same way it would be to S3 keys: sort the keys (paths relative to the channel, `/`-separated,
by their UTF-8 bytes, as S3 lists them), and give key number k to host number k mod N in
the sorted host list (algo-1 gets keys 0, N, 2N, ...). A script must therefore not depend on
*which* files a host gets, only that the shares are disjoint and cover the channel.

`FullyReplicated` (the default) gives every host every object.

Fewer objects than hosts is an error here (SageMaker would start hosts with an empty channel,
which almost always means a forgotten split): the message names the channel and the counts.

Model output (documented in docs/guides/running.md): SageMaker tars each host's `/opt/ml/model` into the
same `model.tar.gz`; mlbuild's multi-host run merges the hosts' model folders the same way and
fails when two hosts wrote the same file with different bytes. Write the model on the leader
(`ctx.is_leader`) only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

from mlbuild.runtime.errors import DataError

FULLY_REPLICATED = "FullyReplicated"
SHARDED_BY_S3_KEY = "ShardedByS3Key"


def object_keys(channel_dir: Path) -> List[str]:
    """Every file under `channel_dir` as an S3-style key (relative, `/`-separated), in S3 list order."""
    keys = []
    for root, dirs, files in os.walk(channel_dir, followlinks=True):
        dirs.sort()
        for name in files:
            keys.append(Path(root, name).relative_to(channel_dir).as_posix())
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def shard_keys(keys: Sequence[str], host_index: int, host_count: int) -> List[str]:
    """The keys host number `host_index` (0-based, in sorted host order) gets out of `host_count`."""
    if not 0 <= host_index < host_count:
        raise ValueError(f"host index {host_index} outside 0..{host_count - 1}")
    ordered = sorted(keys, key=lambda k: k.encode("utf-8"))
    return ordered[host_index::host_count]


def check_shardable(channel: str, key_count: int, host_count: int, source: str) -> None:
    """`instance_count` hosts need at least one object each of a ShardedByS3Key channel."""
    if key_count < host_count:
        raise DataError(
            f"{source}: `channels.{channel}.distribution` is {SHARDED_BY_S3_KEY} over {key_count} object(s), "
            f"but `sagemaker.instance_count` is {host_count}: a host would get no data. Fix: split the channel into "
            f"at least {host_count} files, lower `instance_count`, or use `distribution: {FULLY_REPLICATED}`."
        )


def plan_shards(
    channel: str, channel_dir: Path, distribution: str, host_count: int, source: str
) -> Dict[int, List[str]]:
    """host index -> the keys it gets of this channel (every key for FullyReplicated)."""
    keys = object_keys(channel_dir)
    if distribution != SHARDED_BY_S3_KEY:
        return {i: list(keys) for i in range(host_count)}
    check_shardable(channel, len(keys), host_count, source)
    return {i: shard_keys(keys, i, host_count) for i in range(host_count)}
