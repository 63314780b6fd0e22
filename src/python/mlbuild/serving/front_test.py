"""The HTTP front alone, over loopback sockets, with a stub in place of the worker pool:
what it reads, what it refuses, and when it closes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Tuple, cast

import pytest

from mlbuild.serving.app import InvocationsApp
from mlbuild.serving.front import MB, BadRequest, Front, Limits, parse_head
from mlbuild.serving.predictor import Predictor, serving_context
from mlbuild.serving.testing import SumModel, fake_pipeline
from mlbuild.serving.workers import Pool


class EchoPool:
    """Answers every invocation with its body, at once."""

    def __init__(self, alive: int = 1) -> None:
        self.workers, self.bodies = alive, []  # type: ignore[var-annotated]

    def alive(self) -> int:
        return self.workers

    def healthy(self) -> bool:
        return self.workers > 0

    def submit(self, environ: Dict[str, Any], body: bytes) -> "asyncio.Future[Any]":
        self.bodies.append(body)
        future = asyncio.get_running_loop().create_future()
        future.set_result((200, [("Content-Type", "text/csv")], body))
        return future


def run(tmp_path: Path, client: Callable[[int, Front], Awaitable[None]], pool: Any = None, **limits: Any) -> Front:
    pipeline = fake_pipeline()
    app = InvocationsApp(
        Predictor(pipeline, serving_context(pipeline, tmp_path, tmp_path), SumModel()), max_payload_mb=1
    )
    front = Front(
        app, cast(Pool, pool or EchoPool()), Limits(**{"max_body_bytes": 1 * MB, "buffer_bytes": 4 * MB, **limits})
    )

    async def main() -> None:
        server = await asyncio.start_server(front.handle, "127.0.0.1", 0, limit=64 * 1024)
        try:
            await asyncio.wait_for(client(server.sockets[0].getsockname()[1], front), 30)
        finally:
            server.close()

    asyncio.run(main())
    return front


async def exchange(port: int, *requests: bytes, read_all: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for data in requests:
        writer.write(data)
    await writer.drain()
    answer = await reader.read() if read_all else await reader.read(65536)
    writer.close()
    return answer


def statuses(answer: bytes) -> List[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def test_keep_alive_pipelined_requests_chunked_bodies_and_100_continue(tmp_path: Path) -> None:
    seen: List[bytes] = []

    async def client(port: int, front: Front) -> None:
        answer = await exchange(
            port,
            b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /invocations HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n1,2\n",
            b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n3,\r\n2;ext=1\r\n4\n\r\n0\r\n\r\n",
            b"GET /execution-parameters HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        seen.append(answer)

    pool = EchoPool()
    run(tmp_path, client, pool)
    assert statuses(seen[0]) == [200, 100, 200, 200, 200]
    assert pool.bodies == [b"1,2\n", b"3,4\n"]
    assert seen[0].endswith(b'"MaxPayloadInMB": 1}') and seen[0].count(b"Connection: keep-alive") == 3


@pytest.mark.parametrize(
    "request_, status",
    [
        (
            b"POST /invocations HTTP/1.1\r\nContent-Length: 2000000\r\nContent-Type: text/csv\r\n\r\n" + b"1" * 100000,
            413,
        ),
        (b"GET /ping HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n" + b"1" * 100000, 413),
    ],
)
def test_refusals_reach_the_client_before_it_has_sent_its_body_and_then_close(
    tmp_path: Path, request_: bytes, status: int
) -> None:
    seen: List[bytes] = []

    async def client(port: int, front: Front) -> None:
        seen.append(await exchange(port, request_))

    run(tmp_path, client)
    assert statuses(seen[0]) == [status] and b"Connection: close" in seen[0]


def test_stalled_headers_and_bodies_get_408_and_idle_connections_close(tmp_path: Path) -> None:
    seen: List[Tuple[bytes, float]] = []

    async def client(port: int, front: Front) -> None:
        loop = asyncio.get_running_loop()
        for partial in (b"GET /ping HTTP/1.1\r\n", b"POST /invocations HTTP/1.1\r\nContent-Length: 9\r\n\r\n1,2", b""):
            start = loop.time()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(partial)
            seen.append((await reader.read(), loop.time() - start))  # NB: until the server closes
            writer.close()

    run(tmp_path, client, header_seconds=0.3, body_seconds=0.3, idle_seconds=0.3)
    assert [statuses(answer) for answer, _ in seen] == [[408], [408], []]
    assert all(0.3 <= took < 3 for _, took in seen), seen


def test_bodies_past_the_shared_buffer_get_503_and_the_buffer_is_given_back(tmp_path: Path) -> None:
    seen: List[List[int]] = []

    async def client(port: int, front: Front) -> None:
        # NB: three bodies of 900 KB stall before their last byte: 2.7 MB of a 2 MB buffer
        body = b"1" * 900_000
        writers = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /invocations HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (len(body) + 1) + body)
            writers.append((reader, writer))
            await asyncio.sleep(0.2)
        third = await writers[2][0].read()
        for reader, writer in writers[:2]:
            writer.write(b"\n")
            seen.append(statuses(await reader.read(65536)))
            writer.close()
        seen.append(statuses(third))
        assert front.buffered == 0

    run(tmp_path, client, buffer_bytes=2 * MB, buffer_wait_seconds=0.3)
    assert seen == [[200], [200], [503]]


def test_ping_fails_without_a_live_worker_and_connections_past_the_cap_get_503(tmp_path: Path) -> None:
    seen: List[List[int]] = []

    async def client(port: int, front: Front) -> None:
        held = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.1)
        seen.append(statuses(await exchange(port, b"GET /ping HTTP/1.1\r\n\r\n")))
        held[1].close()
        await asyncio.sleep(0.1)
        seen.append(statuses(await exchange(port, b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")))

    run(tmp_path, client, EchoPool(alive=0), max_connections=1)
    assert seen == [[503], [503]]


def test_parse_head_names_what_is_wrong() -> None:
    assert parse_head(b"GET /ping?x=1 HTTP/1.1\r\nAccept: a\r\naccept: b") == (
        "GET",
        "/ping?x=1",
        "HTTP/1.1",
        {"accept": "a, b"},
    )
    with pytest.raises(BadRequest, match="HTTP/1.1"):
        parse_head(b"GET / HTTP/2")
    with pytest.raises(BadRequest, match="malformed header"):
        parse_head(b"GET / HTTP/1.1\r\nno colon")
