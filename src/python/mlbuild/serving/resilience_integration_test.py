"""`serve` under the conditions an endpoint lives in, over real sockets.

Slow clients that never finish their headers or bodies, a predict that hangs, workers that
die mid-request, more clients than workers, a flood of maximum-size payloads, SIGTERM under
load, a model that fails to load. The server is the real `python -m mlbuild.serving` with 2 workers, serving `faultpipe`
(testing.py): its predict hangs, exits, is killed or sleeps when the first column says so.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from mlbuild.serving.local_server import serve_argv, server_process, stop, wait_for_port
from mlbuild.serving.testing import fault_pipeline

Answer = Tuple[int, Dict[str, str], bytes]


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, dict]:
    root = tmp_path_factory.mktemp("faultpipe")
    return root / "model", fault_pipeline(root)


def address(url: str) -> Tuple[str, int]:
    host, port = url.rsplit("/", 1)[-1].split(":")
    return host, int(port)


def request(url: str, method: str, path: str, body: bytes = b"", timeout: float = 30) -> Answer:
    conn = http.client.HTTPConnection(*address(url), timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers={"Content-Type": "text/csv"} if body else {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def invoke(url: str, csv: str, timeout: float = 30) -> Answer:
    return request(url, "POST", "/invocations", csv.encode(), timeout)


def ping_seconds(url: str, count: int = 20) -> List[float]:
    took = []
    for _ in range(count):
        start = time.perf_counter()
        assert request(url, "GET", "/ping", timeout=10)[0] == 200
        took.append(time.perf_counter() - start)
    return sorted(took)


def workers_of(pid: int) -> List[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class SlowClients:
    """`count` connections that send a request one byte every `pace` seconds and never finish;
    half stall in the headers, half in a body they announced."""

    def __init__(self, url: str, count: int, pace: float = 0.2) -> None:
        self.url, self.count, self.pace = url, count, pace
        self.stop = threading.Event()
        self.closed_by_server = 0
        self.threads = [threading.Thread(target=self._one, args=(i,), daemon=True) for i in range(count)]

    def _one(self, i: int) -> None:
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n"
        with socket.create_connection(address(self.url)) as sock:
            if i % 2:  # NB: whole headers, then a body that trickles
                sock.sendall(head)
                head = b"1,2,3\n" * 200
            for byte in head:
                if self.stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    self.closed_by_server += 1
                    return
                time.sleep(self.pace)

    def __enter__(self) -> "SlowClients":
        for t in self.threads:
            t.start()
        time.sleep(1.0)  # NB: every one of them connected and part-way through
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()


def test_eight_slow_clients_starve_neither_ping_nor_invocations(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=2, environ=env) as (url, _), SlowClients(url, 8):
        took = ping_seconds(url)
        assert took[len(took) // 2] < 0.1 and took[-1] < 2, took
        start = time.perf_counter()
        assert invoke(url, "1,2\n3,4\n")[0::2] == (200, b"6.0\n14.0\n")
        assert time.perf_counter() - start < 2


def test_a_request_whose_headers_stall_gets_408_and_is_closed(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=1, environ=env, args=["--header-timeout", "1", "--body-timeout", "1"]) as (
        url,
        _,
    ):
        for partial in (
            b"POST /invocations HTTP/1.1\r\nHost: x\r\n",
            b"POST /invocations HTTP/1.1\r\nContent-Length: 10\r\n\r\n1,2",
        ):
            with socket.create_connection(address(url), timeout=10) as sock:
                sock.sendall(partial)
                start = time.perf_counter()
                answer = sock.recv(65536)
                assert answer.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in answer, answer
                assert sock.recv(1) == b""  # closed
                assert time.perf_counter() - start < 3


def test_a_hung_predict_gets_504_at_the_limit_and_its_worker_is_replaced(
    faults: Tuple[Path, dict], tmp_path: Path
) -> None:
    model, env = faults
    log = tmp_path / "serve.log"
    with server_process(model, workers=2, environ=env, log_path=log, args=["--timeout", "2"]) as (url, proc):
        before = set(workers_of(proc.pid))
        with ThreadPoolExecutor(4) as pool:
            start = time.perf_counter()
            hung = pool.submit(invoke, url, "hang\n")
            time.sleep(0.2)
            others = [invoke(url, "1,1\n") for _ in range(10)]  # NB: served by the other worker meanwhile
            status, _, body = hung.result()
            took = time.perf_counter() - start
        assert status == 504 and b"did not finish within 2 s" in body and 2 <= took < 4
        assert {a[0] for a in others} == {200}
        assert invoke(url, "1,1\n")[0::2] == (200, b"4.0\n")
        assert len(set(workers_of(proc.pid)) - before) == 1  # one fresh worker
    assert "504 predict did not finish within 2 s" in log.read_text()


@pytest.mark.parametrize(
    "how, expected", [("kill", b"killed by signal 9"), ("exit", b"exited with 3"), ("external", b"killed by signal 9")]
)
def test_a_worker_that_dies_mid_request_fails_only_that_request(
    faults: Tuple[Path, dict], how: str, expected: bytes
) -> None:
    model, env = faults
    with server_process(model, workers=2, environ=env) as (url, proc):
        with ThreadPoolExecutor(8) as pool:
            doomed = pool.submit(invoke, url, "sleep,1.5\n" if how == "external" else f"{how}\n")
            if (
                how == "external"
            ):  # NB: `kill -9` of both workers (the busy one and the idle one), as an OOM killer might
                time.sleep(0.5)
                for pid in workers_of(proc.pid):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
            fine = [pool.submit(invoke, url, f"{i},1\n") for i in range(20)]
            status, _, body = doomed.result()
            assert status == 502 and expected in body, body
            assert [f.result()[0::2] for f in fine] == [(200, f"{2 * (i + 1):.1f}\n".encode()) for i in range(20)]
        assert len(workers_of(proc.pid)) == 2
        assert request(url, "GET", "/ping")[0] == 200


def test_past_the_queue_bound_requests_get_503_at_once_and_ping_stays_fast(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=1, environ=env, args=["--queue", "2"]) as (url, _):
        with ThreadPoolExecutor(10) as pool:
            futures = []
            for _ in range(10):
                futures.append(
                    pool.submit(lambda: (time.perf_counter(), invoke(url, "sleep,1\n"), time.perf_counter()))
                )
            took = ping_seconds(url, 10)
            results = [f.result() for f in futures]
        statuses = sorted(r[1][0] for r in results)
        assert statuses == [200] * 3 + [503] * 7, statuses
        refused = [r for r in results if r[1][0] == 503]
        assert all(end - start < 0.5 for start, _, end in refused)
        assert all(r[1][1]["Retry-After"] == "1" for r in refused)
        assert took[-1] < 0.5, took


def test_a_flood_of_maximum_size_payloads_keeps_memory_bounded(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=2, environ=env, args=["--max-payload-mb", "4"]) as (url, proc):
        body = "sleep,0.2," + "x" * (4 * 1024 * 1024 - 20) + "\n"  # NB: one record: cheap to parse, 4 MB to hold
        with ThreadPoolExecutor(48) as pool:  # NB: 48 x 4 MB = 192 MB sent; the buffer holds 64 MB
            results = list(pool.map(lambda _: invoke(url, body, timeout=60)[0], range(48)))
            assert request(url, "GET", "/ping")[0] == 200
        peak_kb = int(
            next(
                line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if line.startswith("VmHWM")
            ).split()[1]
        )
        assert set(results) <= {200, 503} and results.count(200) >= 2, results
        print(
            f"flood: {results.count(200)} answered, {results.count(503)} refused, server peak RSS {peak_kb / 1024:.0f} MB"
        )
        assert peak_kb < 64 * 1024 + 120 * 1024, f"server peak RSS {peak_kb} kB"


def test_sigterm_under_load_answers_every_accepted_request_and_exits_promptly(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=2, environ=env) as (url, proc):
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(invoke, url, "sleep,1\n") for _ in range(6)]
            time.sleep(0.3)  # NB: 2 in flight, 4 queued
            start = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(address(url), timeout=5)
            assert [f.result()[0] for f in futures] == [200] * 6
        assert proc.wait(timeout=30) == 0
        assert time.perf_counter() - start < 10


def test_ping_stays_200_while_the_only_worker_is_killed_and_replaced(faults: Tuple[Path, dict]) -> None:
    model, env = faults
    with server_process(model, workers=1, environ=env, args=["--timeout", "1"]) as (url, _):
        with ThreadPoolExecutor(1) as pool:
            hung = pool.submit(invoke, url, "hang\n")
            pings = []
            while not hung.done():
                pings.append(request(url, "GET", "/ping", timeout=5)[0])
                time.sleep(0.01)
            assert hung.result()[0] == 504
        pings += [request(url, "GET", "/ping")[0] for _ in range(20)]
        assert set(pings) == {200} and len(pings) > 40
        assert invoke(url, "1,1\n")[0::2] == (200, b"4.0\n")


def test_a_model_that_fails_to_load_fails_ping_with_the_reason_and_the_server_stays_up(
    faults: Tuple[Path, dict], tmp_path: Path
) -> None:
    _, env = faults
    model = tmp_path / "model"
    model.mkdir()
    (model / "corrupt").write_text("")
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            serve_argv(model, tmp_path / "port", 2),
            env={**env, "PYTHONPATH": os.pathsep.join([env["PYTHONPATH"], *filter(None, sys.path)])},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{wait_for_port(tmp_path / 'port', proc, log)}"
        reason = f"the model failed to load: pipeline src/python/faultpipe:train: stage load_model() raised ValueError: cannot unpickle {model}/corrupt: truncated"
        for method, path, body in (("GET", "/ping", b""), ("POST", "/invocations", b"1,2\n"), ("GET", "/ping", b"")):
            status, _, answer = request(url, method, path, body, timeout=10)
            assert status == 500 and answer.decode().startswith(reason), (method, path, status, answer)
        time.sleep(0.5)
        assert (
            proc.poll() is None and workers_of(proc.pid) == []
        )  # NB: up, and no worker forked for a model that is not there
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0 and time.perf_counter() - start < 5
    finally:
        stop(proc)
    text = log.read_text()
    assert text.count("Traceback") == 1 and "ValueError: cannot unpickle" in text, text
