from __future__ import annotations

import hashlib
import io

import pytest

from mlbuild.runtime.errors import DataError
from mlbuild.sagemaker.s3_data import relative_path, stream_sha256


@pytest.mark.parametrize(
    "prefix,key,expected",
    [
        ("data/train/", "data/train/part-0.csv", "part-0.csv"),
        ("data/train", "data/train/part-0.csv", "train/part-0.csv"),
        ("data/train/", "data/train/2024/01/a.csv", "2024/01/a.csv"),
        ("", "a.csv", "a.csv"),
    ],
)
def test_relative_path(prefix: str, key: str, expected: str) -> None:
    assert relative_path(prefix, key) == expected


@pytest.mark.parametrize("key", ["data/train/../../etc/passwd", "data/train//abs", "data/train/./x"])
def test_keys_cannot_escape_the_channel_folder(key: str) -> None:
    with pytest.raises(DataError, match="outside the channel folder"):
        relative_path("data/train/", key)


def test_stream_sha256_copies_and_hashes() -> None:
    sink = io.BytesIO()
    digest, size = stream_sha256([b"ab", b"", b"cde"], sink)
    assert (digest, size) == (hashlib.sha256(b"abcde").hexdigest(), 5)
    assert sink.getvalue() == b"abcde"
