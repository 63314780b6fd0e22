"""The HTTP front: one asyncio loop that reads whole requests before any worker sees them.

A slow or stalled client costs a coroutine and its bytes, never a worker: the front reads the
request line, headers and body itself (each within a time limit), answers `/ping` (and every
path but `POST /invocations`) on its own, and hands only complete `/invocations` requests to
the worker pool (workers.py). What nginx does in front of gunicorn in SageMaker's containers,
in the standard library, so the image needs nothing more.

    idle keep-alive connection   closed after `idle_seconds` without a new request
    headers                      complete within `header_seconds` of their first byte, else
                                 408 and closed; over 64 KiB: 431
    body                         complete within `body_seconds`, else 408; over the payload
                                 limit: 413 before it is read; a body is admitted whole
                                 (Content-Length) when the bodies held by all connections
                                 leave room in `buffer_bytes`, else it waits (unread) up to
                                 `buffer_wait_seconds` and gets 503
    connections                  over `max_connections`: 503 and closed
    SIGTERM                      stop accepting, close idle connections, answer every request
                                 already read (queued ones included), then stop the workers;
                                 whatever is left at `drain_seconds` gets 503
    no pool (the model failed    the app answers every request itself (cli.py serves
    to load)                     LoadFailedApp: a 500 saying why, /ping included)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import unquote

from mlbuild.serving.workers import Pool, Response, call_app, overloaded, plain

log = logging.getLogger("mlbuild.serving")

MB = 1024 * 1024
HEAD_LIMIT = 64 * 1024
CHUNK = 256 * 1024
LINGER_SECONDS = 2.0
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    buffer_bytes: int
    header_seconds: float = 10.0
    body_seconds: float = 60.0
    idle_seconds: float = 75.0  # NB: longer than the 60 s clients such as SageMaker's keep a connection idle
    drain_seconds: float = 20.0  # NB: then the workers' 2 s: under the 30 s SageMaker gives before SIGKILL
    max_connections: int = 1000
    write_seconds: float = 60.0
    buffer_wait_seconds: float = 2.0


class BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.response = plain(status, text + "\n")


def parse_head(head: bytes) -> Tuple[str, str, str, Dict[str, str]]:
    """(method, target, version, headers with lower-case names) of a request's head."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line; expected METHOD /path HTTP/1.1") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(400, f"unsupported protocol {version!r}; this server speaks HTTP/1.1")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line[:80]!r}")
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return method, target, version, headers


def wsgi_environ(
    method: str, target: str, version: str, headers: Dict[str, str], server: Tuple[str, int]
) -> Dict[str, Any]:
    path, _, query = target.partition("?")
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote(path),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": version,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SCRIPT_NAME": "",
        "wsgi.url_scheme": "http",
    }
    for name, value in headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name != "content-length":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


class Front:
    def __init__(self, app: Callable[..., Any], pool: Optional[Pool], limits: Limits) -> None:
        self.app, self.pool, self.limits = app, pool, limits
        self.buffered = 0
        self._freed = asyncio.Event()
        self.draining = False
        self.connections: Dict["asyncio.Task[Any]", bool] = {}  # task -> idle (waiting for a request)
        self.answered = 0

    # --- one connection ----------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections[task] = True
        try:
            if len(self.connections) > self.limits.max_connections:
                await self._send(writer, overloaded(f"over {self.limits.max_connections} connections open"), close=True)
                await self._linger(reader, writer)
                return
            server = writer.get_extra_info("sockname")[:2]
            while not self.draining:
                self.connections[task] = True
                try:
                    async with asyncio.timeout(self.limits.idle_seconds):
                        first = await reader.read(1)
                except TimeoutError:
                    return
                if not first:
                    return
                self.connections[task] = False
                close = await self._one_request(first, reader, writer, server)
                if close:
                    await self._linger(reader, writer)
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.connections.pop(task, None)
            writer.close()

    async def _one_request(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Tuple[str, int]
    ) -> bool:
        """Read, answer; True when the connection must close."""
        held = [0]  # NB: body bytes counted in self.buffered, given back however this ends
        try:
            try:
                async with asyncio.timeout(self.limits.header_seconds):
                    head = first + await reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                return await self._send(
                    writer,
                    plain(408, f"request headers not complete within {self.limits.header_seconds:.0f} s\n"),
                    close=True,
                )
            except asyncio.LimitOverrunError:
                return await self._send(
                    writer, plain(431, f"request headers over {HEAD_LIMIT // 1024} KiB\n"), close=True
                )
            except asyncio.IncompleteReadError:
                return True
            method, target, version, headers = parse_head(head[:-4])
            keep_alive = (
                headers.get("connection", "").lower() != "close"
                if version == "HTTP/1.1"
                else headers.get("connection", "").lower() == "keep-alive"
            )
            environ = wsgi_environ(method, target, version, headers, server)
            length = self._length(headers)
            if length is not None and length > self.limits.max_body_bytes:
                # NB: the app words the 413 from CONTENT_LENGTH alone; the body is never read.
                return await self._send(
                    writer, call_app(self.app, {**environ, "CONTENT_LENGTH": str(length)}, b""), close=True
                )
            if length:
                await self._hold(
                    length, held
                )  # NB: the whole body, before reading it: an admitted request can always finish
            if headers.get("expect", "").lower() == "100-continue" and (
                length or "chunked" in headers.get("transfer-encoding", "")
            ):
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                async with asyncio.timeout(self.limits.body_seconds):
                    body = await self._body(reader, length, held)
            except TimeoutError:
                return await self._send(
                    writer,
                    plain(408, f"request body not complete within {self.limits.body_seconds:.0f} s\n"),
                    close=True,
                )
            except asyncio.IncompleteReadError:
                return True
            answer = await self._answer(method, environ, body)
            del body
            return await self._send(writer, answer, close=not keep_alive or self.draining)
        except BadRequest as e:
            return await self._send(writer, e.response, close=True)
        finally:
            if held[0]:
                self.buffered -= held[0]
                self._freed.set()

    def _length(self, headers: Dict[str, str]) -> Optional[int]:
        if "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower() != "chunked":
                raise BadRequest(
                    501,
                    f"Transfer-Encoding {headers['transfer-encoding']!r} is not supported; send Content-Length or chunked",
                )
            if "content-length" in headers:
                raise BadRequest(400, "both Content-Length and Transfer-Encoding; send one")
            return None
        value = headers.get("content-length", "0")
        if not value.isdigit():
            raise BadRequest(400, f"Content-Length {value!r} is not a number")
        return int(value)

    async def _hold(self, size: int, held: List[int]) -> None:
        """Count `size` more bytes against the shared buffer, waiting a moment for room (the
        client's bytes wait in its socket meanwhile); 503 when none comes."""
        if self.buffered + size > self.limits.buffer_bytes:
            try:
                async with asyncio.timeout(self.limits.buffer_wait_seconds):
                    while self.buffered + size > self.limits.buffer_bytes:
                        self._freed.clear()
                        await self._freed.wait()
            except TimeoutError:
                raise BadRequest(
                    503,
                    f"server busy: request bodies being read or queued fill its {self.limits.buffer_bytes // MB} MB buffer. "
                    f"Retry after 1 s.",
                ) from None
        self.buffered += size
        held[0] += size

    async def _body(self, reader: asyncio.StreamReader, length: Optional[int], held: List[int]) -> "bytes | bytearray":
        """The whole body; a chunked one is counted in `held` (and against the buffer) as it arrives."""
        parts: List[bytes] = []
        if length is not None:
            # NB: into one buffer of the announced size: readexactly() would hold the body
            # three times over (its buffer, a slice, the bytes) at the moment it returns.
            body = bytearray(length)
            with memoryview(body) as view:
                got = 0
                while got < length:
                    chunk = await reader.read(min(CHUNK, length - got))
                    if not chunk:
                        raise asyncio.IncompleteReadError(b"", length - got)
                    view[got : got + len(chunk)] = chunk
                    got += len(chunk)
            return body
        else:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";", 1)[0], 16)
                except ValueError:
                    raise BadRequest(400, "malformed chunk size in a chunked body") from None
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # NB: trailers, ignored
                        pass
                    break
                if held[0] + size > self.limits.max_body_bytes:
                    raise BadRequest(
                        413,
                        f"payload too large: the chunked body is over the {self.limits.max_body_bytes // MB} MB limit",
                    )
                await self._hold(size, held)
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    async def _answer(self, method: str, environ: Dict[str, Any], body: "bytes | bytearray") -> Response:
        path = environ["PATH_INFO"]
        if self.pool is None:
            return call_app(self.app, environ, body)
        if path == "/ping":
            # NB: the model is loaded before the workers fork; the front answers without them.
            if self.pool.healthy():
                return plain(200, "")
            return plain(503, "no prediction worker is running (they are being restarted; see the server log)\n")
        if path == "/invocations" and method == "POST":
            return await self.pool.submit(environ, body)
        try:
            return call_app(self.app, environ, body)  # NB: 404, 405, /execution-parameters: no predict
        except Exception:
            log.exception("%s %s: 500 internal error", method, path)
            return plain(500, "internal error; see the server log\n")

    async def _send(self, writer: asyncio.StreamWriter, answer: Response, close: bool) -> bool:
        status, headers, data = answer
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, '')}",
            *(f"{k}: {v}" for k, v in headers),
            f"Content-Length: {len(data)}",
            "Connection: close" if close else "Connection: keep-alive",
            "",
            "",
        ]
        head = "\r\n".join(lines).encode("latin-1")
        if len(data) < 65536:
            writer.write(head + data)
        else:
            writer.write(head)
            writer.write(data)
        self.answered += 1
        try:
            async with asyncio.timeout(self.limits.write_seconds):
                await writer.drain()
        except TimeoutError:
            writer.transport.abort()
            return True
        return close

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then read and drop what the client still sends for a moment.

        NB: closing a socket with unread input sends a reset, and the client may lose our
        answer (a 413 or 503 sent before its body was read) to it: nginx's lingering_close.
        """
        try:
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                while await reader.read(CHUNK):
                    pass
        except (TimeoutError, ConnectionError, OSError):
            pass

    # --- the server --------------------------------------------------------------------------

    async def serve(self, listener: socket.socket, ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        if self.pool is not None:
            await self.pool.start()
        server = await asyncio.start_server(self.handle, sock=listener, limit=HEAD_LIMIT)
        ready()
        await stop.wait()
        started = time.monotonic()
        log.info(
            "SIGTERM: no new connections; finishing %d requests in flight or queued",
            (self.pool.busy + self.pool.queue.qsize()) if self.pool else 0,
        )
        server.close()
        self.draining = True
        for task, idle in list(self.connections.items()):
            if idle:
                task.cancel()
        pending: Set["asyncio.Task[Any]"] = set(self.connections)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.limits.drain_seconds)
        if self.pool is not None:
            self.pool.fail_queued("the server is shutting down")
        for task in pending:
            task.cancel()
        if self.pool is not None:
            await self.pool.stop(grace=2.0)
        log.info("stopped in %.1f s (%d answers sent)", time.monotonic() - started, self.answered)
