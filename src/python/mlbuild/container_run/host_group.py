"""`python -m mlbuild.container_run.host_group SPEC.json`: start a job's host sandboxes together.

Runs inside the job's own network namespace (multi_host.py starts it under an outer bwrap
with only a loopback interface): adds each host's address to `lo`, starts every host's bwrap
at once, copies their output to stdout as one log with each line prefixed `[algo-N] `, and
when a host fails, stops the others after a grace period, as SageMaker fails the whole job
when one host fails. Writes each host's exit status to the spec's `results` file; exits 0
only if every host did.

    {"hosts": [{"name": "algo-1", "address": "127.0.1.1", "argv": [...]}, ...],
     "results": "/path/results.json", "grace_seconds": 10}
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Optional

from mlbuild.container_run.host_network import add_loopback_addresses

DEFAULT_GRACE_SECONDS = 10.0


@dataclass
class _Host:
    name: str
    proc: subprocess.Popen
    partial: bytes = b""
    exit_code: Optional[int] = None
    stopped: bool = False  # killed by us because another host failed
    open_streams: int = 1
    lines: list = field(default_factory=list)


def prefix_lines(name: str, data: bytes, partial: bytes) -> tuple[bytes, bytes]:
    """Complete lines of `partial + data`, each prefixed `[name] `, and the unfinished rest."""
    text = partial + data
    *lines, rest = text.split(b"\n")
    out = b"".join(b"[" + name.encode() + b"] " + line + b"\n" for line in lines)
    return out, rest


def run_group(spec: dict[str, Any], out: BinaryIO) -> dict[str, dict[str, Any]]:
    add_loopback_addresses([h["address"] for h in spec["hosts"]])
    grace = float(spec.get("grace_seconds", DEFAULT_GRACE_SECONDS))
    selector = selectors.DefaultSelector()
    hosts: list[_Host] = []
    for h in spec["hosts"]:
        proc = subprocess.Popen(h["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        host = _Host(h["name"], proc)
        hosts.append(host)
        selector.register(proc.stdout, selectors.EVENT_READ, host)  # type: ignore[arg-type]
    first_failure: Optional[float] = None
    open_count = len(hosts)
    while open_count or any(h.exit_code is None for h in hosts):
        for key, _ in selector.select(timeout=0.2):
            host = key.data
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                open_count -= 1
                if host.partial:
                    out.write(prefix_lines(host.name, host.partial + b"\n", b"")[0])
                    host.partial = b""
                continue
            text, host.partial = prefix_lines(host.name, chunk, host.partial)
            out.write(text)
            out.flush()
        for host in hosts:
            if host.exit_code is None and host.proc.poll() is not None:
                host.exit_code = host.proc.returncode
                if host.exit_code != 0 and first_failure is None:
                    first_failure = time.monotonic()
        if first_failure is not None and time.monotonic() - first_failure > grace:
            for host in hosts:
                if host.proc.poll() is None:
                    host.stopped = True
                    host.proc.send_signal(signal.SIGKILL)  # NB: --die-with-parent takes the sandbox down too
    return {h.name: {"exit_code": h.exit_code, "stopped": h.stopped} for h in hosts}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    results = run_group(spec, sys.stdout.buffer)
    tmp = Path(spec["results"] + ".tmp")
    tmp.write_text(json.dumps(results, sort_keys=True))
    os.replace(tmp, spec["results"])
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
