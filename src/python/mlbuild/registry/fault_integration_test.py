"""push_layout through a fault-injecting proxy in front of a real `docker-registry` (distribution 2.8).

The proxy (stdlib http.server + http.client, threaded, on 127.0.0.1) forwards every request and,
following a scripted plan, answers some of them itself: 500, 503, 429 + `Retry-After: 1`, 401,
or a connection reset (RST) part-way through an upload body (the bytes read so far are forwarded,
then both sockets are dropped) or part-way through a response (headers and half the body, then RST).
Request bodies are streamed to the registry in 64 KiB blocks, never buffered whole. The Host header
is forwarded as sent, so the registry's upload Locations point back at the proxy.

Every faulty push must end with the clean push's manifest digest and an image that pulls back intact
straight from the registry; a persistent fault must fail clearly and leave no tag on a partial image
(checked against the registry directly, bypassing the proxy); 401 is never retried.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import struct
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.oci.layout import read_layout
from mlbuild.registry import (
    AuthError,
    Credentials,
    RetryPolicy,
    TransientError,
    content_tag,
    pull_to_layout,
    push_layout,
)
from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.testing import make_layout, serve_in_thread
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")
BIG = 12 * 1024 * 1024  # NB: > 2 chunks of 5 MiB, and far above socket buffers, so mid-body resets bite
BLOCK = 64 * 1024
FOREVER = 10**9
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}

# -- the proxy ---------------------------------------------------------------------------------


@dataclass
class Rule:
    """Inject `kind` on requests whose method is `method` and whose path matches `path`.

    kind: an HTTP status (int), 'reset_upload' (read half the request body, forward it, RST) or
    'reset_response' (forward, then send the headers and half the body, RST). The first `after`
    matching requests pass untouched, then the next `times` are faulted. `min_body`: only requests
    whose Content-Length is at least this (to cut the big layer, not a 300-byte one).
    """

    method: str
    path: str
    kind: int | str
    times: int = 1
    after: int = 0
    headers: dict = field(default_factory=dict)
    min_body: int = 0
    fired: int = 0


@dataclass
class Plan:
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, object]] = field(default_factory=list)  # (method, path, status or fault)
    cut_at: list[tuple[int, int]] = field(default_factory=list)  # resets: (bytes passed on, of total body)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, method: str, path: str, length: int) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.method in (method, "*") and re.search(rule.path, path) and length >= rule.min_body:
                    if rule.after:
                        rule.after -= 1
                        return None
                    if rule.fired < rule.times:
                        rule.fired += 1
                        return rule
            return None

    def record(self, method: str, path: str, what: object) -> None:
        with self.lock:
            self.log.append((method, path, what))

    def count(self, method: str, pattern: str, what: object = None) -> int:
        with self.lock:
            return sum(
                1 for m, p, w in self.log if m == method and re.search(pattern, p) and (what is None or w == what)
            )


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    plan: Plan
    _headers_buffer: list[bytes]  # NB: BaseHTTPRequestHandler's own, which typeshed leaves out

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        rule = self.plan.pick(self.command, self.path, length)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._answer(
                411, b'{"errors":[{"code":"UNSUPPORTED","message":"proxy: chunked request bodies"}]}', {}
            )
        if rule is not None and isinstance(rule.kind, int):
            self._discard(length)
            self.plan.record(self.command, self.path, rule.kind)
            body = json.dumps(
                {
                    "errors": [
                        {
                            "code": (
                                "UNAVAILABLE"
                                if rule.kind >= 500
                                else "TOOMANYREQUESTS" if rule.kind == 429 else "UNAUTHORIZED"
                            ),
                            "message": "injected by the fault proxy",
                        }
                    ]
                }
            ).encode()
            return self._answer(rule.kind, body, {"Content-Type": "application/json", **rule.headers})
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.endheaders()
            stop_at = length // 2 if rule is not None and rule.kind == "reset_upload" else length
            sent = 0
            while sent < stop_at:  # NB: stream the upload, never hold a whole blob in memory
                block = self.rfile.read(min(BLOCK, stop_at - sent))
                if not block:
                    raise ConnectionError("client went away")
                conn.send(block)
                sent += len(block)
            if rule is not None and rule.kind == "reset_upload":
                self.plan.record(self.command, self.path, "reset_upload")
                self.plan.cut_at.append((sent, length))
                return self._reset()
            resp = conn.getresponse()
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            has_length = any(k.lower() == "content-length" for k, _ in headers)
            no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            buffered = None
            if not has_length and not no_body:
                buffered = resp.read()
                headers.append(("Content-Length", str(len(buffered))))
            total = (
                0 if no_body else len(buffered) if buffered is not None else int(resp.getheader("Content-Length") or 0)
            )
            resetting = rule is not None and rule.kind == "reset_response"
            self.send_response_only(resp.status, resp.reason)
            for k, v in headers:
                self.send_header(k, v)
            if resetting and total == 0:  # NB: no body to cut: cut the header block instead
                self.plan.record(self.command, self.path, "reset_response")
                self.wfile.write(b"".join(self._headers_buffer)[:-10])
                self._headers_buffer = []
                return self._reset()
            self.end_headers()
            limit = total // 2 if resetting else total
            if buffered is not None:
                self.wfile.write(buffered[:limit])
            else:
                done = 0
                while done < limit:
                    block = resp.read(min(BLOCK, limit - done))
                    if not block:
                        break
                    self.wfile.write(block)
                    done += len(block)
            if resetting:
                self.plan.record(self.command, self.path, "reset_response")
                self.plan.cut_at.append((limit, total))
                return self._reset()
            self.plan.record(self.command, self.path, resp.status)
        finally:
            conn.close()

    def _discard(self, length: int) -> None:
        while length > 0:
            block = self.rfile.read(min(BLOCK, length))
            if not block:
                break
            length -= len(block)

    def _answer(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response_only(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close with RST: SO_LINGER 0, and drop the makefile() reference that keeps the fd open."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # NB: resets make noise, not failures
        pass


@contextmanager
def fault_proxy(upstream: str, plan: Plan) -> Iterator[str]:
    host, port = upstream.rsplit(":", 1)
    handler = type("Handler", (_ProxyHandler,), {"upstream": (host, int(port)), "plan": plan})
    with serve_in_thread(_Server(("127.0.0.1", 0), handler)) as proxy:
        yield proxy


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_registry(tmp_path_factory.mktemp("fault-registry")) as running:
        yield running.host


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Config + 3 layers, one of them 12 MiB of random bytes (incompressible)."""
    return make_layout(tmp_path_factory.mktemp("fault-image"), text="faults", big_bytes=BIG)


@pytest.fixture(scope="module")
def clean_digest(registry: str, layout: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    env = {"DOCKER_CONFIG": str(tmp_path_factory.mktemp("docker"))}
    return push_layout(layout, None, f"{registry}/clean/app", progress=None, env=env).digest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "docker")}


class Sleeps(list):
    """A RetryPolicy sleep that records what was asked and does not wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_policy(sleeps: Sleeps, attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, sleep=sleeps, random=lambda: 0.0)


def _direct(registry: str, method: str, path: str, accept: str = "") -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://{registry}{path}", method=method, headers={"Accept": accept} if accept else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def _tags(registry: str, repo: str) -> list[str]:
    status, body = _direct(registry, "GET", f"/v2/{repo}/tags/list")
    if status == 404:
        return []
    assert status == 200, (status, body)
    return json.loads(body).get("tags") or []


def _assert_pulls_back(registry: str, repo: str, digest: str, tmp_path: Path, env: dict[str, str]) -> None:
    """Straight from the registry (no proxy): every blob verified against its digest by pull_to_layout."""
    pulled = pull_to_layout(
        f"{registry}/{repo}@{digest}", tmp_path / "pulled", tmp_path / "cache", progress=None, env=env
    )
    assert pulled.digest == digest and pulled.fetched == 4
    assert read_layout(tmp_path / "pulled").manifest_descriptor().digest == digest
    status, body = _direct(registry, "GET", f"/v2/{repo}/manifests/{content_tag(digest)}", MANIFEST_ACCEPT)
    assert status == 200 and _sha256(body) == digest


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- transient faults: the push completes, byte-identical ---------------------------------------

UPLOAD_PUT = r"/blobs/uploads/"  # the monolithic PUT ?digest= (and PATCH in chunked mode)
RETRY_AFTER = {"Retry-After": "1"}

TRANSIENT = {
    "500": [Rule("PUT", UPLOAD_PUT, 500, times=2), Rule("HEAD", r"/blobs/sha256:", 500, times=2)],
    "503": [Rule("PUT", UPLOAD_PUT, 503, times=3), Rule("PUT", r"/manifests/sha256:", 503, times=1)],
    "429 Retry-After": [
        Rule("POST", UPLOAD_PUT, 429, times=2, headers=RETRY_AFTER),
        Rule("PUT", r"/manifests/", 429, headers=RETRY_AFTER),
    ],
    "reset mid-upload": [
        Rule("PUT", UPLOAD_PUT, "reset_upload", times=2, min_body=BIG),
        Rule("PUT", UPLOAD_PUT, "reset_upload", times=1),
    ],
    "reset mid-response": [
        Rule("GET", r"/manifests/sha256:", "reset_response", times=2),
        Rule("PUT", UPLOAD_PUT, "reset_response", times=2),
    ],
    "mix": [
        Rule("HEAD", r"/blobs/sha256:", 500, times=1),
        Rule("POST", UPLOAD_PUT, 429, times=1, headers=RETRY_AFTER),
        Rule("PUT", UPLOAD_PUT, "reset_upload", times=1, min_body=BIG),
        Rule("PUT", UPLOAD_PUT, 503, times=1, after=1),
        Rule("PUT", r"/manifests/", "reset_response", times=1),
        Rule("GET", r"/manifests/sha256:", 503, times=1),
    ],
    "chunked: reset mid-PATCH": [
        Rule("PATCH", UPLOAD_PUT, "reset_upload", times=2, after=1, min_body=5 << 20),
        Rule("PATCH", UPLOAD_PUT, 503, times=1),
    ],
}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_transient_faults_push_the_same_image(
    name: str, registry: str, layout: Path, clean_digest: str, tmp_path: Path, env: dict[str, str]
) -> None:
    plan = Plan([Rule(**{**r.__dict__}) for r in TRANSIENT[name]])
    sleeps = Sleeps()
    repo = "faults/" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    chunked = name.startswith("chunked")
    with fault_proxy(registry, plan) as proxy:
        result = push_layout(
            layout,
            None,
            f"{proxy}/{repo}",
            tags=["v1"],
            progress=None,
            env=env,
            retry=fast_policy(sleeps),
            upload_mode="chunked" if chunked else "monolithic",
            chunk_size=5 << 20,
        )
    assert all(r.fired == r.times for r in plan.rules), [(r.method, r.path, r.kind, r.fired) for r in plan.rules]
    assert result.digest == clean_digest
    assert (result.uploaded, result.mounted, result.skipped) == (4, 0, 0)
    assert result.uploaded_bytes > BIG
    # Retry-After: 1 is a floor under the (here zero) jittered backoff: exactly one 1 s sleep per 429.
    injected_429 = sum(r.fired for r in plan.rules if r.kind == 429)
    assert sum(1 for s in sleeps if s >= 1.0) == injected_429 and all(s == 1.0 for s in sleeps if s >= 1.0)
    assert len(sleeps) >= sum(r.fired for r in plan.rules)  # NB: every fault cost one retry (or more)
    assert all(done >= 1 << 20 for done, total in plan.cut_at if total >= BIG // 2)  # NB: cut deep inside the big layer
    assert sorted(_tags(registry, repo)) == sorted([content_tag(clean_digest), "v1"])
    _assert_pulls_back(registry, repo, clean_digest, tmp_path, env)


def test_pull_through_faults(
    registry: str, layout: Path, clean_digest: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The other direction: resets mid-blob-body and 503s during pull_to_layout through the proxy."""
    big = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size).name
    plan = Plan(
        [
            Rule("GET", f"/blobs/sha256:{big}", "reset_response", times=2),
            Rule("GET", r"/blobs/sha256:", "reset_response", times=1),
            Rule("GET", r"/manifests/sha256:", 503, times=1),
            Rule("GET", r"/blobs/sha256:", 429, times=1, headers=RETRY_AFTER),
        ]
    )
    sleeps = Sleeps()
    with fault_proxy(registry, plan) as proxy:
        pulled = pull_to_layout(
            f"{proxy}/clean/app@{clean_digest}",
            tmp_path / "pulled",
            tmp_path / "cache",
            progress=None,
            env=env,
            retry=fast_policy(sleeps),
        )
    assert all(r.fired == r.times for r in plan.rules)
    assert pulled.digest == clean_digest and pulled.fetched == 4
    assert read_layout(tmp_path / "pulled").manifest_descriptor().digest == clean_digest
    assert sleeps.count(1.0) == 1
    assert (
        sum(1 for done, total in plan.cut_at if done == total // 2 > BIG // 3) == 2
    )  # NB: half the big layer went out, twice


# -- persistent faults: a clear error, no tag on a partial image --------------------------------

PERSISTENT = {
    "every request 503": Rule("*", r".", 503, times=FOREVER),
    "blob upload PUT 503": Rule("PUT", UPLOAD_PUT, 503, times=FOREVER),
    "manifest PUT 503": Rule("PUT", r"/manifests/", 503, times=FOREVER),
}


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_persistent_503_fails_clearly_and_tags_nothing(
    name: str, registry: str, layout: Path, clean_digest: str, env: dict[str, str]
) -> None:
    rule = PERSISTENT[name]
    plan = Plan([Rule(**{**rule.__dict__})])
    sleeps = Sleeps()
    repo = "persistent/" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    with fault_proxy(registry, plan) as proxy:
        with pytest.raises(TransientError) as info:
            push_layout(
                layout,
                None,
                f"{proxy}/{repo}",
                tags=["v1"],
                progress=None,
                env=env,
                retry=fast_policy(sleeps, attempts=3),
            )
    message = str(info.value)
    assert "still failing after 3 tries" in message and "HTTP 503" in message and proxy.split(":")[0] in message
    assert plan.rules[0].fired >= 3
    # Straight at the registry: no tag, and no manifest at all, so nothing can name a partial image.
    assert _tags(registry, repo) == []
    for reference in (clean_digest, content_tag(clean_digest), "v1"):
        assert _direct(registry, "HEAD", f"/v2/{repo}/manifests/{reference}", MANIFEST_ACCEPT)[0] == 404


# -- 401 is the caller's problem: never retried -------------------------------------------------

CHALLENGE = {"WWW-Authenticate": 'Basic realm="fault-proxy"'}


@pytest.mark.parametrize("credentials, requests_seen", [(None, 1), (Credentials("ci", "wrong"), 2)])
def test_401_is_not_retried(
    credentials: Credentials | None, requests_seen: int, registry: str, layout: Path, env: dict[str, str]
) -> None:
    plan = Plan([Rule("PUT", r"/manifests/", 401, times=FOREVER, headers=CHALLENGE)])
    sleeps = Sleeps()
    with fault_proxy(registry, plan) as proxy:
        with pytest.raises(AuthError, match="wants credentials and none were found|rejected the credentials"):
            push_layout(
                layout,
                None,
                f"{proxy}/denied/app",
                progress=None,
                env=env,
                credentials=credentials,
                retry=fast_policy(sleeps),
            )
    # One request, plus (with credentials) the one answer to the challenge; no backoff, no second try.
    assert plan.count("PUT", r"/manifests/", 401) == requests_seen
    assert sleeps == []
    assert _tags(registry, "denied/app") == []
