"""Credential helpers run as docker runs them: fake `docker-credential-*` scripts on PATH."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from mlbuild.registry import docker_config
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import RegistryUserError

SECRET = "pa55-not-for-logs"


def fake_helper(bin_dir: Path, name: str, body: str) -> Path:
    """A `docker-credential-<name>` script; it logs what it was asked to `asked.log`."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "server = sys.stdin.read()\n"
        f"open({str(bin_dir / 'asked.log')!r}, 'a').write(' '.join(sys.argv[1:]) + ' ' + server + '\\n')\n" + body
    )
    script.chmod(0o755)
    return script


def env_with(tmp_path: Path, config: dict) -> dict[str, str]:
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "PATH": str(tmp_path / "bin")}


ANSWER = "print(json.dumps({'ServerURL': server, 'Username': 'robot', 'Secret': '%s'}))\n" % SECRET


def test_cred_helpers_entry_wins_and_gets_the_host_on_stdin(tmp_path: Path) -> None:
    fake_helper(tmp_path / "bin", "fake", ANSWER)
    basic = base64.b64encode(b"file-user:file-pass").decode()
    env = env_with(
        tmp_path, {"credHelpers": {"reg.example.com:5000": "fake"}, "auths": {"reg.example.com:5000": {"auth": basic}}}
    )
    found = docker_config.lookup("reg.example.com:5000", env)
    assert found.credentials == Credentials("robot", SECRET) and found.helper == "fake"
    assert (tmp_path / "bin" / "asked.log").read_text() == "get reg.example.com:5000\n"


def test_creds_store_for_every_host_and_docker_hub_address(tmp_path: Path) -> None:
    fake_helper(tmp_path / "bin", "store", ANSWER)
    env = env_with(tmp_path, {"credsStore": "store"})
    assert docker_config.lookup("other.io", env).credentials == Credentials("robot", SECRET)
    docker_config.lookup("docker.io", env)
    assert (tmp_path / "bin" / "asked.log").read_text().splitlines() == [
        "get other.io",
        "get https://index.docker.io/v1/",
    ]


def test_a_helper_without_credentials_falls_back_to_auths_then_anonymous(tmp_path: Path) -> None:
    fake_helper(tmp_path / "bin", "empty", "print('credentials not found in native keychain'); sys.exit(1)\n")
    basic = base64.b64encode(b"file-user:file-pass").decode()
    env = env_with(tmp_path, {"credsStore": "empty", "auths": {"a.io": {"auth": basic}}})
    assert docker_config.lookup("a.io", env).credentials == Credentials("file-user", "file-pass")
    nothing = docker_config.lookup("b.io", env)
    assert nothing.credentials is None and nothing.helper == "empty"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("sys.stderr.write('keychain locked'); sys.exit(3)\n", "exited with status 3"),
        (f"print('Username={SECRET}')\n", "not the credential JSON"),
        ("print(json.dumps({'Username': 'u'}))\n", "not the credential JSON"),
        ("print(json.dumps({'Username': 7, 'Secret': 's'}))\n", "not the credential JSON"),
        (f"print(json.dumps({{'Username': '<token>', 'Secret': '{SECRET}'}}))\n", "identity token"),
    ],
    ids=["non-zero", "garbage", "missing-secret", "wrong-type", "identity-token"],
)
def test_a_broken_helper_is_a_clear_error_that_leaks_nothing(tmp_path: Path, body: str, expected: str) -> None:
    fake_helper(tmp_path / "bin", "broken", body)
    env = env_with(tmp_path, {"credHelpers": {"r.io": "broken"}})
    with pytest.raises(RegistryUserError, match=expected) as raised:
        docker_config.lookup("r.io", env)
    message = str(raised.value)
    assert (
        "docker-credential-broken" in message
        and "Fix:" in message
        and str(tmp_path / "docker" / "config.json") in message
    )
    assert SECRET not in message


def test_a_helper_missing_from_path_names_it_and_the_config(tmp_path: Path) -> None:
    env = env_with(tmp_path, {"credHelpers": {"r.io": "nowhere"}})
    with pytest.raises(RegistryUserError, match="no 'docker-credential-nowhere' is on PATH") as raised:
        docker_config.lookup("r.io", env)
    assert "config.json" in str(raised.value)
    assert docker_config.lookup("unrelated.io", env).credentials is None  # a helper for another host is not run


def test_a_helper_name_that_is_not_a_string(tmp_path: Path) -> None:
    with pytest.raises(RegistryUserError, match="not a name"):
        docker_config.lookup("r.io", env_with(tmp_path, {"credsStore": ["x"]}))
