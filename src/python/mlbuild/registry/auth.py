"""Answering a registry's `WWW-Authenticate` challenge: Basic, or Bearer via a token service.

Flow: https://distribution.github.io/distribution/spec/auth/token/ — a 401 names a realm,
service and scope; we GET `realm?service=..&scope=..` (with Basic credentials when we have
them) and retry with `Authorization: Bearer <token>`. Tokens are cached per scope set.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import AuthError, RegistryPlatformError

# (url, headers) -> (status, body)
TokenFetch = Callable[[str, dict], tuple]
_PARAM_RE = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # 'basic' | 'bearer' (lowercased)
    params: dict = field(default_factory=dict)


def parse_challenge(header: str | None) -> Challenge | None:
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


class Authenticator:
    """Holds the Authorization header for one registry; thread-safe."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None,
        *,
        scopes: tuple[str, ...] = (),
        preemptive_basic: bool = False,
        no_credentials_hint: str = "",
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self.scopes = tuple(dict.fromkeys(scopes))
        self.hint = no_credentials_hint
        self._lock = threading.Lock()
        self._header = credentials.basic_header() if credentials and preemptive_basic else None
        self._tokens: dict[tuple, str] = {}
        self.fetch: TokenFetch | None = None  # set by the transport that owns the connection pool

    def header(self) -> str | None:
        with self._lock:
            return self._header

    def respond(self, www_authenticate: str | None, sent: str | None, where: str) -> None:
        """Update the header after a 401 to a request that carried `sent`; raise AuthError if hopeless."""
        challenge = parse_challenge(www_authenticate)
        with self._lock:
            if self._header != sent:  # NB: another thread already answered this challenge
                return
            if challenge is None or challenge.scheme == "basic":
                if self.credentials is None:
                    raise AuthError(
                        f"{where}: the registry {self.registry} wants credentials and none were found. {self.hint}"
                    )
                new = self.credentials.basic_header()
                if sent == new:
                    raise AuthError(
                        f"{where}: the registry {self.registry} rejected the credentials for user"
                        f" {self.credentials.username!r}; check them (docker login {self.registry}). {self.hint}"
                    )
                self._header = new
            elif challenge.scheme == "bearer":
                self._header = self._bearer(challenge, sent, where)
            else:
                raise AuthError(f"{where}: unsupported auth scheme {challenge.scheme!r} from {self.registry}.")

    def _bearer(self, challenge: Challenge, sent: str | None, where: str) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryPlatformError(f"{where}: {self.registry} sent a Bearer challenge without a realm.")
        scopes = tuple(dict.fromkeys([*self.scopes, *challenge.params.get("scope", "").split()]))
        key = (realm, challenge.params.get("service"), scopes)
        if key in self._tokens and self._tokens[key] != sent:
            return self._tokens[key]
        if key in self._tokens:
            who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
            raise AuthError(
                f"{where}: {self.registry} refused the token for {' '.join(scopes)} ({who}); check permissions. {self.hint}"
            )
        query = [("service", challenge.params["service"])] if challenge.params.get("service") else []
        query += [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"Authorization": self.credentials.basic_header()} if self.credentials else {}
        assert self.fetch is not None, "Authenticator.fetch is set by Transport"
        status, body = self.fetch(url, headers)
        if status in (401, 403):
            raise AuthError(
                f"{where}: the token service {realm} refused the credentials for {self.registry}. {self.hint}"
            )
        if status != 200:
            raise RegistryPlatformError(f"{where}: token service {realm} answered HTTP {status}.")
        try:
            data = json.loads(body)
            token = data.get("token") or data["access_token"]
        except (ValueError, KeyError, AttributeError) as e:
            raise RegistryPlatformError(f"{where}: token service {realm} sent no token ({e!r}).") from e
        self._tokens[key] = f"Bearer {token}"
        return self._tokens[key]
