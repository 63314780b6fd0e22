"""Serve the WSGI app with gunicorn: pre-forked workers, one per CPU, SageMaker's port.

SageMaker starts `docker run IMAGE serve` and sends requests to port 8080, or to
`SAGEMAKER_BIND_TO_PORT` when it sets that; the workers default to the CPUs this process may
use (`SAGEMAKER_MODEL_SERVER_WORKERS` overrides, as SageMaker's inference toolkit reads it).
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

The model is loaded before gunicorn starts (in the master, shared with the forked workers
copy-on-write), so a missing model fails `serve` at once with exit 2 instead of looping on
worker boot errors, and every worker answers /ping 200 as soon as it accepts connections.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from gunicorn.app.base import BaseApplication

DEFAULT_PORT = 8080
PORT_ENV_VAR = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV_VAR = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV_VAR = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 60

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
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    port_file: Optional[Path] = None  # written (atomically) with the bound port once ready


class _GunicornApp(BaseApplication):
    """gunicorn's programmatic entry: our settings, our already-built WSGI app."""

    def __init__(self, app: Callable[..., Any], settings: Dict[str, Any]) -> None:
        self._app, self._settings = app, settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._app


def settings(options: ServerOptions) -> Dict[str, Any]:
    return {
        "bind": [options.bind],
        "workers": options.workers,
        "worker_class": "sync",
        "timeout": options.timeout_seconds,
        "graceful_timeout": 10,
        "errorlog": "-",
        "accesslog": None,
        "loglevel": "info",
        # NB: gunicorn 23+ opens a control socket under $XDG_RUNTIME_DIR or ~/.gunicorn: not
        # writable in the read-only image root, and shared by every server of one user.
        "control_socket_disable": True,
        "when_ready": lambda arbiter: _ready(arbiter, options),
        "post_worker_init": lambda worker: limit_native_threads(os.environ),
    }


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


def _ready(arbiter: Any, options: ServerOptions) -> None:
    host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
    print(f"mlbuild: serving on http://{host}:{port} ({options.workers} workers): GET /ping, POST /invocations", file=sys.stderr, flush=True)
    if options.port_file is not None:
        temporary = options.port_file.with_name(options.port_file.name + ".tmp")
        temporary.write_text(f"{port}\n")
        os.replace(temporary, options.port_file)


def run_server(app: Callable[..., Any], options: ServerOptions) -> int:
    """Serve until SIGTERM/SIGINT; the exit status gunicorn ends with."""
    try:
        _GunicornApp(app, settings(options)).run()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
