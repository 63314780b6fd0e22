"""A real OCI registry on loopback for tests and benchmarks: Debian's `docker-registry`.

CNCF distribution 2.8 serves the distribution API from a folder; `serve_registry` starts it on
127.0.0.1 port 0, so the registry itself binds a free port and reports it in its log ("listening
on 127.0.0.1:PORT"): no other process can take the port between a probe and the bind. Optionally
with htpasswd basic auth (the scheme ECR also uses); keeps its access log; stops it afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

REGISTRY_BIN = shutil.which("docker-registry")
HTPASSWD_BIN = shutil.which("htpasswd")


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # 127.0.0.1:PORT
    root: Path

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """One bcrypt entry (distribution accepts only bcrypt), written with apache2-utils' htpasswd."""
    if HTPASSWD_BIN is None:
        raise RuntimeError("needs `htpasswd` for bcrypt entries (apt-get install apache2-utils)")
    line = subprocess.run([HTPASSWD_BIN, "-nbB", username, password], check=True, capture_output=True, text=True).stdout
    path.write_text(line.strip() + "\n")
    return path


_LISTENING_RE = re.compile(rb'msg="listening on (127\.0\.0\.1:\d+)"')


def _bound_address(log: Path) -> str | None:
    m = _LISTENING_RE.search(log.read_bytes()) if log.exists() else None
    return m[1].decode() if m else None


@contextmanager
def serve_registry(root: Path, htpasswd: Optional[Path] = None, timeout: float = 20) -> Iterator[LocalRegistry]:
    if REGISTRY_BIN is None:
        raise RuntimeError("needs `docker-registry` (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        # NB: 'info' for the "listening on" line; the access log is separate from `level`, and goes to stdout
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": "127.0.0.1:0"},
        **({"auth": {"htpasswd": {"realm": "mlbuild-test", "path": str(htpasswd)}}} if htpasswd else {}),
    }
    (root / "config.yml").write_text(json.dumps(config))  # NB: JSON is YAML
    # NB: logs go to files, never to a pipe nobody drains: once ~64 KiB of errors (one per
    # aborted request in the fault tests) pile up in a pipe, the registry blocks.
    with open(root / "access.log", "wb") as out, open(root / "registry.err", "wb") as err:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while True:
            address = _bound_address(root / "registry.err")
            try:
                if address is None:
                    raise OSError("not listening yet")
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and wants auth
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {(root / 'registry.err').read_text(errors='replace')}"
                    ) from None
                time.sleep(0.1)
        assert address is not None  # NB: the loop ends only once the registry answered at it
        yield LocalRegistry(address, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
