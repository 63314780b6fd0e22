"""Serve the WSGI app: an asyncio front (front.py) before pre-forked workers (workers.py).

SageMaker starts `docker run IMAGE serve` and sends requests to port 8080, or to
`SAGEMAKER_BIND_TO_PORT` when it sets that; the workers default to the CPUs this process may
use (`SAGEMAKER_MODEL_SERVER_WORKERS` overrides, as SageMaker's inference toolkit reads it), and
an invocation is cut after `SAGEMAKER_MODEL_SERVER_TIMEOUT` seconds (default 50: under the 60
s SageMaker waits, so the client gets our 504 rather than SageMaker's).
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

The model is loaded before the server starts (in this process, shared with the forked workers
copy-on-write), and /ping answers 200 from the front as soon as it listens. A model that fails
to load does not end `serve`: it listens without workers and answers every request, /ping
included, with a 500 naming the failure (app.LoadFailedApp), until SIGTERM. SageMaker then
sees an unhealthy container with the reason in its answers, not one that exited.

NB: why not gunicorn (pre-forked sync workers): a sync worker reads the request
itself, so as many slow clients as workers stop /ping for everyone (gunicorn's docs ask for a
buffering proxy in front). Its gthread workers read headers in a worker thread, blocking, so
slow clients still hold threads (gunicorn 27, 2 workers x 2 threads, 8 clients stalled in their
headers: 5 of 5 /ping timed out at 5 s); neither answers /ping without a worker, cuts one request, or
refuses work past a bound (the kernel backlog queues without limit or answer). A buffering
proxy (nginx, as SageMaker's containers ship) would be a second program in every image.
Measured against the gunicorn serve (bench/serve.py --faults --compare c43269e, 2 workers, a
shared 2-core machine): 8 clients stalled in their headers, every gunicorn /ping timed out, this
front's p99 66 ms; twice the capacity for 60 s, gunicorn's /ping p99 4.7 s with 4,119 requests
never answered, this front's 13 ms with 2,456 refused at once (503) and none unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from mlbuild.serving.front import MB, Front, Limits
from mlbuild.serving.workers import Pool

DEFAULT_PORT = 8080
PORT_ENV_VAR = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV_VAR = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV_VAR = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 50
QUEUE_PER_WORKER = 16  # NB: 16 x a 1,000-row predict (~20 ms) is well under a second of waiting
MIN_BUFFER_MB = 64

log = logging.getLogger("mlbuild.serving")


def default_bind(environ: Mapping[str, str]) -> str:
    return f"0.0.0.0:{environ.get(PORT_ENV_VAR) or DEFAULT_PORT}"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # NB: not on macOS
        return os.cpu_count() or 1


def default_workers(environ: Mapping[str, str]) -> int:
    value = environ.get(WORKERS_ENV_VAR)
    return int(value) if value and value.isdigit() and int(value) > 0 else cpu_count()


def default_timeout(environ: Mapping[str, str]) -> int:
    value = environ.get(TIMEOUT_ENV_VAR)
    return int(value) if value and value.isdigit() and int(value) > 0 else DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class ServerOptions:
    bind: str  # host:port; port 0 takes a free one (see port_file)
    workers: int
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS  # from reading a request's end to its answer
    port_file: Optional[Path] = None  # written (atomically) with the bound port once ready
    max_payload_mb: int = 6
    queue: Optional[int] = None  # requests waiting for a worker before 503 (default 16 per worker)
    header_seconds: float = Limits.header_seconds
    body_seconds: float = Limits.body_seconds

    def limits(self) -> Limits:
        buffer_mb = max(MIN_BUFFER_MB, (self.workers + 2) * self.max_payload_mb)
        return Limits(self.max_payload_mb * MB, buffer_mb * MB, self.header_seconds, self.body_seconds)

    def queue_size(self) -> int:
        return self.queue if self.queue is not None else QUEUE_PER_WORKER * self.workers


def limit_native_threads(environ: Mapping[str, str]) -> None:
    """One OpenMP/BLAS thread per worker, unless OMP_NUM_THREADS says otherwise.

    NB: scikit-learn's OpenMP code (HistGradientBoosting's predict: a parallel region per
    tree) starts a thread per CPU in every worker. Workers x CPUs threads fight, and so does one
    worker's team on a busy host: every region waits for a descheduled thread. Measured on a
    shared 2-core machine: a 1-row churn prediction took 400 ms with the default, 2 ms with one
    thread; 1,000 rows at 4 clients on 1 worker, 5 s with 2 threads. Parallelism comes from the
    workers (one per CPU). threadpoolctl (a scikit-learn dependency) sizes the pools after the
    libraries are loaded, which the OMP_NUM_THREADS variable cannot do.
    """
    if environ.get("OMP_NUM_THREADS"):
        return
    try:
        from threadpoolctl import threadpool_limits  # pants: no-infer-dep (a scikit-learn dependency)
    except ImportError:
        return
    threadpool_limits(1)


def _ready(listener: socket.socket, options: ServerOptions, model_loaded: bool) -> None:
    host, port = listener.getsockname()[:2]
    if model_loaded:
        print(
            f"mlbuild: serving on http://{host}:{port} ({options.workers} workers, {options.timeout_seconds:.0f} s per request, "
            f"{options.queue_size()} queued at most): GET /ping, POST /invocations",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"mlbuild: listening on http://{host}:{port} without a model: every request, GET /ping included, "
            "answers 500 with the load failure above",
            file=sys.stderr,
            flush=True,
        )
    if options.port_file is not None:
        temporary = options.port_file.with_name(options.port_file.name + ".tmp")
        temporary.write_text(f"{port}\n")
        os.replace(temporary, options.port_file)


def listen(bind: str) -> socket.socket:
    host, _, port = bind.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    return socket.create_server((host.strip("[]"), int(port)), family=family, backlog=1024)


def _more_files() -> None:
    """NB: one descriptor per client connection; the usual soft limit (1024) is below the front's connection cap."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _return_big_buffers() -> None:
    """NB: glibc raises its mmap threshold to the size of each large block freed (up to 32 MB),
    so after a few 6 MB bodies they come from the heap, and the heap keeps what a burst of them
    took (a flood of 6 MB payloads: 439 MB peak for the server and its workers). A fixed 1 MB
    threshold maps every body of its own and unmaps it when freed. Forked workers inherit it."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-3, 1024 * 1024)  # NB: -3 = M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # NB: not glibc
        pass


def run_server(app: Callable[..., Any], options: ServerOptions, model_loaded: bool = True) -> int:
    """Serve until SIGTERM/SIGINT, then drain (front.py); 0 once stopped. Without a loaded
    model, no workers: the front hands every request to `app` itself."""
    _more_files()
    _return_big_buffers()
    listener = listen(options.bind)
    pool = (
        Pool(
            app,
            options.workers,
            options.queue_size(),
            options.timeout_seconds,
            init=lambda: limit_native_threads(os.environ),
        )
        if model_loaded
        else None
    )
    front = Front(app, pool, options.limits())
    asyncio.run(front.serve(listener, lambda: _ready(listener, options, model_loaded)))
    return 0
