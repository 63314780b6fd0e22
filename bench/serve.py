#!/usr/bin/env python3.11
"""Benchmark: `serve` (gunicorn) against a minimal stdlib server doing the same predict.

    PYTHONPATH=src/python python3.11 bench/serve.py [--quick] [--seconds 5] [--workers N] [--json FILE]

A benchmark, not a test: it prints the numbers and exits 0 unless something fails outright.
It trains the churn pipeline on its committed sample data (a few seconds), then measures, all
on 127.0.0.1:

  - in-process: the churn `predict` stage alone (parse the CSV, predict, write the CSV) for a
    1-row and a 1,000-row payload: the floor any server adds to;
  - POST /invocations: requests/s and p50/p99 latency for 1-row and 1,000-row CSV payloads at
    1, 4 and 16 concurrent clients (keep-alive HTTP/1.1 connections, one per client thread, in
    a separate process from the servers), against
      serve      mlbuild's server: gunicorn, pre-forked sync workers (default: one per CPU)
      reference  http.server.ThreadingHTTPServer in one process, calling the very same
                 parse/predict/serialise functions, so the difference is the server's overhead;
  - batch transform: rows/s of the transform agent (MultiRecord, 6 MB payloads, as many
    concurrent requests as workers) over a 100,000-row file, through each server.

The overhead of a server at 1,000-row payloads is its p50 at 1 client minus the in-process
p50 of the predict stage alone (records already parsed), as a share of the latter (goal: at
most 20 %; parsing the CSV and writing the answer count as overhead); the 1-row p99 at 4 clients has a
goal of under 50 ms. Needs the lock's scikit-learn and gunicorn (a Pants-built venv, or
`python3.11 -m venv --system-site-packages V && V/bin/pip install scikit-learn==1.5.2 gunicorn==27.0.1`).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src/python"))

CLIENTS = (1, 4, 16)
PIPELINE = "churn"


def _require() -> None:
    missing = []
    for name in ("sklearn", "gunicorn", "numpy", "yaml"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        print(f"bench/serve.py needs {', '.join(missing)} (the lockfile's versions). Fix: run it with a Python that has "
              f"them, e.g. python3.11 -m venv --system-site-packages V && V/bin/pip install scikit-learn==1.5.2 "
              f"gunicorn==27.0.1 numpy==2.1.3, then PYTHONPATH=src/python V/bin/python bench/serve.py", file=sys.stderr)
        sys.exit(2)


# --- the reference server: stdlib, one process, the same predict path ------------------------

def reference_server(model_dir: Path, run_dir: Path, port_file: Path) -> None:
    """Serve POST /invocations with http.server; writes the port to `port_file`, runs until killed."""
    from threadpoolctl import threadpool_limits

    from mlbuild.runtime.pipeline import pipeline_from_environ
    from mlbuild.serving.content_types import CSV, parse_records, serialise
    from mlbuild.serving.predictor import Predictor

    predictor = Predictor.load(pipeline_from_environ(os.environ), run_dir, model_dir)
    threadpool_limits(1)  # NB: as each gunicorn worker runs (server.limit_native_threads); see also OMP_NUM_THREADS below

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # NB: headers and body go out in two writes; without TCP_NODELAY the body waits for
            # the client's delayed ACK (40 ms). gunicorn sets it on its listener.
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
    port_file.write_text(str(server.server_port))
    server.serve_forever()


@contextmanager
def start_reference(model_dir: Path, run_dir: Path, environ: Dict[str, str]) -> Iterator[str]:
    from mlbuild.serving.local_server import stop, wait_for_port

    with tempfile.TemporaryDirectory() as work:
        port_file, log = Path(work) / "port", Path(work) / "log"
        with open(log, "wb") as out:
            # NB: one OpenMP thread in every handler thread: threadpool_limits only sets the
            # calling thread's pool, and each new thread would start a pool of one per CPU.
            proc = subprocess.Popen([sys.executable, __file__, "--reference-server", str(model_dir), str(run_dir), str(port_file)],
                                    env={**environ, "OMP_NUM_THREADS": "1"}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{wait_for_port(port_file, proc, log)}"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s a cell and a 10,000-row transform: checks it works, not figures")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each load cell runs (default 5)")
    parser.add_argument("--workers", type=int, help="serve's workers (default: one per CPU)")
    parser.add_argument("--transform-rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    _require()
    from threadpoolctl import threadpool_limits

    from mlbuild.serving.local_server import local_server
    from mlbuild.serving.predictor import Predictor
    from mlbuild.serving.server import cpu_count
    from mlbuild.serving.testing import pipeline_environ, train_real

    seconds = 1.0 if args.quick else args.seconds
    transform_rows = 10_000 if args.quick else args.transform_rows
    workers = args.workers or cpu_count()
    environ = {**os.environ, **pipeline_environ(PIPELINE), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    os.environ.update(pipeline_environ(PIPELINE))
    results: Dict[str, object] = {"cpus": cpu_count(), "workers": workers, "seconds_per_cell": seconds, "transform_rows": transform_rows}
    with tempfile.TemporaryDirectory(prefix="mlbuild-bench-serve-") as tmp:
        work = Path(tmp)
        print(f"training {PIPELINE} on its sample data ...", file=sys.stderr)
        pipeline, run_dir = train_real(PIPELINE, work / "runs")
        model_dir = run_dir / "model"
        predictor = Predictor.load(pipeline, run_dir, model_dir)
        payloads = {"1 row": records_csv(1), "1000 rows": records_csv(1000)}
        with threadpool_limits(1):
            floor = {name: in_process_ms(predictor, body, seconds) for name, body in payloads.items()}
        results["in_process_p50_ms"] = floor
        servers = {"serve": lambda: local_server(model_dir, workers=workers, environ=environ),
                   "reference": lambda: start_reference(model_dir, run_dir, environ)}
        table: List[Dict[str, object]] = []
        transform: Dict[str, float] = {}
        for server_name, start in servers.items():
            with start() as url:
                for body in payloads.values():  # NB: warm every worker (lazy imports, first predict)
                    run_load(url, body, workers * 2, min(1.0, seconds))
                for payload_name, body in payloads.items():
                    for clients in CLIENTS:
                        cell = run_load(url, body, clients, seconds)
                        table.append({"server": server_name, "payload": payload_name, "clients": clients, **cell})
                        print(f"{server_name:9} {payload_name:9} {clients:2} clients: {cell['rps']:8.1f} req/s  p50 {cell['p50_ms']:7.2f} ms  p99 {cell['p99_ms']:7.2f} ms  errors {cell['errors']}", file=sys.stderr)
                transform[server_name] = transform_rows_per_second(url, transform_rows, workers, work)
        results["invocations"] = table
        results["transform_rows_per_s"] = transform
    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _report(results: Dict[str, object]) -> None:
    floor = results["in_process_p50_ms"]
    print(f"\n{results['cpus']} CPUs, serve with {results['workers']} workers, {results['seconds_per_cell']} s a cell\n")
    for payload in ("1 row", "1000 rows"):
        cell = floor[payload]
        print(f"in-process, {payload}, p50: predict stage {cell['predict']:.2f} ms; with parsing and the CSV answer {cell['parse_predict_serialise']:.2f} ms")
    print()
    print("| server | payload | clients | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|")
    for row in results["invocations"]:
        print(f"| {row['server']} | {row['payload']} | {row['clients']} | {row['rps']:.1f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} |")
    for row in results["invocations"]:
        if row["payload"] == "1000 rows" and row["clients"] == 1:
            predict = floor["1000 rows"]["predict"]
            overhead = (row["p50_ms"] - predict) / predict * 100
            print(f"\n{row['server']}: overhead at 1000 rows, 1 client: {overhead:+.1f} % of the in-process predict stage (goal <= 20 %)", end="")
        if row["payload"] == "1 row" and row["clients"] == 4:
            print(f"\n{row['server']}: 1-row p99 at 4 clients: {row['p99_ms']:.2f} ms (goal < 50 ms)", end="")
    print("\n\nbatch transform, " + ", ".join(f"{name}: {rate:,.0f} rows/s" for name, rate in results["transform_rows_per_s"].items()) + f" ({results['transform_rows']:,} rows)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference-server"]:
        reference_server(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1:2] == ["--load"]:
        print(json.dumps(load(sys.argv[2], Path(sys.argv[3]).read_bytes(), int(sys.argv[4]), float(sys.argv[5]))))
    else:
        sys.exit(main())
