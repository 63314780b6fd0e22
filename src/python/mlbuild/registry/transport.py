"""HTTP to one registry: scheme choice, auth challenges, redirects, retries. Built on urllib3.

NB: urllib3 (a dependency of botocore, already in the lockfile) instead of requests:
it streams a file-like request body in fixed blocks, and no new dependency is needed.
HTTPS verifies against the system CA bundle (urllib3 2 loads the default certs, which
honour $SSL_CERT_FILE); plain HTTP only as plain_http.py allows, and never with credentials
to a host off this machine.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable, TypeVar

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from mlbuild.registry import plain_http, quirks
from mlbuild.registry.auth import Authenticator
from mlbuild.registry.errors import RegistryPlatformError, RegistryUserError, TransientError
from mlbuild.registry.progress import ProgressReader
from mlbuild.registry.reference import Reference
from mlbuild.registry.responses import Response, error_for
from mlbuild.registry.retry import RetryPolicy, is_retryable_status, parse_retry_after

T = TypeVar("T")
BLOCK_SIZE = 1 << 20  # NB: urllib3's 16 KiB default send block costs ~2x CPU on big layers
_REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "mlbuild-registry/1"
# NB: bodies that are buffered (manifests, API answers, errors) are capped; distribution
# refuses manifests over 4 MiB. Blobs never buffer: they stream through a sink.
MAX_BUFFERED_BODY = 8 * 1024 * 1024
# NB: urllib3 clones a Timeout before it starts a clock on it, so one instance serves every Transport.
DEFAULT_TIMEOUT = urllib3.Timeout(connect=15, read=300)


class Transport:
    def __init__(
        self,
        ref: Reference,
        auth: Authenticator,
        *,
        retry: RetryPolicy = RetryPolicy(),
        allow_insecure_http: bool = False,
        insecure_registries: frozenset[str] = frozenset(),
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        pool_size: int = 4,
    ) -> None:
        self.ref = ref
        self.auth = auth
        self.retry = retry
        self.timeout = timeout
        self.scheme = plain_http.choose_scheme(ref, allow_insecure_http, insecure_registries)
        self.base = f"{self.scheme}://{quirks.api_host(ref)}"
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=pool_size, cert_reqs="CERT_REQUIRED", blocksize=BLOCK_SIZE)
        auth.fetch = self._fetch_token

    def url(self, path: str) -> str:
        return self.base + path

    def request(
        self,
        method: str,
        url: str,
        *,
        where: str,
        ok: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        body: bytes | BinaryIO | ProgressReader | None = None,
        retry: bool = True,
        sink: Callable[[urllib3.BaseHTTPResponse], T] | None = None,
    ) -> Response:
        """One request, retried (if `retry`) on transient failures; raises unless the status is in `ok`.

        `sink`, when given, consumes a 200 body as a stream (e.g. into a file) instead of buffering it;
        on a retry it is called again with a fresh response. File-like bodies cannot be resent, so
        requests with them must pass retry=False and retry the whole step themselves.
        """
        ok = tuple(ok)

        def attempt(_: int) -> Response:
            resp = self._send(method, url, headers or {}, body, where, sink)
            if resp.status not in ok:
                raise error_for(resp, where)
            return resp

        return self.retry.run(where, attempt) if retry else attempt(1)

    def _send(self, method, url, headers, body, where, sink) -> Response:
        cleartext = plain_http.is_cleartext(url)
        for _ in range(3):  # NB: a Bearer challenge may need a second token with a wider scope
            sent = None if cleartext else self.auth.header()
            raw = self._open(method, url, {**headers, **({"Authorization": sent} if sent else {})}, body, where)
            if raw.status != 401:
                break
            raw.drain_conn()
            raw.release_conn()
            if cleartext:
                raise plain_http.cleartext_refusal(where, url)
            self.auth.respond(raw.headers.get("WWW-Authenticate"), sent, where)
            if body is not None and not isinstance(body, bytes):
                raise TransientError(f"{where}: re-authenticated; restarting the upload")
        else:
            raise error_for(Response(401, raw.headers, b"", url), where)
        try:
            if is_retryable_status(raw.status):
                raw.drain_conn()  # NB: an unread error body would be parsed as the next response
                raise TransientError(
                    f"HTTP {raw.status} from {self.ref.registry}",
                    retry_after=parse_retry_after(raw.headers.get("Retry-After")),
                )
            if sink is not None and raw.status == 200:
                try:
                    sink(raw)
                except BaseException:
                    raw.close()  # NB: a half-read stream must not go back to the pool
                    raise
                return Response(raw.status, raw.headers, b"", url)
            data = raw.read(MAX_BUFFERED_BODY + 1)
            if len(data) > MAX_BUFFERED_BODY:
                raw.close()  # NB: the rest is unread; the connection can't be reused
                raise RegistryPlatformError(
                    f"{where}: the response is larger than {MAX_BUFFERED_BODY} bytes; manifests and API answers are "
                    "small (blobs are streamed). Fix: check the registry address."
                )
            return Response(raw.status, raw.headers, data, url)
        except (ProtocolError, Urllib3Timeout) as e:
            raw.close()
            raise TransientError(f"{where}: connection to {self.ref.registry} failed while reading ({e})") from e
        finally:
            raw.release_conn()

    def _open(self, method, url, headers, body, where) -> urllib3.BaseHTTPResponse:
        headers = {"User-Agent": USER_AGENT, **headers}
        for _ in range(6):
            try:
                raw = self.pool.urlopen(
                    method,
                    url,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=self.timeout,
                )
            except SSLError as e:
                raise RegistryUserError(
                    f"{where}: TLS to {self.ref.registry} failed ({e}). Fix: install the registry's CA into the"
                    f" system bundle (or $SSL_CERT_FILE); plain HTTP is only for loopback or ${plain_http.INSECURE_REGISTRIES_ENV}."
                ) from e
            except (NewConnectionError, ProtocolError, Urllib3Timeout) as e:
                raise TransientError(f"{where}: cannot talk to {self.ref.registry} at {self.base} ({e})") from e
            except HTTPError as e:
                raise TransientError(f"{where}: HTTP failure talking to {self.ref.registry} ({e})") from e
            location = raw.headers.get("Location")
            if raw.status not in _REDIRECTS or method not in ("GET", "HEAD") or not location:
                return raw
            raw.drain_conn()
            raw.release_conn()
            target = quirks.resolve_location(url, location)
            if quirks.strip_auth_on_redirect(url, target) or plain_http.is_cleartext(target):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = target
        raise error_for(Response(raw.status, raw.headers, b"too many redirects", url), where)

    def _fetch_token(self, url: str, headers: dict) -> tuple[int, bytes]:
        if headers.get("Authorization") and plain_http.is_cleartext(url):
            raise plain_http.cleartext_refusal(f"token service for {self.ref.registry}", url)

        def once(_: int) -> tuple[int, bytes]:
            try:
                raw = self.pool.request(
                    "GET", url, headers={"User-Agent": USER_AGENT, **headers}, timeout=self.timeout, retries=False
                )
            except HTTPError as e:
                raise TransientError(f"token service {url}: {e}") from e
            if is_retryable_status(raw.status):
                raise TransientError(
                    f"token service {url}: HTTP {raw.status}",
                    retry_after=parse_retry_after(raw.headers.get("Retry-After")),
                )
            return raw.status, raw.data

        return self.retry.run(f"getting a token for {self.ref.registry}", once)
