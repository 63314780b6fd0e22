"""When mlbuild may talk plain HTTP to a registry, and the rule that credentials never go over it.

Plain HTTP is used for loopback registries (127.0.0.0/8, ::1, localhost), and for hosts the
user lists, comma-separated, in $MLBUILD_INSECURE_REGISTRIES (like Docker's daemon option
`insecure-registries`) or names with the registry CLI's `--allow-insecure-http`. A caller's
`allow_insecure_http=True` alone is not enough for another host: it only turns the silent
switch to HTTPS into a clear refusal. Over plain HTTP to a non-loopback host no Authorization
header is ever sent (not on a request, a redirect, nor to a token service): a registry that
asks for credentials there gets a refusal that says to serve TLS.
"""

from __future__ import annotations

import urllib.parse
from typing import Mapping

from mlbuild.names import INSECURE_REGISTRIES_ENV
from mlbuild.registry.errors import RegistryUserError
from mlbuild.registry.reference import Reference, is_loopback_host


def insecure_registries(env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(h.strip() for h in env.get(INSECURE_REGISTRIES_ENV, "").split(",") if h.strip())


def with_insecure(env: Mapping[str, str], registry: str) -> dict[str, str]:
    """`env` with `registry` added to the insecure list: what an explicit user flag means."""
    return {**env, INSECURE_REGISTRIES_ENV: ",".join(sorted(insecure_registries(env) | {registry}))}


def choose_scheme(ref: Reference, allow_insecure_http: bool, insecure: frozenset[str]) -> str:
    """'http' or 'https' for `ref`; raises when the caller wants HTTP to a host nobody listed."""
    if ref.is_loopback or ref.registry in insecure:
        return "http"
    if allow_insecure_http:
        raise RegistryUserError(
            f"registry {ref.registry}: plain HTTP to a non-loopback host is refused. Fix: serve the registry over"
            f" TLS, or list it in ${INSECURE_REGISTRIES_ENV} (e.g. {INSECURE_REGISTRIES_ENV}={ref.registry}; even then"
            " mlbuild sends no credentials over plain HTTP)."
        )
    return "https"


def is_cleartext(url: str) -> bool:
    """True for a plain-HTTP URL to a host off this machine: nothing secret may go there."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower() != "https" and not is_loopback_host(parts.hostname or "")


def cleartext_refusal(where: str, url: str) -> RegistryUserError:
    host = urllib.parse.urlsplit(url).netloc
    return RegistryUserError(
        f"{where}: {host} asks for credentials over plain HTTP; mlbuild never sends credentials in clear to a"
        " non-loopback host. Fix: serve the registry over TLS (https)."
    )
