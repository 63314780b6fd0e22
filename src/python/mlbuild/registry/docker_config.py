"""Registry credentials from Docker's config.json (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).

Docker's order: a helper named for the host in `credHelpers`, else the `credsStore` helper,
run as `docker-credential-<name> get` (credential_helper.py); when the helper holds nothing
for the host, the `auths.<host>` entry (base64 'user:password' `auth`, or `username`/
`password`). ECR hosts never get here: ecr.py asks ECR for a token. `identitytoken` (OAuth2
refresh tokens) is not supported. https://github.com/docker/cli/blob/v24.0.0/cli/config/configfile/file.go
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from mlbuild.registry import credential_helper
from mlbuild.registry.errors import RegistryUserError

_SHAPE = 'write it as {"auths": {"registry.example.com:5000": {"auth": "<base64 user:password>"}}} (docker login does).'


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def __repr__(self) -> str:  # NB: never print a secret
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class ConfigLookup:
    credentials: Credentials | None
    path: Path
    helper: str | None = None  # the credential helper configured for this host (run; it may hold nothing)


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path(env.get("HOME", str(Path.home()))) / ".docker" / "config.json"


def _host_of(key: str) -> str:
    # NB: keys may be 'host:port', 'https://host' or 'https://index.docker.io/v1/'.
    key = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if key in ("index.docker.io", "registry-1.docker.io") else key


def _server_address(host: str) -> str:
    """The address docker hands a helper: Docker Hub's legacy index URL, else the host."""
    return "https://index.docker.io/v1/" if host == "docker.io" else host


def lookup(registry: str, env: Mapping[str, str] = os.environ) -> ConfigLookup:
    path = config_path(env)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return ConfigLookup(None, path)
    except (OSError, ValueError) as e:
        raise RegistryUserError(f"{path}: cannot read Docker config ({e}); fix or remove the file.") from e
    if not isinstance(data, dict):
        raise RegistryUserError(f"{path}: the top level is a JSON {type(data).__name__}, not an object. Fix: {_SHAPE}")
    for name in ("auths", "credHelpers"):
        if not isinstance(data.get(name) or {}, dict):
            raise RegistryUserError(
                f"{path}: '{name}' is a JSON {type(data[name]).__name__}, not an object. Fix: {_SHAPE}"
            )
    want = _host_of(registry)
    helpers = {_host_of(key): name for key, name in (data.get("credHelpers") or {}).items()}
    helper = helpers.get(want) or data.get("credsStore")
    if helper is not None:
        if not isinstance(helper, str) or not helper:
            raise RegistryUserError(
                f'{path}: the credential helper for {want} is {helper!r}, not a name. Fix: e.g. "credHelpers": {{"{want}": "pass"}}.'
            )
        found = credential_helper.get(helper, _server_address(want), path, env)
        if found is not None:
            return ConfigLookup(Credentials(*found), path, helper)
    for key, entry in (data.get("auths") or {}).items():
        if _host_of(key) != want or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise RegistryUserError(f"{path}: auths.{key}.auth is not base64 'user:password' ({e}).") from e
            return ConfigLookup(Credentials(user, password), path, helper)
        if entry.get("username"):
            return ConfigLookup(Credentials(entry["username"], entry.get("password", "")), path, helper)
    return ConfigLookup(None, path, helper)
