"""moto's AWS stand-in for tests: a real HTTP server on loopback (ECR, SageMaker, S3, Logs)."""

from __future__ import annotations

import urllib.request
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def moto_server() -> Iterator[str]:
    """Yields `http://127.0.0.1:PORT` of a ThreadedMotoServer on a free port; stops it after."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Forget every resource, so each test starts from an empty account."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).read()
