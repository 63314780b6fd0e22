from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mlbuild.registry import docker_config
from mlbuild.registry.auth import Authenticator, parse_challenge
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import AuthError


def test_parse_challenge() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'
    )
    assert c is not None and c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="x"').scheme == "basic"  # type: ignore[union-attr]
    assert parse_challenge("") is None


def _write_config(tmp_path: Path, data: dict) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_docker_config_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:s3cret:with:colons").decode()
    env = _write_config(tmp_path, {"auths": {"https://reg.example.com:5000": {"auth": auth}}})
    found = docker_config.lookup("reg.example.com:5000", env)
    assert found.credentials == Credentials("alice", "s3cret:with:colons") and found.helper is None
    assert docker_config.lookup("other.io", env).credentials is None  # helpers: credential_helper_test.py
    assert docker_config.lookup("x.io", {"DOCKER_CONFIG": str(tmp_path / "none")}).credentials is None
    assert "s3cret" not in repr(found.credentials)


def test_basic_challenge() -> None:
    auth = Authenticator("reg", Credentials("u", "p"))
    auth.respond('Basic realm="r"', None, "x")
    sent = auth.header()
    assert sent == Credentials("u", "p").basic_header()
    with pytest.raises(AuthError, match="rejected the credentials"):
        auth.respond('Basic realm="r"', sent, "x")
    with pytest.raises(AuthError, match="none were found. HINT"):
        Authenticator("reg", None, no_credentials_hint="HINT").respond('Basic realm="r"', None, "x")


def test_bearer_flow_uses_basic_creds_and_scopes() -> None:
    seen: list[tuple[str, dict]] = []
    auth = Authenticator("reg", Credentials("u", "p"), scopes=("repository:a:pull,push", "repository:b:pull"))

    def fetch(url: str, headers: dict) -> tuple[int, bytes]:
        seen.append((url, headers))
        return 200, b'{"token":"T1"}'

    auth.fetch = fetch
    auth.respond('Bearer realm="https://auth/token",service="svc",scope="repository:a:pull,push"', None, "x")
    assert auth.header() == "Bearer T1"
    url, headers = seen[0]
    assert url == "https://auth/token?service=svc&scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull"
    assert headers["Authorization"].startswith("Basic ")
    with pytest.raises(AuthError, match="refused the token"):
        auth.respond('Bearer realm="https://auth/token",service="svc",scope="repository:a:pull,push"', "Bearer T1", "x")


def test_bearer_token_service_refuses() -> None:
    auth = Authenticator("reg", Credentials("u", "bad"))
    auth.fetch = lambda url, headers: (401, b"")
    with pytest.raises(AuthError, match="token service"):
        auth.respond('Bearer realm="https://auth/token"', None, "x")


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"auths": [{"reg.example.com": {"auth": "eA=="}}]}, "'auths' is a JSON list, not an object"),
        ([{"auths": {}}], "the top level is a JSON list, not an object"),
        ("auths", "the top level is a JSON str, not an object"),
        ({"credHelpers": ["ecr-login"]}, "'credHelpers' is a JSON list, not an object"),
    ],
)
def test_docker_config_of_the_wrong_shape_is_a_user_error(tmp_path: Path, data: object, fragment: str) -> None:
    env = _write_config(tmp_path, data)  # type: ignore[arg-type]
    with pytest.raises(docker_config.RegistryUserError, match=fragment) as info:
        docker_config.lookup("reg.example.com", env)
    assert str(tmp_path / "config.json") in str(info.value) and "docker login" in str(info.value)
