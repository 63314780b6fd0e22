from __future__ import annotations

import re

import pytest

from mlbuild.sagemaker import tags

# SageMaker's documented tag value pattern, with \p{L}\p{Z}\p{N} narrowed to ASCII here.
_ALLOWED = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]*$")


@pytest.mark.parametrize(
    "value",
    [
        "src/python/pipelines/churn:train",
        "src/python/x:y#generated",
        "a+b",
        "100% (x)",
        "naïve façade",
        "tab\there",
        "sha256:" + "0" * 64,
    ],
)
def test_values_round_trip_within_the_charset(value: str) -> None:
    encoded = tags.encode_value(value)
    assert len(encoded) <= tags.MAX_VALUE
    assert tags.decode_value(encoded) == value
    if value.isascii():
        assert _ALLOWED.match(encoded), encoded


def test_common_values_are_stored_verbatim() -> None:
    assert tags.encode_value("src/python/pipelines/churn:train") == "src/python/pipelines/churn:train"
    assert tags.encode_value("//src:train#gpu") == "//src:train+23gpu"


def test_long_values_are_truncated_with_a_hash() -> None:
    long = "src/" + "a" * 400
    encoded = tags.encode_value(long)
    assert len(encoded) == tags.MAX_VALUE
    assert encoded.startswith("src/aaa")
    assert re.search(r"=[0-9a-f]{16}$", encoded)
    assert tags.encode_value(long + "b") != encoded


def test_provenance_tags() -> None:
    result = tags.provenance_tags("a/b:c", "abc1234", "f" * 64, "sha256:" + "1" * 64)
    assert [t["Key"] for t in result] == [tags.PIPELINE_ADDRESS, tags.GIT_SHA, tags.PEX_SHA256, tags.IMAGE_DIGEST]
    assert all(len(t["Key"]) <= tags.MAX_KEY and not t["Key"].startswith("aws:") for t in result)
