"""Test helper: an HTTP proxy on 127.0.0.1 that forwards to a real registry and lies on cue.

Each Lie matches a method and a path pattern (optionally skipping the first `after` matches)
and rewrites the registry's answer: flip a byte of the body, cut it short, replace it with an
HTML page (status 200), or set/remove a header. Bodies are buffered (test images are small).
The Host header is forwarded as sent, so upload Locations point back at the proxy. The proxy
binds port 0 itself and reports it: no port race.
"""

from __future__ import annotations

import http.client
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from mlbuild.registry.testing import serve_in_thread

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
HTML = b"<html><head><title>Welcome</title></head><body>Please log in.</body></html>"

Answer = tuple[int, dict, bytes]  # status, headers (lowercase names), body


def flip(answer: Answer) -> Answer:
    status, headers, body = answer
    if not body:
        return answer
    data = bytearray(body)
    data[len(data) // 2] ^= 0x01
    return status, headers, bytes(data)


def truncate(answer: Answer) -> Answer:
    status, headers, body = answer
    return status, {**headers, "content-length": str(len(body) // 2)}, body[: len(body) // 2]


def html(answer: Answer) -> Answer:
    return 200, {"content-type": "text/html; charset=utf-8", "content-length": str(len(HTML))}, HTML


def header(name: str, value: str | None) -> Callable[[Answer], Answer]:
    def rewrite(answer: Answer) -> Answer:
        status, headers, body = answer
        headers = {k: v for k, v in headers.items() if k != name.lower()}
        return status, ({**headers, name.lower(): value} if value is not None else headers), body

    return rewrite


@dataclass
class Lie:
    method: str  # or '*'
    path: str  # regex searched in the request path
    rewrite: Callable[[Answer], Answer]
    after: int = 0  # let this many matching requests through first
    seen: int = 0
    fired: int = 0


@dataclass
class Script:
    lies: list[Lie] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, method: str, path: str) -> Lie | None:
        with self.lock:
            for lie in self.lies:
                if lie.method in (method, "*") and re.search(lie.path, path):
                    lie.seen += 1
                    if lie.seen > lie.after:
                        lie.fired += 1
                        return lie
            return None


@contextmanager
def tampering_proxy(upstream: str, script: Script) -> Iterator[str]:
    """Yields '127.0.0.1:PORT' of a proxy to `upstream` ('host:port') that follows `script`."""
    host, port = upstream.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        conn.putheader(name, value)
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = b"" if self.command == "HEAD" else resp.read()
                headers = {k.lower(): v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
                if self.command != "HEAD" and resp.status not in (204, 304):
                    headers["content-length"] = str(len(data))
                answer: Answer = (resp.status, headers, data)
            finally:
                conn.close()
            lie = script.pick(self.command, self.path)
            if lie is not None:
                answer = lie.rewrite(answer)
            status, headers, data = answer
            self.send_response_only(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    with serve_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as proxy:
        yield proxy
