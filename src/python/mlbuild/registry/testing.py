"""Test helpers: small images in OCI layouts, and an in-process fake registry with fault injection.

The fake speaks just enough of the distribution API (blobs, uploads, mounts, manifests) to test
protocol steps a real registry will not misbehave on cue for: 503 + Retry-After, wrong digests,
relative vs absolute Locations, 202 mount fallbacks, Basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.image import Image, add_layer, set_config
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import write_layout


def make_layout(root: Path, *, text: str = "hello", big_bytes: int = 0, ref: str = "img:1") -> Path:
    """A two-layer image (plus a `big_bytes` random file in a third) written to `root/layout`."""
    store = BlobStore(root / "store")
    compressor = choose_compressor("auto")
    image = Image()
    image = add_layer(image, write_layer([LayerEntry.file("opt/a.txt", b"shared base\n")], store, compressor))
    image = add_layer(image, write_layer([LayerEntry.file("opt/b.txt", text.encode())], store, compressor))
    if big_bytes:
        big = root / "big.bin"
        with open(big, "wb") as f:
            for start in range(0, big_bytes, 1 << 20):
                f.write(os.urandom(min(1 << 20, big_bytes - start)))
        image = add_layer(image, write_layer([LayerEntry.file_from("opt/big.bin", big)], store, compressor))
    image = set_config(image, entrypoint=["/opt/program/train"])
    write_layout(image, root / "layout", ref)
    return root / "layout"


@dataclass
class Fault:
    method: str
    path_regex: str
    status: int
    times: int = 1
    headers: dict = field(default_factory=dict)


@dataclass
class FakeState:
    blobs: dict = field(default_factory=dict)  # (repo, digest) -> bytes
    manifests: dict = field(default_factory=dict)  # (repo, ref) -> (bytes, media type)
    uploads: dict = field(default_factory=dict)  # session id -> (repo, bytearray)
    faults: list = field(default_factory=list)
    log: list = field(default_factory=list)  # (method, path, status)
    basic_auth: tuple[str, str] | None = None
    absolute_location: bool = False
    mount_works: bool = True
    lie_manifest_digest: bool = False
    referrers_api: bool = False  # OCI 1.1: answer `OCI-Subject` and serve /referrers/<digest>


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeState

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.state.log.append((self.command, self.path, status))
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self) -> None:
        body = self._body()
        for fault in self.state.faults:
            if fault.times and fault.method == self.command and re.search(fault.path_regex, self.path):
                fault.times -= 1
                code = b"NAME_UNKNOWN" if fault.status == 404 else b"UNAVAILABLE"
                return self._reply(
                    fault.status, b'{"errors":[{"code":"%s","message":"injected"}]}' % code, fault.headers
                )
        if self.state.basic_auth:
            want = "Basic " + base64.b64encode(":".join(self.state.basic_auth).encode()).decode()
            if self.headers.get("Authorization") != want:
                return self._reply(
                    401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": 'Basic realm="fake"'}
                )
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        r = re.match(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$", path)
        if r and self.state.referrers_api:
            return self._referrers(*r.groups())
        m = re.match(r"^/v2/(.+)/(blobs|manifests)/(uploads/)?(.*)$", path)
        if not m:
            return self._reply(200 if path == "/v2/" else 404)
        repo, kind, uploads, rest = m.groups()
        if kind == "manifests":
            return self._manifest(repo, rest, body)
        if not uploads:
            data = self.state.blobs.get((repo, rest))
            return self._reply(404) if data is None else self._reply(200, data, {"Docker-Content-Digest": rest})
        if self.command == "POST":
            source = params.get("from", "").replace("%2F", "/")
            if (
                "mount" in params
                and self.state.mount_works
                and (source, params["mount"].replace("%3A", ":")) in self.state.blobs
            ):
                digest = params["mount"].replace("%3A", ":")
                self.state.blobs[(repo, digest)] = self.state.blobs[(source, digest)]
                return self._reply(
                    201, headers={"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/blobs/{digest}"}
                )
            session = os.urandom(8).hex()
            self.state.uploads[session] = (repo, bytearray())
            return self._reply(
                202, headers={"Location": self._location(f"/v2/{repo}/blobs/uploads/{session}?_state=x")}
            )
        session = rest
        upload_repo, buf = self.state.uploads[session]
        buf.extend(body)
        if self.command == "PATCH":
            return self._reply(
                202, headers={"Location": self._location(f"/v2/{repo}/blobs/uploads/{session}?_state=y")}
            )
        digest = params.get("digest", "").replace("%3A", ":")
        if "sha256:" + hashlib.sha256(buf).hexdigest() != digest:
            return self._reply(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
        self.state.blobs[(upload_repo, digest)] = bytes(buf)
        return self._reply(201, headers={"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/blobs/{digest}"})

    def _manifest(self, repo: str, ref: str, body: bytes) -> None:
        if self.command == "PUT":
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self.state.manifests[(repo, ref)] = self.state.manifests[(repo, digest)] = (
                body,
                self.headers["Content-Type"],
            )
            reported = "sha256:" + "0" * 64 if self.state.lie_manifest_digest else digest
            subject = (json.loads(body).get("subject") or {}).get("digest")
            extra = {"OCI-Subject": subject} if subject and self.state.referrers_api else {}
            return self._reply(201, headers={"Docker-Content-Digest": reported, **extra})
        found = self.state.manifests.get((repo, ref))
        if found is None:
            return self._reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        digest = "sha256:" + hashlib.sha256(found[0]).hexdigest()
        return self._reply(200, found[0], {"Content-Type": found[1], "Docker-Content-Digest": digest})

    def _referrers(self, repo: str, subject: str) -> None:
        found = {}
        for (r, ref), (data, media_type) in self.state.manifests.items():
            doc = json.loads(data)
            if r == repo and ref.startswith("sha256:") and (doc.get("subject") or {}).get("digest") == subject:
                found[ref] = {
                    "mediaType": media_type,
                    "digest": ref,
                    "size": len(data),
                    "artifactType": doc.get("artifactType"),
                }
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": list(found.values()),
        }
        return self._reply(200, json.dumps(index).encode(), {"Content-Type": "application/vnd.oci.image.index.v1+json"})

    def _location(self, path: str) -> str:
        return f"http://{self.headers['Host']}{path}" if self.state.absolute_location else path

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _route


@contextmanager
def serve_in_thread(server: ThreadingHTTPServer) -> Iterator[str]:
    """Runs `server` (bound to 127.0.0.1 port 0 by its creator: no port race) on a thread; yields '127.0.0.1:PORT'."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fake_registry(state: FakeState | None = None) -> Iterator[tuple[str, FakeState]]:
    """Yields ('127.0.0.1:PORT', state) for a fake registry running on a thread."""
    state = state or FakeState()
    handler = type("Handler", (_Handler,), {"state": state})
    with serve_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as host:
        yield host, state


@dataclass
class Seen:
    """What a recording server received: (method, path, headers) per request."""

    requests: list = field(default_factory=list)

    def authorizations(self) -> list[str]:
        return [h["Authorization"] for _, _, h in self.requests if "Authorization" in h]


@contextmanager
def recording_server(answer) -> Iterator[tuple[int, Seen]]:
    """A loopback HTTP server that records every request and replies `answer(method, path, headers)`:
    (status, headers, body). Yields (port, seen). The server binds port 0 itself: no race for the port."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            seen.requests.append((self.command, self.path, headers))
            status, extra, body = answer(self.command, self.path, headers)
            self.send_response(status)
            for k, v in {"Content-Length": str(len(body)), **extra}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    with serve_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as host:
        yield int(host.rsplit(":", 1)[1]), seen
