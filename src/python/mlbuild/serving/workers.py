"""Prediction workers: processes forked with the model loaded, one whole request at a time.

The front (front.py) puts a request it has read completely on a bounded queue; one slot per
worker takes it, hands the worker the request's WSGI environ and body over a socketpair and
waits for the answer until the request's deadline. The worker runs the WSGI app as a WSGI
server would, so every 4xx and 5xx of app.py is unchanged.

    queue full                   503 at once, with Retry-After (the caller retries)
    deadline passed in the queue 503 (the request never reached a worker)
    predict past the deadline    504; the worker is killed (SIGKILL: a hung native call
                                 ignores anything gentler) and a fresh one forked
    worker died mid-request      502 naming how it died (signal 9: killed, e.g. out of
                                 memory; signal 11: a crash in a native library); replaced

NB: the status codes are the ones nginx gives in front of gunicorn in SageMaker's own
containers (502 upstream died, 504 upstream timed out), so clients see what they know.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

log = logging.getLogger("mlbuild.serving")

# NB: a frame is (environ or status+headers, pickled) then the raw body, so a large body is
# never copied into a pickle.
FRAME = struct.Struct("!IQ")
WRITE_CHUNK = 256 * 1024
Response = Tuple[int, List[Tuple[str, str]], bytes]
RETRY_AFTER_SECONDS = 1
CRASH_LOOP_SECONDS = 1.0  # a worker that dies this soon after its start is replaced after a pause


def plain(status: int, text: str, headers: Optional[List[Tuple[str, str]]] = None) -> Response:
    return status, [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])], text.encode()


def overloaded(why: str) -> Response:
    return plain(
        503, f"server busy: {why}. Retry after {RETRY_AFTER_SECONDS} s.\n", [("Retry-After", str(RETRY_AFTER_SECONDS))]
    )


# --- the worker process ----------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> Optional[bytearray]:
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return data


def call_app(app: Callable[..., Any], environ: Dict[str, Any], body: "bytes | bytearray") -> Response:
    environ = {"CONTENT_LENGTH": str(len(body)), **environ, "wsgi.input": io.BytesIO(body)}
    seen: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = int(status.split(" ", 1)[0]), list(headers)

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return seen["status"], [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"], data


def worker_loop(sock: socket.socket, app: Callable[..., Any]) -> None:
    """Answer requests until the server closes its end of the socket."""
    while True:
        head = _recv_exact(sock, FRAME.size)
        if head is None:
            return
        meta_size, body_size = FRAME.unpack(head)
        meta, body = _recv_exact(sock, meta_size), _recv_exact(sock, body_size)
        if meta is None or body is None:
            return
        status, headers, data = call_app(app, pickle.loads(meta), body)
        answer = pickle.dumps((status, headers))
        frame = FRAME.pack(len(answer), len(data)) + answer
        if len(data) < 65536:  # NB: one write for the usual small answer
            sock.sendall(frame + data)
        else:
            sock.sendall(frame)
            sock.sendall(data)


def _die_with_server() -> None:
    """NB: a worker stuck in a hung predict never reads the EOF a dead server leaves it; the
    kernel kills it instead (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # NB: 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(sock: socket.socket, app: Callable[..., Any], init: Callable[[], None]) -> None:
    code = 1
    try:
        # NB: the server's listening socket, its clients' sockets and the other workers'
        # pipes were inherited: a client connection the server closes would stay open while
        # any worker holds it. Keep only stdio and this worker's socket.
        fd = sock.fileno()
        os.closerange(3, fd)
        os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
        _die_with_server()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # NB: Ctrl-C reaches the whole group; the server drains
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        init()
        worker_loop(sock, app)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


# --- the server side -------------------------------------------------------------------------


def describe_exit(status: Optional[int]) -> str:
    if status is None:
        return "did not exit"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        hint = {signal.SIGKILL: ": killed, e.g. out of memory", signal.SIGSEGV: ": a crash in native code"}.get(number, "")  # type: ignore[call-overload]
        return f"was killed by signal {number} ({name}{hint})"
    return f"exited with {os.WEXITSTATUS(status)}"


@dataclass
class Job:
    environ: Dict[str, Any]
    body: "bytes | bytearray"
    deadline: float
    future: "asyncio.Future[Response]"


@dataclass
class _Worker:
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    started: float = field(default_factory=time.monotonic)

    async def call(self, environ: Dict[str, Any], body: "bytes | bytearray") -> Response:
        meta = pickle.dumps(environ)
        self.writer.write(FRAME.pack(len(meta), len(body)) + meta)
        view = memoryview(body)  # NB: not released here: a transport may still hold slices of it
        for start in range(0, len(body), WRITE_CHUNK):  # NB: the transport copies what it cannot send at once
            self.writer.write(view[start : start + WRITE_CHUNK])
            await self.writer.drain()
        await self.writer.drain()
        meta_size, body_size = FRAME.unpack(await self.reader.readexactly(FRAME.size))
        status, headers = pickle.loads(await self.reader.readexactly(meta_size))
        return status, headers, await self.reader.readexactly(body_size)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def reap(self, wait: float = 2.0) -> Optional[int]:
        """The wait status once the process is gone (killed if still there after `wait`)."""
        self.writer.close()
        deadline = time.monotonic() + wait
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                return status
            if time.monotonic() > deadline:
                self.kill()
                wait, deadline = 0, time.monotonic() + 5
            await asyncio.sleep(0.005)


class Pool:
    """`workers` processes behind one bounded queue; see the module docstring for the answers."""

    def __init__(
        self,
        app: Callable[..., Any],
        workers: int,
        queue_size: int,
        timeout: float,
        init: Callable[[], None] = lambda: None,
    ) -> None:
        self.app, self.size, self.timeout, self.init = app, workers, timeout, init
        self.queue_size = queue_size
        # NB: unbounded; submit() bounds it. A job put for an idle slot stays in the queue
        # until that slot's task runs, so a maxsize would refuse work a worker is free for.
        self.queue: "asyncio.Queue[Optional[Job]]" = asyncio.Queue()
        self.workers: List[Optional[_Worker]] = [None] * workers
        self.busy = 0
        self.starting = 0
        self.replaced = 0
        self._tasks: List["asyncio.Task[None]"] = []

    def alive(self) -> int:
        return sum(1 for w in self.workers if w is not None)

    def healthy(self) -> bool:
        """A worker is running or being started: /ping's 200. NB: a worker replaced after a
        timeout or a crash is a moment's gap, not a reason for SageMaker to pull the instance."""
        return self.alive() > 0 or self.starting > 0

    async def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(child, self.app, self.init)
        child.close()
        reader, writer = await asyncio.open_connection(sock=parent)
        return _Worker(pid, reader, writer)

    async def start(self) -> None:
        for i in range(self.size):
            self.workers[i] = await self._spawn()
        self._tasks = [asyncio.create_task(self._slot(i)) for i in range(self.size)]

    def submit(self, environ: Dict[str, Any], body: "bytes | bytearray") -> "asyncio.Future[Response]":
        """The answer's future; already done with a 503 when the queue is full."""
        future: "asyncio.Future[Response]" = asyncio.get_running_loop().create_future()
        if self.queue.qsize() + self.busy >= self.size + self.queue_size:
            future.set_result(overloaded(f"{self.size} workers busy and {self.queue_size} requests waiting"))
        else:
            self.queue.put_nowait(Job(environ, body, time.monotonic() + self.timeout, future))
        return future

    async def _slot(self, index: int) -> None:
        while True:
            job = await self.queue.get()
            if job is None:
                return
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                job.future.set_result(overloaded(f"the request waited {self.timeout:.0f} s in the queue"))
                continue
            self.busy += 1
            try:
                answer = await self._run(index, job, remaining)
            finally:
                self.busy -= 1
            if not job.future.done():
                job.future.set_result(answer)

    async def _run(self, index: int, job: Job, remaining: float) -> Response:
        worker = self.workers[index]
        try:
            if worker is not None and worker.reader.at_eof():  # NB: died while idle: replace it, no one to tell
                log.error("worker %d %s while idle; replaced", worker.pid, describe_exit(await worker.reap()))
                worker = self.workers[index] = None
            if worker is None:  # NB: its replacement failed to start, or it died idle; start one now
                worker = self.workers[index] = await self._spawn()
        except OSError as e:
            log.error("could not start a worker: %s", e)
            return overloaded(f"no worker could be started ({e})")
        try:
            async with asyncio.timeout(remaining):
                return await worker.call(job.environ, job.body)
        except TimeoutError:
            log.error(
                "POST /invocations: 504 predict did not finish within %.0f s; worker %d killed and replaced",
                self.timeout,
                worker.pid,
            )
            worker.kill()
            await self._replace(index, worker, crashed=False)
            return plain(
                504,
                f"predict() did not finish within {self.timeout:.0f} s (SAGEMAKER_MODEL_SERVER_TIMEOUT or --timeout); "
                "its worker was restarted. Fix: send fewer records per request, or raise the limit.\n",
            )
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            how = describe_exit(await self._replace(index, worker))
            log.error("POST /invocations: 502 worker %d %s mid-request; replaced", worker.pid, how)
            return plain(502, f"the worker running this request {how}; it was replaced. Retry the request.\n")

    async def _replace(self, index: int, worker: _Worker, crashed: bool = True) -> Optional[int]:
        self.workers[index] = None
        self.starting += 1
        try:
            status = await worker.reap()
            self.replaced += 1
            if crashed and time.monotonic() - worker.started < CRASH_LOOP_SECONDS:
                await asyncio.sleep(CRASH_LOOP_SECONDS)
            try:
                self.workers[index] = await self._spawn()
            except OSError as e:  # NB: e.g. out of memory for fork; the next request retries
                log.error("could not start a worker: %s", e)
        finally:
            self.starting -= 1
        return status

    async def stop(self, grace: float) -> None:
        """End every worker (EOF on its socket): at once when idle, killed if still busy after `grace`."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.reap(grace) for w in self.workers if w is not None))
        self.workers = [None] * self.size

    def fail_queued(self, why: str) -> None:
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_result(overloaded(why))
