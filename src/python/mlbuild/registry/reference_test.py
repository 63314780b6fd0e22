from __future__ import annotations

import pytest

from mlbuild.registry.errors import ReferenceError
from mlbuild.registry.reference import parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest",
    [
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        (f"localhost:5000/a/b/c@{D}", "localhost:5000", "a/b/c", None, D),
        (f"reg.example.com/app:1.0@{D}", "reg.example.com", "app", "1.0", D),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml/trainer",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ml/trainer",
            None,
            None,
        ),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("team/app", "docker.io", "team/app", None, None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    "text", ["", "Reg.example.com/UPPER", "host:5000/app@sha256:short", "host/app:bad tag", "host/app:" + "x" * 200]
)
def test_invalid(text: str) -> None:
    with pytest.raises(ReferenceError):
        parse_reference(text)


def test_properties() -> None:
    ecr = parse_reference("123456789012.dkr.ecr.us-east-1.amazonaws.com/x")
    assert ecr.ecr == ("123456789012", "us-east-1") and not ecr.is_loopback
    assert parse_reference("127.0.0.1:5000/x").is_loopback
    assert parse_reference("localhost:5000/x").host == "localhost"
    assert not parse_reference("registry.internal:5000/x").is_loopback
    assert str(parse_reference(f"h:1/x:t@{D}")) == f"h:1/x:t@{D}"
