"""Start `serve` for a model folder on loopback in a child process, for as long as needed.

What the local batch transform, the tests and the benchmark use: `python -m mlbuild.serving
--bind 127.0.0.1:0 --port-file F`, so the server takes a free port and reports it; the
child gets this process's `sys.path` and the pipeline's environment variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Tuple

from mlbuild.runtime.errors import PlatformError

STARTUP_SECONDS = 120.0


class ServerStartError(PlatformError):
    """`serve` exited or never became ready; the message has the end of its log."""


def serve_argv(model_dir: Path, port_file: Path, workers: int, bind: str = "127.0.0.1:0") -> list:
    return [
        sys.executable,
        "-m",
        "mlbuild.serving",
        "--bind",
        bind,
        "--port-file",
        str(port_file),
        "--model-dir",
        str(model_dir),
        "--workers",
        str(workers),
    ]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(
    port_file: Path, proc: "subprocess.Popen[bytes]", log_path: Path, timeout: float = STARTUP_SECONDS
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if proc.poll() is not None:
            raise ServerStartError(f"serve exited with {proc.returncode} before it was ready:\n{log_tail(log_path)}")
        time.sleep(0.05)
    raise ServerStartError(f"serve was not ready after {timeout:.0f}s:\n{log_tail(log_path)}")


def check_ping(url: str, log_path: Path) -> None:
    """ServerStartError unless GET /ping answers 200: a server whose model failed to load
    stays up (as SageMaker needs) but is of no use here; its answer says why."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=30):
            return
    except urllib.error.HTTPError as e:
        why = f"answered {e.code}: {e.read().decode(errors='replace').strip()}"
    except OSError as e:
        why = f"failed: {e}"
    raise ServerStartError(f"serve is up but GET /ping {why}\n{log_tail(log_path)}")


def wait_until_ready(
    port_file: Path, proc: "subprocess.Popen[bytes]", log_path: Path, timeout: float = STARTUP_SECONDS
) -> str:
    """`http://127.0.0.1:PORT` once the server listens and its /ping answers 200."""
    url = f"http://127.0.0.1:{wait_for_port(port_file, proc, log_path, timeout)}"
    check_ping(url, log_path)
    return url


def stop(proc: "subprocess.Popen[bytes]") -> None:
    """SIGTERM (the server drains: at most 30 s, SageMaker's limit), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server_process(
    model_dir: Path,
    *,
    workers: int = 1,
    environ: Optional[Mapping[str, str]] = None,
    log_path: Optional[Path] = None,
    args: Sequence[str] = (),
) -> Iterator[Tuple[str, "subprocess.Popen[bytes]"]]:
    """Yields (`http://127.0.0.1:PORT`, the server process); stops it (and its workers) after.
    `args`: more of `serve`'s options (--timeout, --queue, ...)."""
    with tempfile.TemporaryDirectory(prefix="mlbuild-serve-") as work:
        port_file = Path(work) / "port"
        log_path = log_path or Path(work) / "serve.log"
        env = dict(os.environ if environ is None else environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [*env.get("PYTHONPATH", "").split(os.pathsep), *sys.path] if p)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [*serve_argv(Path(model_dir), port_file, workers), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield wait_until_ready(port_file, proc, log_path), proc
        finally:
            stop(proc)


@contextmanager
def local_server(
    model_dir: Path,
    *,
    workers: int = 1,
    environ: Optional[Mapping[str, str]] = None,
    log_path: Optional[Path] = None,
    args: Sequence[str] = (),
) -> Iterator[str]:
    """Yields `http://127.0.0.1:PORT` of a running server; stops it (and its workers) after."""
    with server_process(model_dir, workers=workers, environ=environ, log_path=log_path, args=args) as (url, _):
        yield url
