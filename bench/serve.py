#!/usr/bin/env python3.11
"""Benchmark: `serve` against a minimal stdlib server doing the same predict, and under faults.

    PYTHONPATH=src/python python3.11 bench/serve.py [--quick] [--seconds 5] [--workers N]
        [--compare GIT_REF] [--faults | --faults-only [--check]] [--json FILE]

A benchmark, not a test: it prints the numbers and exits 0 unless something fails outright.
It trains the churn pipeline on its committed sample data (a few seconds), then measures, all
on 127.0.0.1:

  - in-process: the churn `predict` stage alone (parse the CSV, predict, write the CSV) for a
    1-row and a 1,000-row payload: the floor any server adds to;
  - POST /invocations: requests/s and p50/p99 latency for 1-row and 1,000-row CSV payloads at
    1, 4 and 16 concurrent clients (keep-alive HTTP/1.1 connections, one per client thread, in
    a separate process from the servers), against
      serve      mlbuild's server: an asyncio front before pre-forked workers (default: one per CPU)
      serve@REF  with --compare: `serve` as it was at that commit (e.g. the gunicorn one), same run
      reference  http.server.ThreadingHTTPServer in one process, calling the very same
                 parse/predict/serialise functions, so the difference is the server's overhead;
  - batch transform: rows/s of the transform agent (MultiRecord, 6 MB payloads, as many
    concurrent requests as workers) over a 100,000-row file, through each server;
  - with --faults (or --faults-only, which needs no scikit-learn): the load-and-fault suite,
    each server fresh per scenario with a pipeline whose predict sleeps, hangs or dies on cue:
    max(8, 4 x workers) clients stalled in their headers, a hung predict (cut at 3 s), a worker
    killed with -9 mid-request, twice the capacity for --overload-seconds (default 60) open
    loop, 48 clients sending 6 MB payloads, SIGTERM under 16 clients; for each: /ping p50/p99
    (pinged every 100 ms meanwhile), answers by status, refused connections, requests left
    without an answer, and the peak memory (Pss) of the server and its workers together.

The overhead of a server at 1,000-row payloads is its p50 at 1 client minus the in-process
p50 of the predict stage alone (records already parsed), as a share of the latter (goal: at
most 20 %; parsing the CSV and writing the answer count as overhead); the 1-row p99 at 4 clients has a
goal of under 50 ms. Needs the lock's scikit-learn: a Pants-built venv (`./pants export
--resolve=python-default`), or `python3.11 -m venv --system-site-packages V && V/bin/pip install
scikit-learn==1.5.2`; a --compare with a commit whose `serve` ran on gunicorn (c43269e and before)
needs gunicorn==27.0.1 there too (the lock no longer has it).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src/python"))

CLIENTS = (1, 4, 16)
PIPELINE = "churn"


def _require(happy: bool = True, gunicorn: bool = False) -> None:
    missing = []
    for name in (("sklearn", "numpy") if happy else ()) + (("gunicorn",) if gunicorn else ()) + ("yaml",):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        print(f"bench/serve.py needs {', '.join(missing)}. Fix: run it with a Python that has them, e.g. "
              f"python3.11 -m venv --system-site-packages V && V/bin/pip install scikit-learn==1.5.2 numpy==2.1.3"
              f"{' gunicorn==27.0.1' if gunicorn else ''}, then PYTHONPATH=src/python V/bin/python bench/serve.py", file=sys.stderr)
        sys.exit(2)


# --- the reference server: stdlib, one process, the same predict path ------------------------

def reference_server(model_dir: Path, run_dir: Path, port_file: Path) -> None:
    """Serve POST /invocations with http.server; writes the port to `port_file`, runs until killed."""
    from mlbuild.runtime.pipeline import pipeline_from_environ
    from mlbuild.serving.content_types import CSV, parse_records, serialise
    from mlbuild.serving.predictor import Predictor

    predictor = Predictor.load(pipeline_from_environ(os.environ), run_dir, model_dir)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NB: --faults-only needs no scikit-learn (nor its threadpoolctl)
        pass
    else:
        threadpool_limits(1)  # NB: as each serve worker runs (server.limit_native_threads); see also OMP_NUM_THREADS below

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # NB: headers and body go out in two writes; without TCP_NODELAY the body waits for
            # the client's delayed ACK (40 ms). asyncio (serve's front) sets it on every connection.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._reply(200, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(200, serialise(predictor.predict(parse_records(body, CSV)), CSV))

        def _reply(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file.with_suffix(".tmp").write_text(str(server.server_port))
    os.replace(port_file.with_suffix(".tmp"), port_file)  # NB: whole, or the starter may read it empty
    server.serve_forever()


@contextmanager
def start_reference(model_dir: Path, run_dir: Path, environ: Dict[str, str]) -> Iterator[Tuple[str, "subprocess.Popen[bytes]"]]:
    from mlbuild.serving.local_server import stop, wait_for_port

    with tempfile.TemporaryDirectory() as work:
        port_file, log = Path(work) / "port", Path(work) / "log"
        with open(log, "wb") as out:
            # NB: one OpenMP thread in every handler thread: threadpool_limits only sets the
            # calling thread's pool, and each new thread would start a pool of one per CPU.
            proc = subprocess.Popen([sys.executable, __file__, "--reference-server", str(model_dir), str(run_dir), str(port_file)],
                                    env={**environ, "OMP_NUM_THREADS": "1"}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{wait_for_port(port_file, proc, log)}", proc
        finally:
            stop(proc)


# --- the load generator: runs in its own process ----------------------------------------------

def load(url: str, body: bytes, clients: int, seconds: float) -> Dict[str, float]:
    """`clients` threads POSTing `body` back to back for `seconds`; latencies in ms."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    latencies: List[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine: List[float] = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                ok = False
            if ok:
                mine.append((time.perf_counter() - start) * 1000)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
    return {"requests": len(ordered), "errors": errors[0], "rps": len(ordered) / elapsed, "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def run_load(url: str, body: bytes, clients: int, seconds: float) -> Dict[str, float]:
    """`load` in a child process, so the clients' GIL is not the servers'."""
    with tempfile.NamedTemporaryFile(suffix=".csv") as payload:
        payload.write(body)
        payload.flush()
        out = subprocess.run([sys.executable, __file__, "--load", url, payload.name, str(clients), str(seconds)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# --- the load-and-fault suite -----------------------------------------------------------------
#
# Each scenario runs against a fresh server of each kind serving `faultpipe` (its predict
# sleeps, hangs or dies when the first column says so), with SAGEMAKER_MODEL_SERVER_TIMEOUT=3,
# and its clients run in a child process (`--fault`), so their GIL is not the servers'.

FAULT_TIMEOUT_S = 3
SCENARIOS = ("slow clients", "hung predict", "kill -9 mid-request", "2x overload", "payload flood", "SIGTERM under load")


def _tree_rss_mb(pid: int) -> float:
    """Proportional set size of a process and its descendants, in MB (0 once it is gone).

    NB: Pss, not the sum of RSS: forked workers share the server's pages (the model, the
    interpreter), and RSS would count them once per process."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        total += int(next((line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")), "0"))
    return total / 1024


def _post(host: str, port: int, body: bytes, timeout: float = 10) -> int:
    """The status; -1 when the connection was refused (not accepted: nothing lost), 0 when the
    server reset, closed or did not answer within `timeout`."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        response.read()
        return response.status
    except ConnectionRefusedError:
        return -1
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _ping_s(host: str, port: int, failures: Dict[str, int]) -> float:
    """Seconds a GET /ping took; inf when it failed (counted in `failures` by status or error)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/ping")
        status = conn.getresponse().status
        why = None if status == 200 else str(status)
    except (OSError, http.client.HTTPException) as e:
        why = type(e).__name__
    finally:
        conn.close()
    if why is None:
        return time.perf_counter() - start
    failures[why] = failures.get(why, 0) + 1
    return float("inf")


def fault(name: str, url: str, pid: int, workers: int, seconds: float) -> Dict[str, object]:
    """One scenario's clients against the server at `url` (process `pid`); counted outcomes."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    port_n = int(port)
    statuses: List[int] = []
    pings: List[float] = []
    peak = [0.0]
    lock = threading.Lock()
    stop = threading.Event()
    extra: Dict[str, object] = {}
    ping_failures: Dict[str, int] = {}

    def record(status: int) -> None:
        with lock:
            statuses.append(status)

    def pinger() -> None:
        while not stop.is_set():
            pings.append(_ping_s(host, port_n, ping_failures))
            stop.wait(0.1)

    def sampler() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(pid))
            stop.wait(0.2)

    def looping(body: bytes, until: float) -> None:
        while time.monotonic() < until and not stop.is_set():
            record(_post(host, port_n, body))

    background = [threading.Thread(target=pinger, daemon=True), threading.Thread(target=sampler, daemon=True)]
    for t in background:
        t.start()
    end = time.monotonic() + seconds
    threads: List[threading.Thread] = []
    if name == "slow clients":  # NB: 4 x workers (at least 8) that never finish their headers
        socks = []
        for _ in range(max(8, 4 * workers)):
            s = socket.create_connection((host, port_n))
            s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        threads = [threading.Thread(target=looping, args=(b"1,2\n", end)) for _ in range(2)]
    elif name == "hung predict":  # NB: one hangs; two clients keep asking meanwhile
        started = time.monotonic()
        hung = threading.Thread(target=lambda: extra.update(hung_status=_post(host, port_n, b"hang\n", timeout=30), hung_s=round(time.monotonic() - started, 1)))
        threads = [hung, *(threading.Thread(target=looping, args=(b"1,2\n", end)) for _ in range(2))]
    elif name == "kill -9 mid-request":  # NB: 4 clients of 100 ms predicts; one worker killed at 1 s
        threads = [threading.Thread(target=looping, args=(b"sleep,0.1\n", end)) for _ in range(4)]
    elif name == "2x overload":  # NB: open loop at twice what `workers` 50 ms predicts can answer
        rate = 2 * workers / 0.05
        def sender() -> None:
            n = 0
            start = time.monotonic()
            while time.monotonic() < end:
                due = start + n / rate
                time.sleep(max(0.0, due - time.monotonic()))
                threading.Thread(target=lambda: record(_post(host, port_n, b"sleep,0.05\n")), daemon=True).start()
                n += 1
            extra["sent"] = n
        threads = [threading.Thread(target=sender)]
    elif name == "payload flood":  # NB: 48 clients, each a maximum-size (6 MB) payload in a loop
        body = b"sleep,0.2," + b"x" * (6 * 1024 * 1024 - 20) + b"\n"
        threads = [threading.Thread(target=looping, args=(body, end)) for _ in range(48)]
    elif name == "SIGTERM under load":  # NB: 16 clients of 200 ms predicts; SIGTERM at 2 s
        threads = [threading.Thread(target=looping, args=(b"sleep,0.2\n", end)) for _ in range(16)]
    for t in threads:
        t.start()
    if name == "kill -9 mid-request":
        time.sleep(1.0)
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if children:
            os.kill(children[0], 9)
            extra["killed"] = "a worker"
        else:
            extra["killed"] = "nothing (no worker processes)"
    if name == "SIGTERM under load":
        time.sleep(2.0)
        os.kill(pid, 15)
        term = time.monotonic()
        while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0 and time.monotonic() - term < 40:
            time.sleep(0.02)
        extra["exit_s"] = round(time.monotonic() - term, 2)
        stop.set()
    for t in threads:
        t.join()
    if name == "2x overload":
        time.sleep(FAULT_TIMEOUT_S + 10)  # NB: the open loop's last requests
    stop.set()
    for t in background:
        t.join()
    if ping_failures:
        extra["ping_failures"] = ping_failures
    ordered = sorted(p for p in pings if p != float("inf"))
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")
    count = lambda pred: sum(1 for s in statuses if pred(s))
    return {"scenario": name, "ping_p50_ms": pick(0.5), "ping_p99_ms": pick(0.99), "ping_failed": len(pings) - len(ordered),
            "ok": count(lambda s: s == 200), "5xx": count(lambda s: s >= 500 and s != 503), "503": count(lambda s: s == 503),
            "refused": count(lambda s: s == -1), "no_answer": count(lambda s: s == 0), "peak_mb": round(peak[0]), **extra}


def run_faults(servers: Dict[str, object], workers: int, seconds: float, overload_seconds: float) -> List[Dict[str, object]]:
    rows: List[Dict[str, object]] = []
    for scenario in SCENARIOS:
        for server_name, start in servers.items():
            with start() as (url, proc):
                length = overload_seconds if scenario == "2x overload" else seconds
                out = subprocess.run([sys.executable, __file__, "--fault", scenario, url, str(proc.pid), str(workers), str(length)],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"fault scenario {scenario!r} against {server_name} failed:\n{out.stderr}")
                row = {"server": server_name, **json.loads(out.stdout)}
                rows.append(row)
                print(f"{scenario:20} {server_name:12} {_fault_line(row)}", file=sys.stderr)
    return rows


FAULT_COLUMNS = ("scenario", "server", "ping_p50_ms", "ping_p99_ms", "ping_failed", "ok", "5xx", "503", "refused", "no_answer", "peak_mb")


def _fault_line(row: Dict[str, object]) -> str:
    notes = ", ".join(f"{k} {v}" for k, v in row.items() if k not in FAULT_COLUMNS)
    return (f"/ping p50 {row['ping_p50_ms']:.1f} ms p99 {row['ping_p99_ms']:.1f} ms (failed {row['ping_failed']}); "
            f"200 {row['ok']}, 5xx {row['5xx']}, 503 {row['503']}, refused {row['refused']}, no answer {row['no_answer']}; peak {row['peak_mb']} MB" + (f"; {notes}" if notes else ""))


# --- the benchmark ----------------------------------------------------------------------------

def records_csv(rows: int) -> bytes:
    from mlbuild.serving.testing import REPO_SRC

    lines = (REPO_SRC / f"pipelines/{PIPELINE}/data/validation/{PIPELINE}.csv").read_text().splitlines()[1:]
    lines = [line.rsplit(",", 1)[0] for line in lines]  # NB: the label is the last column
    return "".join(lines[i % len(lines)] + "\n" for i in range(rows)).encode()


def in_process_ms(predictor: object, body: bytes, seconds: float) -> Dict[str, float]:
    """p50 of the predict stage alone (records already parsed) and with parsing and the CSV answer."""
    from mlbuild.serving.content_types import CSV, parse_records, serialise

    records = parse_records(body, CSV)
    times: Dict[str, List[float]] = {"predict": [], "parse_predict_serialise": []}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(times["predict"]) < 5:
        start = time.perf_counter()
        predictor.predict(records)
        middle = time.perf_counter()
        serialise(predictor.predict(parse_records(body, CSV)), CSV)
        times["predict"].append((middle - start) * 1000)
        times["parse_predict_serialise"].append((time.perf_counter() - middle) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def transform_rows_per_second(url: str, rows: int, workers: int, work: Path) -> float:
    from mlbuild.serving.transform import TransformConfig, run_transform

    data = work / f"in-{rows}"
    data.mkdir(exist_ok=True)
    (data / "rows.csv").write_bytes(records_csv(rows))
    result = run_transform(url, data, work / f"out-{url.rsplit(':', 1)[-1]}", TransformConfig(max_concurrent_transforms=workers))
    assert result.records == rows, result
    return rows / result.seconds


@contextmanager
def tree_at(ref: str) -> Iterator[Path]:
    """`src/python/mlbuild` as it was at git `ref`, in a temporary folder (its `src/python`)."""
    with tempfile.TemporaryDirectory(prefix="mlbuild-bench-ref-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src/python/mlbuild"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp) / "src/python"


def _servers(model_dir: Path, run_dir: Path, workers: int, environ: Dict[str, str], old_tree: Optional[Path], ref: str) -> Dict[str, Callable[[], ContextManager[Tuple[str, "subprocess.Popen[bytes]"]]]]:
    """serve (this tree), serve at `ref` (when given) and the stdlib reference: each starts as (url, process)."""
    from mlbuild.serving.local_server import server_process

    servers: Dict[str, Callable[[], ContextManager[Tuple[str, "subprocess.Popen[bytes]"]]]] = {
        "serve": lambda: server_process(model_dir, workers=workers, environ=environ)}
    if old_tree is not None:
        old = {**environ, "PYTHONPATH": os.pathsep.join([str(old_tree), environ.get("PYTHONPATH", "")])}
        servers[f"serve@{ref}"] = lambda: server_process(model_dir, workers=workers, environ=old)
    servers["reference"] = lambda: start_reference(model_dir, run_dir, environ)
    return servers


def happy_path(args: argparse.Namespace, work: Path, workers: int, seconds: float, old_tree: Optional[Path]) -> Dict[str, object]:
    """Every server up at once, every cell measured on each in turn (the order reversed every
    other round), `args.rounds` times: medians and ranges, so a shared machine's load falls on
    all of them alike."""
    from threadpoolctl import threadpool_limits

    from mlbuild.serving.predictor import Predictor
    from mlbuild.serving.testing import pipeline_environ, train_real

    transform_rows = 10_000 if args.quick else args.transform_rows
    environ = {**os.environ, **pipeline_environ(PIPELINE), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    os.environ.update(pipeline_environ(PIPELINE))
    results: Dict[str, object] = {"transform_rows": transform_rows, "rounds": args.rounds, "load_average_before": os.getloadavg()}
    print(f"training {PIPELINE} on its sample data ...", file=sys.stderr)
    pipeline, run_dir = train_real(PIPELINE, work / "runs")
    model_dir = run_dir / "model"
    predictor = Predictor.load(pipeline, run_dir, model_dir)
    payloads = {"1 row": records_csv(1), "1000 rows": records_csv(1000)}
    with threadpool_limits(1):
        floor = {name: in_process_ms(predictor, body, seconds) for name, body in payloads.items()}
    results["in_process_p50_ms"] = floor
    cells: Dict[Tuple[str, str, int], List[Dict[str, float]]] = {}
    rates: Dict[str, List[float]] = {}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(start())[0] for name, start in _servers(model_dir, run_dir, workers, environ, old_tree, args.compare).items()}
        for url in urls.values():
            for body in payloads.values():  # NB: warm every worker (lazy imports, first predict)
                run_load(url, body, workers * 2, min(1.0, seconds))
        for round_ in range(args.rounds):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for payload_name, body in payloads.items():
                for clients in CLIENTS:
                    for server_name in order:
                        cell = run_load(urls[server_name], body, clients, seconds)
                        cells.setdefault((server_name, payload_name, clients), []).append(cell)
                        print(f"round {round_ + 1} {server_name:12} {payload_name:9} {clients:2} clients: {cell['rps']:8.1f} req/s  p50 {cell['p50_ms']:7.2f} ms  "
                              f"p99 {cell['p99_ms']:7.2f} ms  errors {cell['errors']}", file=sys.stderr)
            for server_name in order:
                (work / f"transform-{round_}").mkdir(exist_ok=True)
                rates.setdefault(server_name, []).append(transform_rows_per_second(urls[server_name], transform_rows, workers, work / f"transform-{round_}"))
    results["invocations"] = [{"server": server, "payload": payload, "clients": clients, **summary(runs)} for (server, payload, clients), runs in
                              sorted(cells.items(), key=lambda item: (list(urls).index(item[0][0]), item[0][1], item[0][2]))]
    results["transform_rows_per_s"] = {name: {"median": statistics.median(values), "range": [min(values), max(values)]} for name, values in rates.items()}
    results["load_average_after"] = os.getloadavg()
    return results


def summary(runs: List[Dict[str, float]]) -> Dict[str, object]:
    """Medians of a cell's runs, with the range of each figure and the errors summed."""
    out: Dict[str, object] = {"errors": sum(int(r["errors"]) for r in runs)}
    for key in ("rps", "p50_ms", "p99_ms"):
        values = [r[key] for r in runs]
        out[key], out[f"{key}_range"] = statistics.median(values), [min(values), max(values)]
    return out


def faults(args: argparse.Namespace, work: Path, workers: int, old_tree: Optional[Path]) -> List[Dict[str, object]]:
    from mlbuild.serving.testing import fault_pipeline

    env = fault_pipeline(work / "faultpipe")
    environ = {**env, "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(FAULT_TIMEOUT_S),
               "PYTHONPATH": os.pathsep.join([env["PYTHONPATH"], *(p for p in sys.path if p)])}
    servers = _servers(work / "faultpipe" / "model", work / "faultpipe", workers, environ, old_tree, args.compare)
    seconds = 4.0 if args.quick else args.fault_seconds
    return run_faults(servers, workers, seconds, 5.0 if args.quick else args.overload_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s a cell, a 10,000-row transform, 4 s fault scenarios: checks it works, not figures")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each load cell runs (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="measure every cell this many times, the servers interleaved (default 1): medians and ranges")
    parser.add_argument("--workers", type=int, help="serve's workers (default: one per CPU)")
    parser.add_argument("--transform-rows", type=int, default=100_000)
    parser.add_argument("--compare", metavar="GIT_REF", help="also measure `serve` as it was at this commit (e.g. main), in the same run")
    parser.add_argument("--faults", action="store_true", help="also run the load-and-fault suite")
    parser.add_argument("--faults-only", action="store_true", help="only the load-and-fault suite (needs no scikit-learn)")
    parser.add_argument("--fault-seconds", type=float, default=10.0, help="how long each fault scenario runs (default 10)")
    parser.add_argument("--overload-seconds", type=float, default=60.0, help="how long the 2x overload runs (default 60)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--check", action="store_true", help="exit 1 when serve misses a goal of the fault suite (for CI)")
    args = parser.parse_args()
    _require(happy=not args.faults_only)
    from mlbuild.serving.server import cpu_count

    seconds = 1.0 if args.quick else args.seconds
    workers = args.workers or cpu_count()
    results: Dict[str, object] = {"cpus": cpu_count(), "workers": workers, "seconds_per_cell": seconds, "compare": args.compare}
    with tempfile.TemporaryDirectory(prefix="mlbuild-bench-serve-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        old_tree = stack.enter_context(tree_at(args.compare)) if args.compare else None
        if old_tree is not None and "gunicorn" in (old_tree / "mlbuild/serving/server.py").read_text():
            _require(happy=False, gunicorn=True)
        if not args.faults_only:
            results.update(happy_path(args, work, workers, seconds, old_tree))
            _report(results)
        if args.faults or args.faults_only:
            results["faults"] = faults(args, work, workers, old_tree)
            _report_faults(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    missed = check_faults(results.get("faults", [])) if args.check else []
    for line in missed:
        print(f"bench/serve.py: serve missed a goal: {line}", file=sys.stderr)
    return 1 if missed else 0


def check_faults(rows: List[Dict[str, object]]) -> List[str]:
    """What `serve` (this tree) got wrong in the suite, against SageMaker's hosting limits and its own design; [] when nothing."""
    missed = []
    for row in rows:
        if row["server"] != "serve":
            continue
        name = row["scenario"]
        if float(row["ping_p99_ms"]) >= 2000:
            missed.append(f"{name}: /ping p99 {row['ping_p99_ms']:.0f} ms (goal < 2 s)")
        if row["ping_failed"] and name != "SIGTERM under load":  # NB: after SIGTERM, refused is right
            missed.append(f"{name}: {row['ping_failed']} /ping failed ({row.get('ping_failures')})")
        if row["no_answer"]:
            missed.append(f"{name}: {row['no_answer']} requests got no answer (goal: each a status)")
        if name == "hung predict" and row.get("hung_status") != 504:
            missed.append(f"{name}: the hung request got {row.get('hung_status')} (goal 504)")
        if name == "kill -9 mid-request" and row["5xx"] != 1:
            missed.append(f"{name}: {row['5xx']} requests failed (goal: only the killed one)")
        if name == "SIGTERM under load" and not float(row.get("exit_s", 99)) < 30:
            missed.append(f"{name}: exited after {row.get('exit_s')} s (goal < 30 s)")
    return missed


def _report_faults(results: Dict[str, object]) -> None:
    print(f"\nload-and-fault suite: {results['workers']} workers, predict cut at {FAULT_TIMEOUT_S} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)\n")
    print("| scenario | server | /ping p50 ms | /ping p99 ms | /ping failed | 200 | 5xx | 503 | refused | no answer | peak MB | notes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in results["faults"]:
        notes = ", ".join(f"{k} {v}" for k, v in row.items() if k not in FAULT_COLUMNS)
        print(f"| {row['scenario']} | {row['server']} | {row['ping_p50_ms']:.1f} | {row['ping_p99_ms']:.1f} | {row['ping_failed']} | {row['ok']} | "
              f"{row['5xx']} | {row['503']} | {row['refused']} | {row['no_answer']} | {row['peak_mb']} | {notes} |")


def _report(results: Dict[str, object]) -> None:
    floor = results["in_process_p50_ms"]
    print(f"\n{results['cpus']} CPUs, serve with {results['workers']} workers, {results['seconds_per_cell']} s a cell, {results['rounds']} rounds "
          f"interleaved (medians, ranges in brackets); load average {_load(results['load_average_before'])} before, {_load(results['load_average_after'])} after\n")
    for payload in ("1 row", "1000 rows"):
        cell = floor[payload]
        print(f"in-process, {payload}, p50: predict stage {cell['predict']:.2f} ms; with parsing and the CSV answer {cell['parse_predict_serialise']:.2f} ms")
    print()
    rows: List[Dict[str, object]] = results["invocations"]
    span = lambda row, key, fmt: f"{row[key]:{fmt}} [{row[key + '_range'][0]:{fmt}}-{row[key + '_range'][1]:{fmt}}]"
    print("| server | payload | clients | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['server']} | {row['payload']} | {row['clients']} | {span(row, 'rps', '.1f')} | {span(row, 'p50_ms', '.2f')} | {span(row, 'p99_ms', '.2f')} | {row['errors']} |")
    for row in rows:
        if row["payload"] == "1000 rows" and row["clients"] == 1:
            predict = floor["1000 rows"]["predict"]
            overhead = (float(row["p50_ms"]) - predict) / predict * 100
            print(f"\n{row['server']}: overhead at 1000 rows, 1 client: {overhead:+.1f} % of the in-process predict stage (goal <= 20 %)", end="")
        if row["payload"] == "1 row" and row["clients"] == 4:
            print(f"\n{row['server']}: 1-row p99 at 4 clients: {row['p99_ms']:.2f} ms (goal < 50 ms)", end="")
    transform: Dict[str, Dict[str, object]] = results["transform_rows_per_s"]
    print("\n\nbatch transform, " + ", ".join(f"{name}: {t['median']:,.0f} rows/s [{t['range'][0]:,.0f}-{t['range'][1]:,.0f}]" for name, t in transform.items())
          + f" ({results['transform_rows']:,} rows)")
    if results.get("compare"):
        old = f"serve@{results['compare']}"
        by = {(r["server"], r["payload"], r["clients"]): r for r in rows}
        print(f"\nserve / {old} (medians; req/s above 1 and latency below 1 are better):")
        for (server, payload, clients), row in by.items():
            if server == "serve":
                base = by[(old, payload, clients)]
                print(f"  {payload:9} {clients:2} clients: req/s {float(row['rps']) / float(base['rps']):.2f}, p50 {float(row['p50_ms']) / float(base['p50_ms']):.2f}, "
                      f"p99 {float(row['p99_ms']) / float(base['p99_ms']):.2f}")
        print(f"  batch transform: rows/s {float(transform['serve']['median']) / float(transform[old]['median']):.2f}")


def _load(average: object) -> str:
    return "/".join(f"{v:.1f}" for v in average)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fault"]:
        print(json.dumps(fault(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))))
    elif sys.argv[1:2] == ["--reference-server"]:
        reference_server(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1:2] == ["--load"]:
        print(json.dumps(load(sys.argv[2], Path(sys.argv[3]).read_bytes(), int(sys.argv[4]), float(sys.argv[5]))))
    else:
        sys.exit(main())
