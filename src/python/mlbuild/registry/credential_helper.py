"""Docker credential helpers: `docker-credential-<name> get`, the protocol docker runs.

The helper reads the registry's server address on stdin and prints
`{"ServerURL": ..., "Username": ..., "Secret": ...}` on stdout, exit 0. When it holds no
credentials for that address it exits non-zero and prints "credentials not found" (the
message docker-credential-helpers' `credentials.errCredentialsNotFound` defines): that means
anonymous access, not an error. A Username of `<token>` means Secret is an OAuth2 identity
token, which needs a token exchange mlbuild does not do: refused with a clear error.
https://github.com/docker/docker-credential-helpers (client/client.go, credentials/error.go)

Nothing the helper prints is ever echoed back in an error: it may hold a secret.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

from mlbuild.registry.errors import RegistryUserError

PROGRAM_PREFIX = "docker-credential-"
NOT_FOUND_MESSAGE = "credentials not found"
IDENTITY_TOKEN_USERNAME = "<token>"
TIMEOUT_SECONDS = 60.0


def get(helper: str, server: str, config: Path, env: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """(username, secret) the helper holds for `server`, None when it holds none."""
    program = PROGRAM_PREFIX + helper
    where = f"{config} names the credential helper '{program}' for {server}"
    executable = shutil.which(program, path=env.get("PATH", os.defpath))
    if executable is None:
        raise RegistryUserError(
            f"{where}, but no '{program}' is on PATH ({env.get('PATH', '')}). "
            f"Fix: install it or put its folder on PATH, or remove the helper from {config}."
        )
    try:
        done = subprocess.run(
            [executable, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            env=dict(env),
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RegistryUserError(
            f"{where}; it did not answer within {TIMEOUT_SECONDS:.0f} s. Fix: run `echo {server} | {program} get` to see why."
        ) from e
    except OSError as e:
        raise RegistryUserError(
            f"{where}; it could not be started ({e.strerror}). Fix: check that {executable} is an executable program."
        ) from e
    if done.returncode != 0:
        if NOT_FOUND_MESSAGE in (done.stdout + done.stderr).decode(errors="replace").lower():
            return None
        raise RegistryUserError(
            f"{where}; it exited with status {done.returncode}. "
            f"Fix: run `echo {server} | {program} get` to see its error (log in again with `docker login {server}`)."
        )
    try:
        answer = json.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError("Username and Secret must be strings")
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryUserError(
            f"{where}; what it printed is not the credential JSON "
            f'({{"ServerURL": ..., "Username": ..., "Secret": ...}}: {type(e).__name__}). '
            f"Fix: check the helper with `echo {server} | {program} get`."
        ) from None
    if username == IDENTITY_TOKEN_USERNAME:
        raise RegistryUserError(
            f"{where}; it returned an OAuth2 identity token, which mlbuild does not exchange. "
            f"Fix: store a username and password (or an access token as the password) for {server}."
        )
    return username, secret
